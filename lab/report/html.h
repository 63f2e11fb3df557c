// The HTML report: one self-contained file (inline CSS, script and SVG; nothing fetched, so it
// opens offline) with the fleet recovery curve per cell, time-to-recover distributions, service
// downtime and the comparison table.
//
// The charts are drawn in the browser by an inline script from JSON embedded in the page, so a
// headless browser can check that the script really ran. Ids and classes a test can look for:
//   <body data-charts="drawn">          set once every chart was drawn ("error" otherwise, with
//                                       the message in #report-error)
//   svg#recovery-chart path.curve-mean  one per cell (runbook, or "runbook / setup" when the runs
//                                       span several setups), data-cell=<label>; path.curve-run
//                                       per run when a cell has several
//   svg#ttr-chart g.ttr-box             one per cell with recovered hosts; circle.ttr-point per
//   host svg#service-chart rect.service-bar  one per (service, cell) with that service #comparison
//   table.comparison        the comparison tables; table#runs-table lists the runs
#pragma once

#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/report/results.h"

namespace chaoslab {

// The HTML document for `runs` (one run, or every run of a comparison). InvalidArgument when
// `runs` is empty.
Result<std::string> RenderHtmlReport(const std::vector<RunResult>& runs, const std::string& title);

// Renders and writes it to `path` (through a temporary file renamed into place, so a reader never
// sees half a report). IoError when the file cannot be written.
Status WriteHtmlReport(const std::vector<RunResult>& runs, const std::string& title,
                       const std::string& path);

}  // namespace chaoslab
