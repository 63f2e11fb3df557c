#include "lab/report/html.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lab/common/json_text.h"
#include "lab/report/compare.h"
#include "lab/report/html_page.h"

namespace chaoslab {
namespace {

using html_internal::Escape;
using html_internal::HtmlTable;
using html_internal::ScriptSafeJson;

nlohmann::json OptionalJson(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// What the inline script draws from: per cell its runs (outages, times to recover) and the
// service downtime summary of the comparison.
nlohmann::json ChartData(const std::vector<RunResult>& runs, const std::string& title,
                         const std::vector<CellSummary>& cells) {
  bool several_setups = false;
  for (const RunResult& run : runs) several_setups |= run.setup != runs.front().setup;

  nlohmann::json cell_json = nlohmann::json::array();
  std::vector<std::string> service_names;
  for (const CellSummary& cell : cells) {
    nlohmann::json cell_runs = nlohmann::json::array();
    for (const RunResult& run : runs) {
      if (run.runbook != cell.runbook || run.setup != cell.setup) continue;
      // Like the table: finished runs only, unless the cell has nothing else (a report of one
      // interrupted run still shows how far it got).
      if (!cell.run_ids.empty() && !CountsAsRepetition(run)) continue;
      nlohmann::json outages = nlohmann::json::array();
      nlohmann::json ttr = nlohmann::json::array();
      // A simulated run's rows stand for many hosts (HostResult::weight): outages carry the
      // weight, and the time-to-recover dots are a sample in proportion to it (~2,000 at most).
      long long recovered = 0, hosts = 0;
      for (const HostResult& host : run.hosts) {
        hosts += host.weight;
        if (host.recovered && host.time_to_recover_s) recovered += host.weight;
      }
      const long long per_dot = std::max(1LL, recovered / 2000);
      for (const HostResult& host : run.hosts) {
        if (std::optional<Outage> o = HostOutage(host)) {
          if (host.weight == 1) {
            outages.push_back({o->from_s, OptionalJson(o->until_s)});
          } else {
            outages.push_back({o->from_s, OptionalJson(o->until_s), host.weight});
          }
        }
        if (host.recovered && host.time_to_recover_s) {
          for (long long i = 0; i < (host.weight + per_dot - 1) / per_dot; ++i)
            ttr.push_back(*host.time_to_recover_s);
        }
      }
      cell_runs.push_back({{"run_id", run.run_id},
                           {"repetition", run.repetition},
                           {"status", run.status},
                           {"hosts", hosts},
                           {"end_s", std::max(0.0, run.scenario_end_s - run.release_s)},
                           {"outages", std::move(outages)},
                           {"ttr", std::move(ttr)}});
    }
    nlohmann::json services = nlohmann::json::array();
    for (const auto& [name, m] : cell.service_downtime_s) {
      if (std::find(service_names.begin(), service_names.end(), name) == service_names.end()) {
        service_names.push_back(name);
      }
      services.push_back({{"name", name},
                          {"mean", m.value ? nlohmann::json(m.value->mean) : nullptr},
                          {"low", m.value ? nlohmann::json(m.value->low) : nullptr},
                          {"high", m.value ? nlohmann::json(m.value->high) : nullptr},
                          {"n", m.value ? m.value->n : 0}});
    }
    std::string label = cell.runbook.empty() ? "(no runbook)" : cell.runbook;
    if (several_setups) label += " / " + (cell.setup.empty() ? "(no setup)" : cell.setup);
    cell_json.push_back({{"label", label},
                         {"unfinished", cell.run_ids.empty() ? 0 : cell.unfinished},
                         {"runbook", cell.runbook},
                         {"setup", cell.setup},
                         {"runs", std::move(cell_runs)},
                         {"services", std::move(services)}});
  }
  return {{"title", title}, {"cells", std::move(cell_json)}, {"services", service_names}};
}

constexpr const char* kStyle = R"css(
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --rule: #d8dce4; --band: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px 28px 48px; color: var(--ink);
       font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 18px 0 6px; color: var(--muted); }
p.meta, p.note { color: var(--muted); margin: 4px 0; }
#report-error { color: #b00020; font-weight: bold; }
#legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 12px 0; }
#legend .item { display: inline-flex; align-items: center; gap: 6px; }
#legend .swatch { width: 14px; height: 14px; border-radius: 3px; display: inline-block; }
svg.chart { width: 100%; height: auto; display: block; background: #fff; }
svg .axis line { stroke: #8a93a5; }
svg .axis line.grid { stroke: #e6e9ef; }
svg text { fill: var(--ink); font-size: 11px; }
svg .curve-mean { fill: none; stroke-width: 2.5; }
svg .curve-run { fill: none; stroke-width: 1; stroke-opacity: 0.35; }
svg .ref { stroke: #9aa3b5; stroke-dasharray: 4 4; }
svg .ttr-box rect { fill-opacity: 0.18; stroke-width: 1.5; }
svg .ttr-point { fill-opacity: 0.55; }
svg .service-bar { fill-opacity: 0.8; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--rule); white-space: nowrap; }
th { background: var(--band); text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
)css";

// Draws the charts from #report-data. Builds SVG with DOM calls only (no innerHTML), so names in
// the data cannot inject markup.
constexpr const char* kScriptPrelude = R"js(
(function () {
  'use strict';
  const NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
                   '#17becf', '#7f7f7f', '#bcbd22'];
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const color = (i) => PALETTE[i % PALETTE.length];

  function el(parent, name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function html(parent, name, attrs, text) {
    const e = document.createElement(name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function timeUnit(maxS) {
    return maxS >= 2 * 3600 ? {scale: 3600, name: 'h'} : {scale: 60, name: 'min'};
  }
  function niceStep(range, count) {
    const raw = range / count, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }
  function num(v) {
    return Math.abs(v) >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toFixed(1);
  }
  // Same rule as the C++ Percentile (linear between order statistics).
  function quantile(sorted, q) {
    const rank = q * (sorted.length - 1), lo = Math.floor(rank);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
  }
  function frame(svg, width, height) {
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('preserveAspectRatio', 'xMinYMin meet');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
  }
  // A horizontal value axis at y = `yAxis` from x0 to x1 for [0, max] seconds in `unit`, with
  // grid lines up to `yTop`.
  function timeAxis(svg, x0, x1, yAxis, yTop, maxS, unit, caption) {
    const g = el(svg, 'g', {class: 'axis'});
    const maxU = maxS / unit.scale, step = niceStep(maxU, 6);
    for (let v = 0; v <= maxU + 1e-9; v += step) {
      const x = x0 + (x1 - x0) * v / maxU;
      el(g, 'line', {class: 'grid', x1: x, x2: x, y1: yTop, y2: yAxis});
      el(g, 'text', {x: x, y: yAxis + 15, 'text-anchor': 'middle'}, num(v));
    }
    el(g, 'line', {x1: x0, x2: x1, y1: yAxis, y2: yAxis});
    el(g, 'text', {x: (x0 + x1) / 2, y: yAxis + 32, 'text-anchor': 'middle'},
       caption + ' (' + unit.name + ')');
  }
  // A vertical axis of shares, 0 to 100 %, at x0 from yTop to yAxis with grid lines to x1; `y`
  // maps a share (0..1) to its height.
  function shareAxis(svg, x0, x1, yTop, yAxis, y) {
    const g = el(svg, 'g', {class: 'axis'});
    for (let p = 0; p <= 100; p += 20) {
      el(g, 'line', {class: 'grid', x1: x0, x2: x1, y1: y(p / 100), y2: y(p / 100)});
      el(g, 'text', {x: x0 - 6, y: y(p / 100) + 4, 'text-anchor': 'end'}, p + ' %');
    }
    el(g, 'line', {x1: x0, x2: x0, y1: yTop, y2: yAxis});
  }
  // Runs a page's drawing functions; the body's data-charts then says "drawn", or "error" with
  // the message in #report-error.
  function drawAll(draws) {
    try {
      for (const draw of draws) draw();
      document.body.setAttribute('data-charts', 'drawn');
    } catch (e) {
      document.getElementById('report-error').textContent = 'Drawing the charts failed: ' + e;
      document.body.setAttribute('data-charts', 'error');
    }
  }
)js";

constexpr const char* kReportScript = R"js(

  // Step function of one run: [[t, share of hosts healthy from t on], ...] from t = 0.
  function runSteps(run) {
    const n = run.hosts, events = [];
    for (const o of run.outages) {
      const w = o.length > 2 ? o[2] : 1;  // hosts the row stands for (simulator)
      events.push([Math.max(0, o[0]), -w]);
      if (o[1] !== null) events.push([Math.max(0, o[1]), w]);
    }
    events.sort((a, b) => a[0] - b[0]);
    let up = n, i = 0;
    while (i < events.length && events[i][0] <= 0) up += events[i++][1];
    const steps = [[0, n ? up / n : 1]];
    while (i < events.length) {
      const t = events[i][0];
      while (i < events.length && events[i][0] === t) up += events[i++][1];
      steps.push([t, up / n]);
    }
    return steps;
  }
  // The mean of several step functions (each holds its last value after its run ended).
  function meanSteps(list) {
    if (list.length === 1) return list[0];
    const times = [...new Set(list.flatMap((s) => s.map((p) => p[0])))].sort((a, b) => a - b);
    const at = list.map(() => 0);
    return times.map((t) => {
      let sum = 0;
      list.forEach((s, j) => {
        while (at[j] + 1 < s.length && s[at[j] + 1][0] <= t) at[j]++;
        sum += s[at[j]][1];
      });
      return [t, sum / list.length];
    });
  }
  function stepPath(steps, x, y, end) {
    let d = 'M' + x(steps[0][0]).toFixed(1) + ' ' + y(steps[0][1]).toFixed(1);
    for (let i = 1; i < steps.length; i++) {
      d += 'H' + x(steps[i][0]).toFixed(1) + 'V' + y(steps[i][1]).toFixed(1);
    }
    return d + 'H' + x(end).toFixed(1);
  }

  function drawLegend() {
    const legend = document.getElementById('legend');
    data.cells.forEach((cell, i) => {
      const item = html(legend, 'span', {class: 'item', 'data-cell': cell.label});
      html(item, 'span', {class: 'swatch', style: 'background:' + color(i)});
      html(item, 'span', {}, cell.label + ' (' + cell.runs.length + ' run' +
                                 (cell.runs.length === 1 ? '' : 's') +
                                 (cell.unfinished ? ', ' + cell.unfinished + ' unfinished not shown'
                                                  : '') + ')');
    });
  }

  function drawRecovery() {
    const svg = document.getElementById('recovery-chart');
    const W = 860, H = 380, L = 56, R = 16, T = 14, B = 48;
    frame(svg, W, H);
    let end = 0;
    for (const cell of data.cells) {
      for (const run of cell.runs) {
        end = Math.max(end, run.end_s);
        for (const o of run.outages) end = Math.max(end, o[0], o[1] === null ? 0 : o[1]);
      }
    }
    if (!(end > 0)) end = 3600;
    const x = (t) => L + (W - L - R) * t / end;
    const y = (s) => T + (H - T - B) * (1 - s);
    timeAxis(svg, L, W - R, H - B, T, end, timeUnit(end), 'scenario time after release');
    shareAxis(svg, L, W - R, T, H - B, y);
    el(svg, 'line', {class: 'ref', x1: L, x2: W - R, y1: y(0.9), y2: y(0.9)});
    el(svg, 'text', {x: W - R - 4, y: y(0.9) - 4, 'text-anchor': 'end'}, '90 %');
    data.cells.forEach((cell, ci) => {
      const steps = cell.runs.map(runSteps);
      if (steps.length > 1) {
        steps.forEach((s, k) => {
          el(svg, 'path', {class: 'curve-run', d: stepPath(s, x, y, end), stroke: color(ci),
                           'data-cell': cell.label, 'data-run': cell.runs[k].run_id});
        });
      }
      const mean = el(svg, 'path', {class: 'curve-mean', d: stepPath(meanSteps(steps), x, y, end),
                                    stroke: color(ci), 'data-cell': cell.label});
      el(mean, 'title', {}, cell.label +
         (steps.length > 1 ? ' (mean of ' + steps.length + ' runs)' : ''));
    });
  }

  function drawTtr() {
    const svg = document.getElementById('ttr-chart');
    const rows = data.cells.length, band = 46;
    const W = 860, L = 170, R = 16, T = 10, B = 48, H = T + rows * band + B;
    frame(svg, W, H);
    let max = 0;
    for (const cell of data.cells) for (const run of cell.runs) for (const v of run.ttr) max = Math.max(max, v);
    max = max > 0 ? max * 1.05 : 3600;  // room for the dots of the slowest hosts
    const unit = timeUnit(max);
    const x = (t) => L + (W - L - R) * t / max;
    timeAxis(svg, L, W - R, H - B, T, max, unit, 'time to recover (first crash to healthy)');
    data.cells.forEach((cell, ci) => {
      const mid = T + ci * band + band / 2;
      el(svg, 'text', {x: L - 8, y: mid + 4, 'text-anchor': 'end'}, cell.label);
      const values = cell.runs.flatMap((r) => r.ttr).sort((a, b) => a - b);
      if (values.length === 0) {
        el(svg, 'text', {x: L + 6, y: mid + 4, class: 'no-data'}, 'no host recovered');
        return;
      }
      const g = el(svg, 'g', {class: 'ttr-box', 'data-cell': cell.label});
      const q1 = quantile(values, 0.25), q2 = quantile(values, 0.5), q3 = quantile(values, 0.75);
      const c = color(ci);
      el(g, 'line', {x1: x(values[0]), x2: x(values[values.length - 1]), y1: mid, y2: mid,
                     stroke: c});
      el(g, 'rect', {x: x(q1), y: mid - 12, width: Math.max(1, x(q3) - x(q1)), height: 24,
                     fill: c, stroke: c});
      el(g, 'line', {class: 'median', x1: x(q2), x2: x(q2), y1: mid - 12, y2: mid + 12,
                     stroke: c, 'stroke-width': 2.5});
      values.forEach((v, i) => {
        // A fixed jitter (no randomness): the same report always looks the same.
        const dy = ((i * 37) % 17 - 8) * 1.3;
        el(g, 'circle', {class: 'ttr-point', cx: x(v), cy: mid + dy, r: 2.2, fill: c});
      });
      el(g, 'title', {}, cell.label + ': ' + values.length + ' recovered hosts, median ' +
         num(q2 / unit.scale) + ' ' + unit.name);
    });
  }

  function drawServices() {
    const svg = document.getElementById('service-chart');
    const names = data.services;
    if (names.length === 0) {
      svg.setAttribute('display', 'none');
      document.getElementById('service-note').textContent = 'No business services in these runs.';
      return;
    }
    const cells = data.cells.length, bar = 14, gap = 22;
    const block = cells * bar + gap;
    const W = 860, L = 170, R = 60, T = 10, B = 48, H = T + names.length * block + B;
    frame(svg, W, H);
    let max = 0;
    for (const cell of data.cells) {
      for (const s of cell.services) if (s.mean !== null) max = Math.max(max, s.high, s.mean);
    }
    if (!(max > 0)) max = 3600;
    const unit = timeUnit(max);
    const x = (t) => L + (W - L - R) * Math.max(0, t) / max;
    timeAxis(svg, L, W - R, H - B, T, max, unit, 'service downtime (mean over runs)');
    names.forEach((name, si) => {
      const top = T + si * block + gap / 2;
      el(svg, 'text', {x: L - 8, y: top + cells * bar / 2 + 4, 'text-anchor': 'end',
                       'font-weight': 'bold'}, name);
      data.cells.forEach((cell, ci) => {
        const s = cell.services.find((v) => v.name === name);
        const yb = top + ci * bar;
        if (!s || s.mean === null) {
          el(svg, 'text', {x: L + 4, y: yb + bar - 3, class: 'no-data'}, '–');
          return;
        }
        const rect = el(svg, 'rect', {class: 'service-bar', x: L, y: yb + 1,
                                      width: Math.max(1, x(s.mean) - L), height: bar - 2,
                                      fill: color(ci), 'data-cell': cell.label,
                                      'data-service': name});
        el(rect, 'title', {}, name + ' / ' + cell.label + ': ' + num(s.mean / unit.scale) + ' ' +
           unit.name);
        if (s.n > 1) {
          el(svg, 'line', {x1: x(s.low), x2: x(s.high), y1: yb + bar / 2, y2: yb + bar / 2,
                           stroke: '#333'});
        }
        el(svg, 'text', {x: x(Math.max(s.mean, s.high || 0)) + 4, y: yb + bar - 3},
           num(s.mean / unit.scale));
      });
    });
  }

  drawAll([drawLegend, drawRecovery, drawTtr, drawServices]);
})();
)js";

std::string Minutes(const std::optional<double>& seconds) {
  return seconds ? fmt::format("{:.1f}", *seconds / 60.0) : "–";
}

FormattedTable RunsTable(const std::vector<RunResult>& runs) {
  FormattedTable table{"Runs",
                       {"run", "runbook", "setup", "rep.", "status", "hosts", "crashed",
                        "recovered", "failed", "MTTR min", "90 % up min", "wall s"},
                       {false, false, false, true, false, true, true, true, true, true, true, true},
                       {}};
  for (RunResult run : runs) {
    Summarize(&run);
    table.rows.push_back({run.run_id, run.runbook, run.setup.empty() ? "–" : run.setup,
                          std::to_string(run.repetition + 1), run.status.empty() ? "–" : run.status,
                          std::to_string(run.fleet.hosts), std::to_string(run.fleet.crashed),
                          std::to_string(run.fleet.recovered), std::to_string(run.fleet.failed),
                          Minutes(run.fleet.mttr_s), Minutes(run.fleet.recovery.healthy_90_s),
                          fmt::format("{:.1f}", run.wall_s)});
  }
  return table;
}

}  // namespace

Result<std::string> RenderHtmlReport(const std::vector<RunResult>& runs, const std::string& title) {
  if (runs.empty()) return Status::InvalidArgument("no runs to report");
  Comparison comparison{runs.front().comparison_id, runs.front().scenario, runs};
  for (const RunResult& run : runs) {
    if (run.comparison_id != comparison.id) comparison.id.clear();  // runs from several
  }
  const std::vector<CellSummary> cells = SummarizeComparison(comparison);

  std::string meta = fmt::format(
      "Scenario {} · {} run{} · {} cell{}", comparison.scenario.empty() ? "–" : comparison.scenario,
      runs.size(), runs.size() == 1 ? "" : "s", cells.size(), cells.size() == 1 ? "" : "s");
  if (!comparison.id.empty()) meta += " · comparison " + comparison.id;

  std::string doc = html_internal::PageHead(title);
  doc += "<h1>" + Escape(title) + "</h1>\n<p class=\"meta\">" + Escape(meta) + "</p>\n";
  doc += "<p id=\"report-error\"></p>\n<div id=\"legend\"></div>\n";

  doc +=
      "<h2>Fleet recovery</h2>\n<p class=\"note\">Share of the fleet healthy against scenario "
      "time after the release (a host is down from its first crash until it is healthy again). "
      "Thick: mean over a cell's runs; thin: each run.</p>\n";
  doc +=
      "<svg id=\"recovery-chart\" class=\"chart\" role=\"img\" "
      "aria-label=\"fleet recovery curve\"></svg>\n";

  doc +=
      "<h2>Time to recover</h2>\n<p class=\"note\">Recovered hosts of all runs of a cell: box "
      "from the first to the third quartile, median line, whiskers to the extremes, one dot "
      "per host.</p>\n";
  doc +=
      "<svg id=\"ttr-chart\" class=\"chart\" role=\"img\" "
      "aria-label=\"time to recover\"></svg>\n";

  doc +=
      "<h2>Service downtime</h2>\n<p class=\"note\" id=\"service-note\">Mean downtime between "
      "release and the end of the run; the line is the 95 % confidence interval.</p>\n";
  doc +=
      "<svg id=\"service-chart\" class=\"chart\" role=\"img\" "
      "aria-label=\"service downtime\"></svg>\n";

  doc += "<h2>Comparison</h2>\n<div id=\"comparison\">\n";
  for (const FormattedTable& table : FormatComparison(comparison)) {
    doc += "<h3>" + Escape(table.title) + "</h3>\n" + HtmlTable(table, "class=\"comparison\"");
  }
  doc += "<p class=\"note\">" + Escape(ComparisonLegend()) + "</p>\n</div>\n";

  doc += "<h2>Runs</h2>\n" + HtmlTable(RunsTable(runs), "id=\"runs-table\"");

  doc += "<script type=\"application/json\" id=\"report-data\">" +
         ScriptSafeJson(ChartData(runs, title, cells)) + "</script>\n";
  doc += std::string("<script>") + kScriptPrelude + kReportScript + "</script>\n</body>\n</html>\n";
  return doc;
}

Status WriteHtmlReport(const std::vector<RunResult>& runs, const std::string& title,
                       const std::string& path) {
  ASSIGN_OR_RETURN(std::string doc, RenderHtmlReport(runs, title));
  return html_internal::WriteFileAtomically(path, doc);
}

namespace html_internal {

std::string Escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON that is safe inside <script>: '<', '>' and '&' only occur inside JSON strings, where their
// \u escapes mean the same, so "</script>" or "<!--" in a host name cannot end the element.
std::string ScriptSafeJson(const nlohmann::json& value) {
  std::string text = JsonText(value);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PageHead(const std::string& title) {
  std::string doc;
  doc += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  doc += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  // Nothing may be fetched: this page must open offline, and a report never calls out.
  doc +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n";
  doc += "<title>" + Escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n";
  doc += "<body data-charts=\"pending\">\n";
  return doc;
}

const char* ChartScriptPrelude() { return kScriptPrelude; }

std::string HtmlTable(const FormattedTable& table, const std::string& attrs) {
  std::string out = "<div class=\"scroll\"><table " + attrs + ">\n<thead><tr>";
  for (size_t i = 0; i < table.header.size(); ++i) {
    out += fmt::format("<th{}>{}</th>", table.numeric[i] ? " class=\"num\"" : "",
                       Escape(table.header[i]));
  }
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      out += fmt::format("<td{}>{}</td>",
                         i < table.numeric.size() && table.numeric[i] ? " class=\"num\"" : "",
                         Escape(row[i]));
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

Status WriteFileAtomically(const std::string& path, const std::string& doc) {
  const std::string temp = path + ".tmp" + std::to_string(getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError("cannot write " + temp);
    out << doc;
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      return Status::IoError("cannot write " + temp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    return Status::IoError("cannot move the report to " + path + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace html_internal

}  // namespace chaoslab
