// The lab's strict YAML reading (yaml_file.h), and the text of durations and times of day
// (ParseDuration, FormatTimeOfDay... of config_loader.h).
#include "lab/config/yaml_file.h"

#include <yaml-cpp/eventhandler.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "lab/common/identifier.h"
#include "lab/config/assumptions.h"
#include "lab/config/config_loader.h"

namespace chaoslab::config {

using internal::Describe;

namespace {

namespace fs = std::filesystem;

// Playbooks, recipes and calibrations are a few kilobytes; anything this big is not one.
constexpr std::uintmax_t kMaxFileBytes = 4 << 20;

// Where the second YAML document of `text` is, if there is one; parses without building nodes
// and stops after the second document. Throws what yaml-cpp's parser throws.
std::optional<YAML::Mark> SecondDocument(const std::string& text) {
  // Records where the second document's first node is (its start if it has none).
  struct Counter : YAML::EventHandler {
    int documents = 0;
    bool have_node = false;
    YAML::Mark second;
    void OnDocumentStart(const YAML::Mark& mark) override {
      if (++documents == 2) second = mark;
    }
    void Node(const YAML::Mark& mark) {
      if (documents == 2 && !have_node) second = mark, have_node = true;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  const std::string&) override {
      Node(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
      Node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
      Node(mark);
    }
    void OnMapEnd() override {}
  } counter;
  std::istringstream in(text);
  YAML::Parser parser(in);
  while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
  }
  if (counter.documents < 2) return std::nullopt;
  return counter.second;
}

// --- Distributions and lists --------------------------------------------------------------------

constexpr char kDistributionForms[] =
    "a duration ('5m') or a distribution ({uniform: [5m, 20m]}, {triangular: [3m, 5m, 20m]} or "
    "{lognormal: {median: 10m, p90: 30m}})";

// The durations of a `[a, b, ...]` list with exactly `n` entries.
Result<std::vector<Seconds>> ReadDurationList(const YamlFile& file, const YAML::Node& node,
                                              const std::string& what, size_t n) {
  if (!node.IsSequence() || node.size() != n) {
    return file.Error(
        node,
        what + ": expected a list of " + std::to_string(n) + " durations, got " +
            (node.IsSequence() ? "a list of " + std::to_string(node.size()) : Describe(node)));
  }
  std::vector<Seconds> out;
  for (const YAML::Node& item : node) {
    ASSIGN_OR_RETURN(Seconds s, ReadDuration(file, item, what, true));
    out.push_back(s);
  }
  return out;
}

// --- Ranged assumptions (assumptions.h) ----------------------------------------------------------

bool IsAssumption(const YAML::Node& node) { return node.IsMap() && node["assume"].IsDefined(); }

// "setups/hospital.yaml:8:18": the folder and name of the file and where the value is, the same
// in every load of the playbooks wherever they were loaded from.
std::string AssumptionId(const YamlFile& file, const YAML::Node& node) {
  const fs::path p(file.path());
  const SourceLocation at = file.At(node);
  return (p.parent_path().filename() / p.filename()).string() + ":" + std::to_string(at.line) +
         ":" + std::to_string(at.column);
}

// {assume: VALUE, range: [LOW, HIGH]}, each of the three read by `read` (the reader of the plain
// value, with its own checks), LOW <= VALUE <= HIGH. Returns the nominal VALUE, or the drawn one
// when this thread's assumptions carry a draw for it.
template <typename T>
Result<T> ReadAssumed(const YamlFile& file, const YAML::Node& node, const std::string& what,
                      AssumptionKind kind,
                      const std::function<Result<T>(const YAML::Node&)>& read) {
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, what + " (an assumption {assume: VALUE, range: [LOW, HIGH]})",
                   {"assume", "range"}));
  ASSIGN_OR_RETURN(YAML::Node nominal_node, fields.Require("assume"));
  ASSIGN_OR_RETURN(YAML::Node range, fields.Require("range"));
  if (!nominal_node.IsScalar()) {
    return file.Error(nominal_node,
                      what + " assume: expected a plain value, got " + Describe(nominal_node));
  }
  if (!range.IsSequence() || range.size() != 2 || !range[0].IsScalar() || !range[1].IsScalar()) {
    return file.Error(range, what + " range: expected [LOW, HIGH], got " +
                                 (range.IsSequence() ? "a list of " + std::to_string(range.size())
                                                     : Describe(range)));
  }
  ASSIGN_OR_RETURN(T nominal, read(nominal_node));
  ASSIGN_OR_RETURN(T low, read(range[0]));
  ASSIGN_OR_RETURN(T high, read(range[1]));
  if (low > high) {
    return file.Error(range, what + ": range [" + range[0].Scalar() + ", " + range[1].Scalar() +
                                 "]: expected [LOW, HIGH] with LOW <= HIGH");
  }
  if (nominal < low || nominal > high) {
    return file.Error(nominal_node, what + ": the assumed " + nominal_node.Scalar() +
                                        " is outside its range [" + range[0].Scalar() + ", " +
                                        range[1].Scalar() + "]");
  }
  Assumptions* assumptions = CurrentAssumptions();
  if (assumptions == nullptr) return nominal;
  Assumption a;
  a.id = AssumptionId(file, node);
  a.name = what;
  a.where = file.At(node);
  a.kind = kind;
  a.nominal = static_cast<double>(nominal);
  a.low = static_cast<double>(low);
  a.high = static_cast<double>(high);
  return static_cast<T>(assumptions->Resolve(a));
}

}  // namespace

