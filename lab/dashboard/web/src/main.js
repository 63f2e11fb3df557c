// The game-day dashboard page: one WebSocket to the lab (same origin; the token travels as the
// HttpOnly cookie the server set when the page was opened with ?token=), a snapshot on connect,
// then one message per journaled event. Everything it needs is bundled by esbuild at build time.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import './style.css';

const STATES = ['healthy', 'booting', 'crashed', 'boot-loop', 'remediating', 'recovered',
  'failed', 'lost', 'provisioning'];
const MAX_TIMELINE = 300;

const hosts = new Map();  // id → {id, group, state, crashes, boot_looped}
const curve = [[], [], []];  // scenario seconds, up, down
let run = {};
let chart = null;
let messages = 0;
let now = 0;  // scenario clock, seconds

function clock(s) {
  const t = Math.max(0, Math.round(s));
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(Math.floor(t / 3600))}:${pad(Math.floor(t / 60) % 60)}:${pad(t % 60)}`;
}

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function renderLegend() {
  const legend = document.getElementById('legend');
  for (const s of STATES) {
    const item = el('span', { style: `--c: var(--${s})` }, s);
    legend.appendChild(item);
  }
}

function renderHost(h) {
  let tile = document.querySelector(`.host[data-host="${CSS.escape(h.id)}"]`);
  if (!tile) {
    tile = el('div', { class: 'host', 'data-host': h.id, title: 'open the serial console' });
    tile.addEventListener('click', () => openConsole(h.id));
    tile.append(el('div', { class: 'id' }), el('div', { class: 'meta state' }),
      el('div', { class: 'meta crashes' }));
    const fleet = document.getElementById('fleet');
    const after = [...fleet.children].find((c) => c.dataset.host > h.id);
    fleet.insertBefore(tile, after || null);
  }
  tile.dataset.state = h.state;
  tile.dataset.group = h.group;
  tile.dataset.crashes = String(h.crashes);
  tile.dataset.bootLooped = String(!!h.boot_looped);
  tile.querySelector('.id').textContent = h.id;
  tile.querySelector('.state').textContent = `${h.group} · ${h.state}`;
  tile.querySelector('.crashes').textContent =
    `${h.crashes} crash${h.crashes === 1 ? '' : 'es'}`;
}

function addEvent(e) {
  const list = document.getElementById('timeline');
  const li = el('li', { 'data-kind': e.kind, 'data-host': e.host || '', 'data-t': String(e.t) });
  li.append(el('span', { class: 't' }, clock(e.t)), el('span', { class: 'kind' }, e.kind),
    document.createTextNode(`${e.host ? e.host + ' ' : ''}${e.detail || ''}`));
  // Newest (in scenario time) first; machines report slightly out of order.
  const after = [...list.children].find((c) => Number(c.dataset.t) <= e.t);
  list.insertBefore(li, after || null);
  while (list.children.length > MAX_TIMELINE) list.removeChild(list.lastChild);
}

function addCurvePoint(p) {
  curve[0].push(p[0]);
  curve[1].push(p[1]);
  curve[2].push(p[2]);
}

function drawCurve() {
  const box = document.getElementById('curve');
  const opts = {
    width: Math.max(300, box.clientWidth - 10),
    height: 240,
    scales: { x: { time: false } },
    axes: [
      {
        values: (u, ticks) => ticks.map(clock),
        incrs: [60, 300, 600, 900, 1800, 3600, 7200],
        space: 90,
      },
      { label: 'hosts', incrs: [1, 2, 5, 10, 20, 50, 100] },
    ],
    series: [
      { label: 'scenario time', value: (u, v) => (v == null ? '' : clock(v)) },
      { label: 'up', stroke: '#2e7d32', width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
      { label: 'down', stroke: '#c62828', width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
    ],
  };
  // The curve holds its last value up to the scenario clock.
  const n = curve[0].length;
  const shown = n && now > curve[0][n - 1]
    ? curve.map((a, i) => a.concat([i === 0 ? now : a[n - 1]])) : curve;
  if (!chart) {
    chart = new uPlot(opts, shown, box);
  } else {
    chart.setData(shown);
  }
  box.dataset.points = String(curve[0].length);
}

function setClock(t) {
  now = t;
  document.getElementById('clock').textContent = clock(t);
}

// --- Game day: fleet-wide state, instructor controls, key escrow, ETA, debrief -----------------

let role = 'trainee';

async function act(kind, extra = {}) {
  const res = await fetch('/api/action', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ kind, ...extra }),
  });
  const body = await res.json().catch(() => ({}));
  const out = document.getElementById('instructor-result');
  out.textContent = res.ok ? `${kind}: done` : `${kind}: ${body.error || res.status}`;
  document.body.dataset.lastAction = `${kind}:${res.status}`;
  return res;
}

function renderFleet(f) {
  if (!f) return;
  const services = document.getElementById('services');
  services.replaceChildren(el('span', { class: 'label' }, 'Services:'));
  for (const [name, up] of Object.entries(f.services || {})) {
    services.append(el('span', { class: `chip ${up ? 'up' : 'down'}`, 'data-service': name,
      'data-up': String(up) }, `${name} ${up ? 'up' : 'down'}`));
  }
  if (!Object.keys(f.services || {}).length) services.append(el('span', {}, 'none defined'));
  const escrow = document.getElementById('escrow-state');
  escrow.replaceChildren(el('span', { class: 'label' }, 'Key escrow:'),
    el('span', { class: `chip ${f.escrow === 'up' ? 'up' : 'down'}`, id: 'escrow-chip' }, f.escrow),
    el('span', { id: 'keys-fetched', 'data-keys': String(f.keys_fetched) },
      ` · ${f.keys_fetched} key(s) fetched`));
  if (f.phase) {
    document.body.dataset.phase = f.phase;
    document.getElementById('phase').textContent = f.phase;
  }
}

function renderTechnicians(t) {
  const box = document.getElementById('technicians');
  box.replaceChildren(el('span', { class: 'label' }, 'Technicians:'));
  for (const [site, v] of Object.entries(t || {})) {
    box.append(el('span', { class: `chip ${v.free > 0 ? 'up' : 'down'}`, 'data-site': site,
      'data-free': String(v.free), 'data-busy': String(v.busy) },
    `${site}: ${v.busy} busy, ${v.free} free of ${v.on_shift} on shift`));
  }
}

function renderEta(eta) {
  const box = document.getElementById('eta');
  if (!eta) { box.hidden = true; return; }
  box.hidden = false;
  document.getElementById('eta-question').textContent = eta.question;
  const list = document.getElementById('eta-answers');
  list.replaceChildren(...eta.answers.map((a) => el('li', {}, `${a.role}: ${a.answer}`)));
}

function renderChecklist(lines) {
  const list = document.getElementById('checklist');
  list.replaceChildren(...(lines || []).map((l) => el('li', {}, l)));
}

function renderEscrowHosts() {
  const select = document.getElementById('escrow-host');
  const current = select.value;
  const ids = [...hosts.keys()].sort();
  if (select.options.length === ids.length) return;
  select.replaceChildren(...ids.map((id) => el('option', { value: id }, id)));
  if (current) select.value = current;
}

function secondsText(s) {
  if (s == null) return '—';
  const m = Math.floor(s / 60);
  return m ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

let debriefChart = null;
function renderDebrief(d) {
  if (!d) return;
  document.getElementById('debrief-panel').hidden = false;
  document.body.dataset.debrief = 'shown';
  const b = d.baseline || {};
  document.getElementById('debrief-summary').textContent =
    `The team recovered ${d.team.recovered} of ${d.team.crashed} crashed host(s)` +
    (b.curve ? `; runbook ${b.runbook} (automated) recovered ${b.recovered} of ${b.crashed}` : '') +
    `. ${d.mistakes.length} mistake(s), ${d.keys_fetched} key(s) fetched, ` +
    `${d.console_lines} console line(s) typed.`;
  document.getElementById('debrief-how').textContent = `Baseline: ${b.how || 'none'}`;
  // Both curves on one x axis (seconds since the release), held between their points.
  const xs = [...new Set([...d.team.curve.map((p) => p[0]),
    ...(b.curve || []).map((p) => p[0])])].sort((a, c) => a - c);
  const at = (curve, x) => {
    let v = 0;
    for (const p of curve) if (p[0] <= x) v = p[1];
    return v;
  };
  // The team's curve stops where the exercise ended; the baseline runs on to its own end.
  const end = d.team.end_s ?? Infinity;
  if (end > 0 && end < Infinity && !xs.includes(end)) {
    xs.push(end);
    xs.sort((a, c) => a - c);
  }
  const data = [xs, xs.map((x) => (x > end ? null : at(d.team.curve, x)))];
  const series = [{ label: 'since release', value: (u, v) => (v == null ? '' : secondsText(v)) },
    { label: 'team: hosts down', stroke: '#c62828', width: 2,
      paths: uPlot.paths.stepped({ align: 1 }) }];
  if (b.curve) {
    data.push(xs.map((x) => at(b.curve, x)));
    series.push({ label: `${b.runbook} (${b.backend}): hosts down`, stroke: '#1565c0', width: 2,
      dash: [6, 4], paths: uPlot.paths.stepped({ align: 1 }) });
  }
  const box = document.getElementById('debrief-curve');
  debriefChart?.destroy();
  debriefChart = new uPlot({ width: Math.max(300, box.clientWidth - 10), height: 220,
    scales: { x: { time: false } }, series,
    axes: [{ values: (u, ticks) => ticks.map((t) => secondsText(t)), space: 90 },
      { label: 'hosts down' }] }, data, box);
  const body = document.querySelector('#debrief-hosts tbody');
  body.replaceChildren(...d.hosts.map((h) => {
    const tr = el('tr', { 'data-host': h.host });
    for (const v of [h.host, h.bitlocker ? 'yes' : 'no', String(h.crashes),
      secondsText(h.first_action_s), secondsText(h.hands_on_s),
      secondsText(h.time_to_recover_s), `${h.final_state}${h.recovered_by ? ` (${h.recovered_by})` : ''}`]) {
      tr.append(el('td', {}, v));
    }
    return tr;
  }));
  const list = document.getElementById('debrief-mistakes');
  list.replaceChildren(...(d.mistakes.length ? d.mistakes.map((m) =>
    el('li', { 'data-kind': m.kind }, `${clock(m.t)} ${m.host}: ${m.what}`))
    : [el('li', {}, 'none')]));
}

function onMessage(msg) {
  messages++;
  document.body.dataset.messages = String(messages);
  if (msg.type === 'snapshot') {
    run = msg.run;
    role = msg.role || role;
    document.body.dataset.role = role;
    document.getElementById('role').textContent = role;
    document.getElementById('instructor-panel').hidden = role !== 'instructor';
    document.getElementById('run').textContent =
      `${run.scenario} · runbook ${run.runbook} · setup ${run.setup} · run ${run.run_id}`;
    document.body.dataset.status = run.status;
    document.body.dataset.gameday = String(!!run.gameday);
    for (const id of ['status-panel', 'escrow-panel', 'checklist-panel']) {
      document.getElementById(id).hidden = !run.gameday;
    }
    document.getElementById('boot-menu').hidden = !run.gameday;
    renderChecklist(run.checklist);
    renderFleet(msg.fleet);
    renderTechnicians(msg.technicians);
    renderEta(msg.eta);
    renderDebrief(msg.debrief);
    document.getElementById('timeline').replaceChildren();
    for (const h of msg.hosts) {
      hosts.set(h.id, h);
      renderHost(h);
    }
    renderEscrowHosts();
    // #console=<host> opens that host's console (a link to it, or a test).
    const wanted = new URLSearchParams(location.hash.slice(1)).get('console');
    if (wanted && hosts.has(wanted) && document.body.dataset.console !== wanted) openConsole(wanted);
    for (const e of msg.events) addEvent(e);
    curve.forEach((a) => a.splice(0));
    for (const p of msg.curve) addCurvePoint(p);
    setClock(msg.now);
    drawCurve();
  } else if (msg.type === 'event') {
    addEvent(msg.event);
    if (msg.host) {
      hosts.set(msg.host.id, msg.host);
      renderHost(msg.host);
      renderEscrowHosts();
    }
    renderFleet(msg.fleet);
    setClock(msg.now);
    if (msg.curve) addCurvePoint(msg.curve);
    if (msg.curve || msg.host) drawCurve();
  } else if (msg.type === 'end') {
    document.body.dataset.status = msg.status;
    document.getElementById('conn').textContent = `run ${msg.status}`;
    document.getElementById('phase').textContent = msg.status;
  } else if (msg.type === 'technicians') {
    renderTechnicians(msg.technicians);
  } else if (msg.type === 'eta') {
    renderEta(msg.eta);
  } else if (msg.type === 'debrief') {
    renderDebrief(msg.debrief);
  }
}

// The serial console of one host: xterm.js over /console/<host>. Lines come from the guest as it
// prints them; what the person types is edited locally and sent on Enter, one journal row per line.
let term = null;
let consoleWs = null;
let typed = '';

function openConsole(id) {
  closeConsole();
  document.getElementById('console-panel').hidden = false;
  document.getElementById('console-host').textContent = id;
  document.querySelector(`.host[data-host="${CSS.escape(id)}"]`)?.classList.add('open');
  document.body.dataset.console = id;
  term = new Terminal({ convertEol: true, rows: 20, fontSize: 13, scrollback: 2000 });
  term.open(document.getElementById('console'));
  typed = '';
  let keys = '';  // every keystroke of the line, edits included (journaled with it)
  term.onData((data) => {
    for (const ch of data) {
      if (ch === '\r') {
        term.write('\r\n');
        if (consoleWs && consoleWs.readyState === WebSocket.OPEN) {
          consoleWs.send(document.body.dataset.gameday === 'true'
            ? JSON.stringify({ line: typed, keys }) : `${typed}\n`);
        }
        const sent = Number(document.body.dataset.consoleSent || 0) + 1;
        document.body.dataset.consoleSent = String(sent);
        typed = '';
        keys = '';
      } else if (ch === '\x7f' || ch === '\b') {
        keys += ch;
        if (typed) {
          typed = typed.slice(0, -1);
          term.write('\b \b');
        }
      } else if (ch >= ' ') {
        keys += ch;
        typed += ch;
        term.write(ch);
      }
    }
  });
  consoleWs = new WebSocket(`ws://${location.host}/console/${encodeURIComponent(id)}`);
  consoleWs.onopen = () => { document.body.dataset.consoleWs = 'open'; };
  consoleWs.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    const lines = msg.type === 'tty-backlog' ? msg.lines : [msg.line];
    for (const line of lines) term.writeln(line);
    const count = Number(document.body.dataset.consoleLines || 0) + lines.length;
    document.body.dataset.consoleLines = String(count);
  };
  consoleWs.onclose = () => {
    document.body.dataset.consoleWs = 'closed';
    term?.writeln('\r\n[console closed: no technician free at this site, or the run ended]');
  };
  term.focus();
}

