// A plain-text table whose columns are as wide as their widest cell (used by the run and the
// comparison tables). Internal to lab/report. Not thread-safe.
#pragma once

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

namespace chaoslab::report_internal {

// Display width of UTF-8 text: counts code points, not bytes (so "–" and "±" are one column).
inline size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

class TextTable {
 public:
  // `right_aligned[i]` says whether column i holds numbers (right-aligned).
  TextTable(std::vector<std::string> header, std::vector<bool> right_aligned)
      : right_(std::move(right_aligned)) {
    rows_.push_back(std::move(header));
  }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void AddRule() { rows_.push_back({}); }  // an empty row prints as a dashed line

  void Print(std::ostream& out) const {
    std::vector<size_t> widths(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        widths[i] = std::max(widths[i], Width(row[i]));
      }
    }
    size_t total = 0;
    for (size_t w : widths) total += w + 2;
    for (const auto& row : rows_) {
      std::string line;
      if (row.empty()) line.assign(total - 2, '-');
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        std::string pad(widths[i] - Width(row[i]), ' ');
        if (i > 0) line += "  ";
        line += right_[i] ? pad + row[i] : row[i] + pad;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << "  " << line << '\n';
    }
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace chaoslab::report_internal