namespace internal {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "'" + node.Scalar() + "'";
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

}  // namespace internal

std::string YamlFile::Resolve(const std::string& written) const {
  fs::path p(written);
  if (p.is_relative()) p = fs::path(path_).parent_path() / p;
  return p.lexically_normal().string();
}

Result<YAML::Node> ParseFile(std::string_view kind, const std::string& as_written,
                             const std::string& path, const SourceLocation* named_at) {
  auto fail = [&](const std::string& msg) -> Status {
    if (named_at != nullptr) return Status::AtLocation(*named_at, msg);
    return Status::NotFound(msg);
  };
  const std::string described = std::string(kind) + " file '" + as_written + "' (resolved to " +
                                internal::AbsolutePath(path) + ")";
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return fail(described + " does not exist");
  if (!fs::is_regular_file(st)) return fail(described + " is not a regular file");
  std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) {
    return fail(described + " is " + std::to_string(size) + " bytes; the lab reads at most " +
                std::to_string(kMaxFileBytes));
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("cannot open " + described, errno);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::FromErrno("cannot read " + described, errno);

  YamlFile file(path);
  std::vector<YAML::Node> docs;
  try {
    // Count first: on some malformed input ('"a", b') yaml-cpp 0.7's LoadAll yields empty
    // documents for ever and grows its vector until memory runs out (found by lab_fuzz_yaml).
    std::optional<YAML::Mark> second = SecondDocument(text.str());
    if (second) {
      return file.Error(file.At(*second), "only one YAML document is allowed in a " +
                                              std::string(kind) + " file, found more");
    }
    docs = YAML::LoadAll(text.str());
  } catch (const YAML::Exception& e) {
    return file.Error(file.At(e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return Status::Internal("reading " + path + ": " + e.what());
  }
  if (docs.empty()) return YAML::Node();  // empty file: the caller reports "expected a map"
  return docs[0];
}

Result<std::string> ReadString(const YamlFile& file, const YAML::Node& node,
                               const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a string, got " + Describe(node));
  }
  return node.Scalar();
}

Result<std::string> ReadName(const YamlFile& file, const YAML::Node& node,
                             const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, node, what));
  if (text.empty()) return file.Error(node, what + ": expected a non-empty string, got ''");
  return text;
}

