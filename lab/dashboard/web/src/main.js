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

function onMessage(msg) {
  messages++;
  document.body.dataset.messages = String(messages);
  if (msg.type === 'snapshot') {
    run = msg.run;
    document.getElementById('run').textContent =
      `${run.scenario} · runbook ${run.runbook} · setup ${run.setup} · run ${run.run_id}`;
    document.body.dataset.status = run.status;
    for (const h of msg.hosts) {
      hosts.set(h.id, h);
      renderHost(h);
    }
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
    }
    setClock(msg.now);
    if (msg.curve) addCurvePoint(msg.curve);
    if (msg.curve || msg.host) drawCurve();
  } else if (msg.type === 'end') {
    document.body.dataset.status = msg.status;
    document.getElementById('conn').textContent = `run ${msg.status}`;
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
  term.onData((data) => {
    for (const ch of data) {
      if (ch === '\r') {
        term.write('\r\n');
        if (consoleWs && consoleWs.readyState === WebSocket.OPEN) consoleWs.send(`${typed}\n`);
        typed = '';
      } else if (ch === '\x7f' || ch === '\b') {
        if (typed) {
          typed = typed.slice(0, -1);
          term.write('\b \b');
        }
      } else if (ch >= ' ') {
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
    term?.writeln('\r\n[console closed]');
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
    }
  };
}

renderLegend();
document.getElementById('console-close').addEventListener('click', closeConsole);
// The token is in the cookie now; keep it out of the address bar and the history.
if (location.search.includes('token=')) history.replaceState(null, '', `/${location.hash}`);
connect();
