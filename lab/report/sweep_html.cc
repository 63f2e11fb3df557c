// The sweep's HTML page (sweep.h): the shared page head and chart helpers of html_page.h, the
// figure against the values drawn by an inline script from the JSON embedded in the page.
#include <fmt/format.h>

#include "lab/report/html_page.h"
#include "lab/report/sweep.h"

namespace chaoslab {
namespace {

using html_internal::Escape;
using html_internal::ScriptSafeJson;

// x: the first path's values, evenly spaced in the order given, or by value when all are numbers.
// One line a series (a combination of the other paths' values); whiskers from low to high.
constexpr const char* kSweepScript = R"js(
  function numeric(values) {
    return values.every((v) => v.trim() !== '' && isFinite(Number(v)));
  }
  function drawSweep() {
    const svg = document.getElementById('sweep-chart');
    const W = 860, H = 400, L = 64, R = 24, T = 16, B = 56;
    frame(svg, W, H);
    const xs = [...new Set(data.cells.map((c) => c.values[0]))];
    const byValue = numeric(xs);
    const lo = byValue ? Math.min(...xs.map(Number)) : 0;
    const hi = byValue ? Math.max(...xs.map(Number)) : xs.length - 1;
    const span = hi > lo ? hi - lo : 1;
    const x = (v) => {
      const at = byValue ? (Number(v) - lo) / span : xs.length > 1 ? xs.indexOf(v) / span : 0.5;
      return L + 20 + (W - L - R - 40) * at;
    };
    let top = 0;
    for (const c of data.cells) if (c.mean !== null) top = Math.max(top, c.high, c.mean);
    if (!(top > 0)) top = 1;
    const step = niceStep(top, 5), yMax = Math.ceil(top / step) * step;
    const y = (v) => T + (H - T - B) * (1 - v / yMax);
    const g = el(svg, 'g', {class: 'axis'});
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      el(g, 'line', {class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v)});
      el(g, 'text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, num(v));
    }
    el(g, 'line', {x1: L, x2: L, y1: T, y2: H - B});
    el(g, 'line', {x1: L, x2: W - R, y1: H - B, y2: H - B});
    for (const v of xs) el(g, 'text', {x: x(v), y: H - B + 16, 'text-anchor': 'middle'}, v);
    el(g, 'text', {x: (L + W - R) / 2, y: H - 14, 'text-anchor': 'middle'}, data.paths[0]);
    el(g, 'text', {x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle',
                   transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')'}, data.figure);
    const series = [...new Set(data.cells.map((c) => c.series))];
    const legend = document.getElementById('legend');
    series.forEach((name, si) => {
      const cells = data.cells.filter((c) => c.series === name && c.mean !== null);
      if (name !== '') {
        const item = html(legend, 'span', {class: 'item', 'data-series': name});
        html(item, 'span', {class: 'swatch', style: 'background:' + color(si)});
        html(item, 'span', {}, name);
      }
      if (cells.length > 1) {
        const d = cells.map((c, i) => (i ? 'L' : 'M') + x(c.values[0]).toFixed(1) + ' ' +
                                      y(c.mean).toFixed(1)).join('');
        el(svg, 'path', {class: 'sweep-line', d: d, fill: 'none', stroke: color(si),
                         'stroke-width': 2, 'data-series': name});
      }
      for (const c of data.cells.filter((c) => c.series === name)) {
        if (c.mean === null) {
          el(svg, 'text', {class: 'no-data', x: x(c.values[0]), y: y(0) - 6,
                           'text-anchor': 'middle'}, c.absent);
          continue;
        }
        if (c.n > 1) {
          el(svg, 'line', {class: 'sweep-ci', x1: x(c.values[0]), x2: x(c.values[0]),
                           y1: y(c.low), y2: y(c.high), stroke: color(si)});
        }
        const p = el(svg, 'circle', {class: 'sweep-point', cx: x(c.values[0]), cy: y(c.mean),
                                     r: 4, fill: color(si), 'data-x': c.values[0],
                                     'data-series': name, 'data-mean': c.mean});
        el(p, 'title', {}, c.label + ': ' + num(c.mean) + (c.n > 1 ? ' (' + num(c.low) + ' to ' +
           num(c.high) + ', ' + c.n + ' runs)' : ''));
      }
    });
  }
  drawAll([drawSweep]);
})();
)js";