Result<std::string> ReadIdentifier(const YamlFile& file, const YAML::Node& node,
                                   const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, node, what));
  if (Status ok = CheckIdentifier(what, text); !ok.ok()) return file.Error(node, ok.message());
  return text;
}

Result<int64_t> ReadInt(const YamlFile& file, const YAML::Node& node, const std::string& what,
                        int64_t min, int64_t max) {
  if (IsAssumption(node)) {
    return ReadAssumed<int64_t>(
        file, node, what, AssumptionKind::kInteger,
        [&](const YAML::Node& n) { return ReadInt(file, n, what, min, max); });
  }
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected an integer, got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return file.Error(node, what + ": " + text + " is out of range (" + std::to_string(min) +
                                " to " + std::to_string(max) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return file.Error(node, what + ": expected an integer, got '" + text + "'");
  }
  if (value < min) {
    return file.Error(node, what + " must be at least " + std::to_string(min) + ", got " + text);
  }
  if (value > max) {
    return file.Error(node, what + " must be at most " + std::to_string(max) + ", got " + text);
  }
  return value;
}

Result<uint64_t> ReadUnsigned(const YamlFile& file, const YAML::Node& node,
                              const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a non-negative integer, got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return file.Error(node, what + ": " + text + " is out of range (0 to " +
                                std::to_string(std::numeric_limits<uint64_t>::max()) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return file.Error(node, what + ": expected a non-negative integer, got '" + text + "'");
  }
  return value;
}

Result<double> ReadNumber(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (IsAssumption(node)) {
    return ReadAssumed<double>(file, node, what, AssumptionKind::kNumber,
                               [&](const YAML::Node& n) { return ReadNumber(file, n, what); });
  }
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a number, got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
    return file.Error(node, what + ": expected a number, got '" + text + "'");
  }
  return value;
}

Result<bool> ReadBool(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  return file.Error(node, what + ": expected true or false, got " + Describe(node));
}

Result<Seconds> ReadDuration(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             bool allow_zero) {
  if (IsAssumption(node)) {
    return ReadAssumed<Seconds>(
        file, node, what, AssumptionKind::kDuration,
        [&](const YAML::Node& n) { return ReadDuration(file, n, what, allow_zero); });
  }
  if (!node.IsScalar()) {
    return file.Error(
        node, what + ": expected a duration such as '45s', '5m' or '1.5h', got " + Describe(node));
  }
  Result<Seconds> seconds = ParseDuration(node.Scalar());
  if (!seconds.ok()) return file.Error(node, what + ": " + seconds.status().message());
  if (!allow_zero && *seconds <= 0) {
    return file.Error(node, what + " must be longer than zero, got '" + node.Scalar() + "'");
  }
  return *seconds;
}

// `timezone:` "+02:00", "-04:00", "+05:30", "UTC" or "Z" → seconds to add to UTC.
Result<Seconds> ReadUtcOffset(const YamlFile& file, const YAML::Node& node) {
  const std::string expected =
      "timezone: expected a UTC offset such as \"+02:00\" or \"-04:00\" (between -12:00 and "
      "+14:00; named zones such as Europe/Berlin are not read: write the offset in force on the "
      "scenario's date), got ";
  if (!node.IsScalar()) return file.Error(node, expected + Describe(node));
  const std::string& text = node.Scalar();
  if (text == "UTC" || text == "Z") return 0.0;
  const bool shape = text.size() == 6 && (text[0] == '+' || text[0] == '-') && text[3] == ':' &&
                     std::isdigit(static_cast<unsigned char>(text[1])) &&
                     std::isdigit(static_cast<unsigned char>(text[2])) &&
                     std::isdigit(static_cast<unsigned char>(text[4])) &&
                     std::isdigit(static_cast<unsigned char>(text[5]));
  if (!shape) return file.Error(node, expected + "'" + text + "'");
  const int hours = (text[1] - '0') * 10 + (text[2] - '0');
  const int minutes = (text[4] - '0') * 10 + (text[5] - '0');
  const int sign = text[0] == '-' ? -1 : 1;
  const int total = sign * (hours * 60 + minutes);
  if (minutes >= 60 || total < -12 * 60 || total > 14 * 60) {
    return file.Error(node, expected + "'" + text + "'");
  }
  return total * 60.0;
}

