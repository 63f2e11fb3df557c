// The uncertainty report's page (uncertainty.h): the band plot drawn by an inline script from the
// JSON embedded in the page (the chart helpers of html_page.h), then the tables of the text.
#include <fmt/format.h>

#include "lab/report/html_page.h"
#include "lab/report/uncertainty.h"

namespace chaoslab {
namespace {

using html_internal::Escape;
using html_internal::ScriptSafeJson;

// x: time after release; y: healthy share. The 5-95 % band as a shaded polygon, the median of
// the draws as a line, the nominal run dashed.
constexpr const char* kBandScript = R"js(
  function drawBand() {
    const svg = document.getElementById('band-chart');
    const W = 860, H = 400, L = 64, R = 24, T = 16, B = 56;
    frame(svg, W, H);
    const pts = data.band.filter((p) => p.median !== null);
    if (pts.length === 0) throw new Error('no point of the band has a value');
    const end = pts[pts.length - 1].after_s || 1;
    const x = (t) => L + (W - L - R) * t / end;
    const y = (v) => T + (H - T - B) * (1 - v);
    timeAxis(svg, L, W - R, H - B, T, end, timeUnit(end), 'time after release');
    shareAxis(svg, L, W - R, T, H - B, y);
    const line = (key) => pts.filter((p) => p[key] !== null)
        .map((p, i) => (i ? 'L' : 'M') + x(p.after_s).toFixed(1) + ' ' + y(p[key]).toFixed(1))
        .join('');
    const upper = pts.map((p, i) => (i ? 'L' : 'M') + x(p.after_s).toFixed(1) + ' ' +
                                    y(p.p95).toFixed(1)).join('');
    const lower = pts.slice().reverse().map((p) => 'L' + x(p.after_s).toFixed(1) + ' ' +
                                                   y(p.p5).toFixed(1)).join('');
    el(svg, 'path', {class: 'band', d: upper + lower + 'Z', fill: color(0), 'fill-opacity': 0.25,
                     stroke: 'none', 'data-points': pts.length});
    el(svg, 'path', {class: 'band-median', d: line('median'), fill: 'none', stroke: color(0),
                     'stroke-width': 2});
    el(svg, 'path', {class: 'band-nominal', d: line('nominal'), fill: 'none', stroke: color(1),
                     'stroke-width': 1.5, 'stroke-dasharray': '6 4'});
    const legend = document.getElementById('legend');
    [['median of the draws', 0], ['nominal run', 1]].forEach(([name, c]) => {
      const item = html(legend, 'span', {class: 'item'});
      html(item, 'span', {class: 'swatch', style: 'background:' + color(c)});
      html(item, 'span', {}, name);
    });
    const band = html(legend, 'span', {class: 'item'});
    html(band, 'span', {class: 'swatch', style: 'opacity:0.25;background:' + color(0)});
    html(band, 'span', {}, '5–95 % of the draws');
  }
  drawAll([drawBand]);
})();
)js";

}  // namespace

Result<std::string> RenderUncertaintyHtml(const UncertaintyReport& r, const std::string& title) {
  if (r.plot_times_s.empty()) {
    return Status::InvalidArgument("an uncertainty report without a curve has nothing to plot");
  }
  std::string doc = html_internal::PageHead(title);
  doc += "<h1>" + Escape(title) + "</h1>\n<p class=\"meta\">" +
         Escape(fmt::format("Scenario {} · {} draws · {} ranged assumption(s) · seed {}",
                            r.scenario, r.quantiles.size(), r.assumptions.size(), r.seed)) +
         "</p>\n<p class=\"note\">" + Escape(r.method) +
         "</p>\n<p id=\"report-error\"></p>\n<div id=\"legend\"></div>\n";
  doc +=
      "<h2>Recovery curve with its band</h2>\n<svg id=\"band-chart\" class=\"chart\" "
      "role=\"img\" aria-label=\"share of hosts healthy against time after release\"></svg>\n";
  int n = 0;
  for (const FormattedTable& table : FormatUncertainty(r)) {
    doc += "<h2>" + Escape(table.title) + "</h2>\n" +
           html_internal::HtmlTable(table, fmt::format("id=\"uncertainty-table-{}\"", n++));
  }
  doc += "<script type=\"application/json\" id=\"report-data\">" +
         ScriptSafeJson(UncertaintyJson(r)) + "</script>\n";
  doc += std::string("<script>") + html_internal::ChartScriptPrelude() + kBandScript +
         "</script>\n</body>\n</html>\n";
  return doc;
}

Status WriteUncertaintyHtml(const UncertaintyReport& r, const std::string& title,
                            const std::string& path) {
  ASSIGN_OR_RETURN(std::string doc, RenderUncertaintyHtml(r, title));
  return html_internal::WriteFileAtomically(path, doc);
}

}  // namespace chaoslab