function closeConsole() {
  consoleWs?.close();
  consoleWs = null;
  term?.dispose();
  term = null;
  document.querySelectorAll('.host.open').forEach((t) => t.classList.remove('open'));
  document.getElementById('console-panel').hidden = true;
  delete document.body.dataset.console;
  delete document.body.dataset.consoleLines;
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  const conn = document.getElementById('conn');
  ws.onopen = () => {
    document.body.dataset.ws = 'open';
    conn.textContent = 'live';
  };
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    document.body.dataset.ws = 'closed';
    if (document.body.dataset.status === 'running' || !document.body.dataset.status) {
      conn.textContent = 'disconnected';
      // The server disconnects a browser that fell too far behind, or refuses one when full:
      // start again from a fresh snapshot.
      setTimeout(connect, 2000);
    }
  };
}

renderLegend();
document.getElementById('console-close').addEventListener('click', closeConsole);
for (const b of document.querySelectorAll('#instructor-panel [data-action]')) {
  b.addEventListener('click', () => act(b.dataset.action));
}
document.getElementById('eta-ask').addEventListener('submit', (ev) => {
  ev.preventDefault();
  act('eta-ask', { detail: document.getElementById('eta-ask-text').value });
});
document.getElementById('eta-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('eta-answer');
  act('eta-answer', { detail: input.value });
  input.value = '';
});
for (const b of document.querySelectorAll('#boot-menu [data-boot]')) {
  b.addEventListener('click', () => {
    const host = document.body.dataset.console;
    if (!host) return;
    if (b.dataset.boot === 'reimage') act('reimage', { host });
    else act('boot', { host, detail: b.dataset.boot });
  });
}
document.getElementById('escrow-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const host = document.getElementById('escrow-host').value;
  const res = await fetch(`/api/escrow/key?host=${encodeURIComponent(host)}`,
    { credentials: 'same-origin' });
  const body = await res.json().catch(() => ({}));
  document.getElementById('escrow-password').textContent = res.ok ? body.password : '';
  document.getElementById('escrow-error').textContent = res.ok ? '' : body.error || res.status;
  document.body.dataset.escrow = res.ok ? 'ok' : String(res.status);
});
// The token is in the cookie now; keep it out of the address bar and the history.
if (location.search.includes('token=')) history.replaceState(null, '', `/${location.hash}`);
connect();