Result<Seconds> ReadTimeOfDay(const YamlFile& file, const YAML::Node& node,
                              const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node,
                      what + ": expected a time of day such as \"04:09\", got " + Describe(node));
  }
  Result<Seconds> t = ParseTimeOfDay(node.Scalar());
  if (!t.ok()) return file.Error(node, what + ": " + t.status().message());
  return *t;
}

Status ExpectNonEmptyList(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (!node.IsSequence()) {
    return file.Error(node, what + ": expected a list, got " + Describe(node));
  }
  if (node.size() == 0) return file.Error(node, what + ": expected at least one entry, got none");
  return Status::Ok();
}

Result<Distribution> ReadDistribution(const YamlFile& file, const YAML::Node& node,
                                      const std::string& what) {
  Distribution d;
  if (node.IsScalar() || IsAssumption(node)) {
    ASSIGN_OR_RETURN(d.a, ReadDuration(file, node, what, true));
    return d;
  }
  if (!node.IsMap() || node.size() != 1) {
    return file.Error(node,
                      what + ": expected " + std::string(kDistributionForms) + ", got " +
                          (node.IsMap() ? "a map with " + std::to_string(node.size()) + " keys"
                                        : Describe(node)));
  }
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what + " (a distribution)",
                                               {"uniform", "triangular", "lognormal"}));
  if (fields.Has("uniform")) {
    const YAML::Node list = fields.Get("uniform");
    ASSIGN_OR_RETURN(std::vector<Seconds> v, ReadDurationList(file, list, what + " uniform", 2));
    if (v[0] > v[1]) {
      return file.Error(list, what + ": uniform [" + FormatDuration(v[0]) + ", " +
                                  FormatDuration(v[1]) + "]: expected [min, max] with min <= max");
    }
    d.kind = Distribution::Kind::kUniform;
    d.a = v[0];
    d.b = v[1];
  } else if (fields.Has("triangular")) {
    const YAML::Node list = fields.Get("triangular");
    ASSIGN_OR_RETURN(std::vector<Seconds> v, ReadDurationList(file, list, what + " triangular", 3));
    if (v[0] > v[1] || v[1] > v[2]) {
      return file.Error(list, what + ": triangular [" + FormatDuration(v[0]) + ", " +
                                  FormatDuration(v[1]) + ", " + FormatDuration(v[2]) +
                                  "]: expected [min, mode, max] with min <= mode <= max");
    }
    d.kind = Distribution::Kind::kTriangular;
    d.a = v[0];
    d.b = v[1];
    d.c = v[2];
  } else {
    ASSIGN_OR_RETURN(Fields ln, Fields::Open(file, fields.Get("lognormal"), what + " lognormal",
                                             {"median", "p90"}));
    ASSIGN_OR_RETURN(YAML::Node median, ln.Require("median"));
    ASSIGN_OR_RETURN(YAML::Node p90, ln.Require("p90"));
    ASSIGN_OR_RETURN(d.a, ReadDuration(file, median, what + " median", false));
    ASSIGN_OR_RETURN(d.b, ReadDuration(file, p90, what + " p90", false));
    if (d.b < d.a) {
      return file.Error(p90, what + ": p90 (" + FormatDuration(d.b) +
                                 ") must not be shorter than the median (" + FormatDuration(d.a) +
                                 ")");
    }
    d.kind = Distribution::Kind::kLognormal;
  }
  return d;
}