nlohmann::json SweepChartData(const Sweep& sweep) {
  const SweepFigure& f = sweep.figure;
  nlohmann::json cells = nlohmann::json::array();
  for (const SweepRow& row : SummarizeSweep(sweep)) {
    std::string series, label;
    for (size_t p = 0; p < row.values.size(); ++p) {
      label += (p ? ", " : "") + sweep.paths[p] + "=" + row.values[p];
      if (p > 0) series += (p > 1 ? ", " : "") + sweep.paths[p] + "=" + row.values[p];
    }
    const bool has = row.figure.value.has_value();
    cells.push_back({{"values", row.values},
                     {"series", series},
                     {"label", label},
                     {"mean", has ? nlohmann::json(row.figure.value->mean / f.scale) : nullptr},
                     {"low", has ? nlohmann::json(row.figure.value->low / f.scale) : nullptr},
                     {"high", has ? nlohmann::json(row.figure.value->high / f.scale) : nullptr},
                     {"n", has ? row.figure.value->n : 0},
                     {"absent", f.metric.rfind("healthy_", 0) == 0 ? "never" : "–"}});
  }
  return {{"paths", sweep.paths},
          {"figure", f.unit.empty() ? f.label : f.label + " (" + f.unit + ")"},
          {"cells", std::move(cells)}};
}

}  // namespace

Result<std::string> RenderSweepHtml(const Sweep& sweep, const std::string& title) {
  if (sweep.cells.empty() || sweep.paths.empty()) {
    return Status::InvalidArgument("a sweep without cells has nothing to plot");
  }
  int runs = 0;
  for (const SweepCell& cell : sweep.cells) runs += static_cast<int>(cell.runs.size());
  std::string doc = html_internal::PageHead(title);
  doc += "<h1>" + Escape(title) + "</h1>\n<p class=\"meta\">" +
         Escape(fmt::format("Scenario {} · {} cells · {} runs · figure {}",
                            sweep.scenario.empty() ? "–" : sweep.scenario, sweep.cells.size(), runs,
                            sweep.figure.name)) +
         "</p>\n<p id=\"report-error\"></p>\n<div id=\"legend\"></div>\n";
  doc += "<h2>" + Escape(sweep.figure.label) + " against " + Escape(sweep.paths.front()) +
         "</h2>\n<p class=\"note\">Mean over each cell's repetitions; the vertical line is the "
         "95 % confidence interval (Student's t) when a cell has several.</p>\n";
  doc += "<svg id=\"sweep-chart\" class=\"chart\" role=\"img\" aria-label=\"" +
         Escape(sweep.figure.label) + " against " + Escape(sweep.paths.front()) + "\"></svg>\n";
  doc += "<h2>Cells</h2>\n" + html_internal::HtmlTable(FormatSweep(sweep), "id=\"sweep-table\"");
  doc += "<p class=\"note\">" + Escape(ComparisonLegend()) + "</p>\n";
  doc += "<script type=\"application/json\" id=\"report-data\">" +
         ScriptSafeJson(SweepChartData(sweep)) + "</script>\n";
  doc += std::string("<script>") + html_internal::ChartScriptPrelude() + kSweepScript +
         "</script>\n</body>\n</html>\n";
  return doc;
}

Status WriteSweepHtml(const Sweep& sweep, const std::string& title, const std::string& path) {
  ASSIGN_OR_RETURN(std::string doc, RenderSweepHtml(sweep, title));
  return html_internal::WriteFileAtomically(path, doc);
}

}  // namespace chaoslab
