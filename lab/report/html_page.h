// Internal to lab/report: what every self-contained HTML page of the lab shares (the run and
// comparison report, html.cc; the sweep page, sweep_html.cc). Not an API: callers use html.h or
// sweep.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lab/common/status.h"
#include "lab/report/compare.h"

namespace chaoslab::html_internal {

// Text safe inside HTML elements and attribute values.
std::string Escape(const std::string& text);

// JSON safe inside <script>: "</script>" or "<!--" in a name cannot end the element.
std::string ScriptSafeJson(const nlohmann::json& value);

// From <!DOCTYPE html> to <body data-charts="pending">: the content security policy that lets the
// page fetch nothing, the title and the shared style sheet.
std::string PageHead(const std::string& title);

// The start of a page's inline chart script: "(function () { 'use strict';" and the helpers every
// chart uses (el, html, color, timeUnit, niceStep, num, quantile, frame, timeAxis,
// shareAxis, drawAll) over `data`,
// the JSON of <script id="report-data">. A page appends its own drawing code and "})();".
const char* ChartScriptPrelude();

// A formatted table as <table attrs> in a scrolling <div>; numeric columns right-aligned.
std::string HtmlTable(const FormattedTable& table, const std::string& attrs);

// Writes `doc` to `path` through a temporary file renamed into place (a reader never sees half a
// page). IoError when it cannot.
Status WriteFileAtomically(const std::string& path, const std::string& doc);

}  // namespace chaoslab::html_internal