Result<bool> ReadConsole(const YamlFile& file, const YAML::Node& node) {
  if (node.IsScalar() && node.Scalar() == "oob") return true;
  if (node.IsScalar() && node.Scalar() == "none") return false;
  return file.Error(node,
                    "console: expected oob (iLO/iDRAC/IPMI, hypervisor or cloud serial "
                    "console) or none, got " +
                        Describe(node));
}

Result<double> ReadPercent(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (IsAssumption(node)) {
    return ReadAssumed<double>(file, node, what, AssumptionKind::kPercent,
                               [&](const YAML::Node& n) { return ReadPercent(file, n, what); });
  }
  if (node.IsScalar()) {
    std::string text = node.Scalar();
    while (!text.empty() && (text.back() == '%' || text.back() == ' ')) text.pop_back();
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size() && v >= 0 && v <= 100) return v;
  }
  return file.Error(
      node, what + ": expected a percentage between 0 and 100 such as 10%, got " + Describe(node));
}

// --- Durations and times of day (config_loader.h) ----------------------------------------------

Result<Seconds> ParseDuration(const std::string& text) {
  const std::string expected =
      "expected a duration such as '45s', '5m', '1.5h', '2d' or a number of seconds, got '" + text +
      "'";
  if (text.empty()) return Status::InvalidArgument(expected);
  const char* begin = text.data();
  const char* end = begin + text.size();
  double value = 0;
  // from_chars takes no sign and no "inf"/"nan" here only if we check the first character.
  if (!(*begin >= '0' && *begin <= '9')) return Status::InvalidArgument(expected);
  auto [rest, ec] = std::from_chars(begin, end, value, std::chars_format::fixed);
  if (ec != std::errc() || !std::isfinite(value)) return Status::InvalidArgument(expected);
  double unit = 1;
  std::string_view suffix(rest, end - rest);
  if (suffix.empty() || suffix == "s") {
    unit = 1;
  } else if (suffix == "m") {
    unit = 60;
  } else if (suffix == "h") {
    unit = 3600;
  } else if (suffix == "d") {
    unit = 86400;
  } else {
    return Status::InvalidArgument(expected);
  }
  return value * unit;
}

Result<Seconds> ParseTimeOfDay(const std::string& text) {
  const std::string expected =
      "expected a time of day \"HH:MM\" or \"HH:MM:SS\" (quotes optional), got '" + text + "'";
  int parts[3] = {0, 0, 0};
  int count = 0;
  size_t pos = 0;
  while (true) {
    size_t colon = text.find(':', pos);
    std::string_view part(text.data() + pos,
                          (colon == std::string::npos ? text.size() : colon) - pos);
    if (count == 3 || part.empty() || part.size() > 2) return Status::InvalidArgument(expected);
    for (char c : part) {
      if (c < '0' || c > '9') return Status::InvalidArgument(expected);
    }
    if (count > 0 && part.size() != 2) return Status::InvalidArgument(expected);
    std::from_chars(part.data(), part.data() + part.size(), parts[count]);
    ++count;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (count < 2) return Status::InvalidArgument(expected);
  if (parts[0] > 23 || parts[1] > 59 || parts[2] > 59) {
    return Status::InvalidArgument("'" + text +
                                   "' is not a time of day: hours run 00-23, minutes and seconds "
                                   "00-59");
  }
  return Seconds(parts[0] * 3600 + parts[1] * 60 + parts[2]);
}

std::string FormatDuration(Seconds s) {
  char buf[64];
  if (s >= 3600 && std::fmod(s, 3600) == 0) {
    std::snprintf(buf, sizeof buf, "%.10gh", s / 3600);
  } else if (s >= 60 && std::fmod(s, 60) == 0) {
    std::snprintf(buf, sizeof buf, "%.10gm", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.10gs", s);
  }
  return buf;
}

std::string FormatTimeOfDay(Seconds t) {
  long total = std::lround(t);
  char buf[32];
  if (total % 60 == 0) {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", total / 3600, (total / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", total / 3600, (total / 60) % 60,
                  total % 60);
  }
  return buf;
}

}  // namespace chaoslab::config
