#include "lab/config/config_loader.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "lab/common/identifier.h"
#include "lab/config/yaml_keys.h"

namespace chaoslab::config {
namespace {

namespace fs = std::filesystem;

// Playbooks are a few kilobytes; anything this big is not one.
constexpr std::uintmax_t kMaxFileBytes = 4 << 20;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

template <typename E>
std::string AllowedNames(const std::vector<E>& values, std::string_view (*name_of)(E)) {
  std::vector<std::string> names;
  for (E v : values) names.emplace_back(name_of(v));
  return Join(names);
}

// How a node looks, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "'" + node.Scalar() + "'";
}

// One YAML file being read. It knows the path shown in messages and turns node marks (0-based) into
// 1-based file:line:column locations.
class YamlFile {
 public:
  explicit YamlFile(std::string display_path) : path_(std::move(display_path)) {}

  const std::string& path() const { return path_; }

  SourceLocation At(const YAML::Mark& mark) const {
    SourceLocation where{path_};
    if (!mark.is_null() && mark.line >= 0) {
      where.line = mark.line + 1;
      where.column = mark.column + 1;
    }
    return where;
  }
  SourceLocation At(const YAML::Node& node) const {
    return node.IsDefined() ? At(node.Mark()) : At(YAML::Mark::null_mark());
  }
  Status Error(const YAML::Node& node, const std::string& msg) const {
    return Status::AtLocation(At(node), msg);
  }
  Status Error(const SourceLocation& where, const std::string& msg) const {
    return Status::AtLocation(where, msg);
  }

  // A path written inside this file, resolved against this file's folder (lexically, for messages).
  std::string Resolve(const std::string& written) const {
    fs::path p(written);
    if (p.is_relative()) p = fs::path(path_).parent_path() / p;
    return p.lexically_normal().string();
  }

 private:
  std::string path_;
};

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

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

// Reads and parses one playbook file. `kind` ("setup", "runbook"...) and `as_written` make the
// "does not exist" message; `named_at`, if not null, is where another file named this one.
Result<YAML::Node> ParseFile(std::string_view kind, const std::string& as_written,
                             const std::string& path, const SourceLocation* named_at) {
  auto fail = [&](const std::string& msg) -> Status {
    if (named_at != nullptr) return Status::AtLocation(*named_at, msg);
    return Status::NotFound(msg);
  };
  const std::string described =
      std::string(kind) + " file '" + as_written + "' (resolved to " + AbsolutePath(path) + ")";
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return fail(described + " does not exist");
  if (!fs::is_regular_file(st)) return fail(described + " is not a regular file");
  std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) {
    return fail(described + " is " + std::to_string(size) + " bytes; a playbook is at most " +
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

// The entries of a YAML map, checked against the keys that `what` (e.g. "group") may have:
// unknown keys and duplicate keys are errors.
class Fields {
 public:
  static Result<Fields> Open(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             const std::vector<std::string_view>& allowed) {
    RETURN_IF_ERROR(CheckYamlKeys(file.path(), node, what, {allowed.begin(), allowed.end()}));
    Fields fields(file, node, what);
    for (const auto& entry : node) {
      fields.entries_.emplace(entry.first.Scalar(), std::make_pair(entry.first, entry.second));
    }
    return fields;
  }

  bool Has(const std::string& key) const { return entries_.count(key) > 0; }

  // The value of `key`, or a null node when it is absent (check Has() first).
  YAML::Node Get(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? YAML::Node() : it->second.second;
  }

  Result<YAML::Node> Require(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      return file_->Error(node_, "missing required key '" + key + "' in " + what_);
    }
    return it->second.second;
  }

  SourceLocation where() const { return file_->At(node_); }

 private:
  Fields(const YamlFile& file, YAML::Node node, std::string what)
      : file_(&file), node_(std::move(node)), what_(std::move(what)) {}

  const YamlFile* file_;
  YAML::Node node_;
  std::string what_;
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> entries_;  // name → (key, value)
};

Result<std::string> ReadString(const YamlFile& file, const YAML::Node& node,
                               const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a string, got " + Describe(node));
  }
  return node.Scalar();
}

// A non-empty string (paths, versions).
Result<std::string> ReadName(const YamlFile& file, const YAML::Node& node,
                             const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, node, what));
  if (text.empty()) return file.Error(node, what + ": expected a non-empty string, got ''");
  return text;
}

// A name that may become a path, a domain name or an argument: the one rule of identifier.h.
Result<std::string> ReadIdentifier(const YamlFile& file, const YAML::Node& node,
                                   const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, node, what));
  if (Status ok = CheckIdentifier(what, text); !ok.ok()) return file.Error(node, ok.message());
  return text;
}

Result<int64_t> ReadInt(const YamlFile& file, const YAML::Node& node, const std::string& what,
                        int64_t min, int64_t max) {
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

template <typename E>
Result<E> ReadEnum(const YamlFile& file, const YAML::Node& node, const std::string& what,
                   std::optional<E> (*parse)(std::string_view), const std::vector<E>& all,
                   std::string_view (*name_of)(E)) {
  const std::string allowed = AllowedNames(all, name_of);
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected one of " + allowed + ", got " + Describe(node));
  }
  std::optional<E> value = parse(node.Scalar());
  if (!value) {
    return file.Error(node, "unknown " + what + " '" + node.Scalar() + "'; allowed: " + allowed);
  }
  return *value;
}

// A list with at least one element.
Status ExpectNonEmptyList(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (!node.IsSequence()) {
    return file.Error(node, what + ": expected a list, got " + Describe(node));
  }
  if (node.size() == 0) return file.Error(node, what + ": expected at least one entry, got none");
  return Status::Ok();
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

Result<Distribution> ReadDistribution(const YamlFile& file, const YAML::Node& node,
                                      const std::string& what) {
  Distribution d;
  if (node.IsScalar()) {
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

// A name or a list of names ("role: server" or "role: [server, kiosk]"), each with its node.
Result<std::vector<YAML::Node>> ReadOneOrMore(const YamlFile& file, const YAML::Node& node,
                                              const std::string& what) {
  std::vector<YAML::Node> out;
  if (node.IsScalar()) {
    out.push_back(node);
  } else if (node.IsSequence() && node.size() > 0) {
    for (const YAML::Node& item : node) out.push_back(item);
  } else {
    return file.Error(
        node, what + ": expected a name or a non-empty list of names, got " + Describe(node));
  }
  for (const YAML::Node& item : out) RETURN_IF_ERROR(ReadIdentifier(file, item, what).status());
  return out;
}

// --- Runbooks -----------------------------------------------------------------------------------

// The host facts a step can depend on, in the order messages list them.
const std::vector<std::string_view>& ConditionKeys() {
  static const auto* keys =
      new std::vector<std::string_view>{"bitlocker", "role", "console", "cloud", "group", "site"};
  return *keys;
}

// "oob" | "none" → whether the host has an out-of-band console.
Result<bool> ReadConsole(const YamlFile& file, const YAML::Node& node) {
  if (node.IsScalar() && node.Scalar() == "oob") return true;
  if (node.IsScalar() && node.Scalar() == "none") return false;
  return file.Error(node,
                    "console: expected oob (iLO/iDRAC/IPMI, hypervisor or cloud serial "
                    "console) or none, got " +
                        Describe(node));
}

Result<Conditions> ReadConditions(const YamlFile& file, const YAML::Node& node) {
  Conditions when;
  when.where = file.At(node);
  // A dedicated message for unknown keys: they are facts the lab does not know about hosts.
  if (node.IsMap()) {
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;  // Fields reports it
      const std::string& key = entry.first.Scalar();
      bool known = false;
      for (std::string_view k : ConditionKeys()) known = known || k == key;
      if (!known) {
        std::vector<std::string> names(ConditionKeys().begin(), ConditionKeys().end());
        return file.Error(entry.first, "when: unknown host fact '" + key +
                                           "'; a step can depend on: " + Join(names));
      }
    }
  }
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "when (host facts)", ConditionKeys()));
  if (fields.Has("bitlocker")) {
    ASSIGN_OR_RETURN(when.bitlocker, ReadBool(file, fields.Get("bitlocker"), "when bitlocker"));
  }
  if (fields.Has("console")) {
    ASSIGN_OR_RETURN(when.oob_console, ReadConsole(file, fields.Get("console")));
  }
  if (fields.Has("cloud")) {
    ASSIGN_OR_RETURN(when.cloud, ReadBool(file, fields.Get("cloud"), "when cloud"));
  }
  if (fields.Has("role")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> roles,
                     ReadOneOrMore(file, fields.Get("role"), "when role"));
    for (const YAML::Node& r : roles) {
      ASSIGN_OR_RETURN(Role role, ReadEnum(file, r, "role", ParseRole, AllRoles(), RoleName));
      when.roles.push_back(role);
    }
  }
  if (fields.Has("group")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> groups,
                     ReadOneOrMore(file, fields.Get("group"), "when group"));
    for (const YAML::Node& g : groups) when.groups.push_back(g.Scalar());
  }
  if (fields.Has("site")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> sites,
                     ReadOneOrMore(file, fields.Get("site"), "when site"));
    for (const YAML::Node& s : sites) when.sites.push_back(s.Scalar());
  }
  return when;
}

Result<std::vector<Resource>> ReadNeeds(const YamlFile& file, const YAML::Node& node) {
  const std::string allowed = AllowedNames(AllResources(), ResourceName);
  if (!node.IsSequence() && !node.IsScalar()) {
    return file.Error(
        node, "needs: expected a list of resources (" + allowed + "), got " + Describe(node));
  }
  std::vector<YAML::Node> items;
  if (node.IsScalar()) {
    items.push_back(node);
  } else {
    for (const YAML::Node& item : node) items.push_back(item);
  }
  std::vector<Resource> needs;
  for (const YAML::Node& item : items) {
    ASSIGN_OR_RETURN(Resource r,
                     ReadEnum(file, item, "resource", ParseResource, AllResources(), ResourceName));
    if (std::find(needs.begin(), needs.end(), r) != needs.end()) {
      return file.Error(item, "needs: '" + std::string(ResourceName(r)) + "' is listed twice");
    }
    needs.push_back(r);
  }
  return needs;
}

// File names the delete step may type at the guest's console: a glob within the sensor's content
// folder. Plain characters only, so nothing written here can become a path, an option or a second
// command on the console.
Status CheckPattern(const YamlFile& file, const YAML::Node& node, const std::string& pattern) {
  bool ok = !pattern.empty() && pattern.size() <= 128 && pattern[0] != '-' && pattern[0] != '.';
  for (char c : pattern) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '*' || c == '?');
  }
  if (ok) return Status::Ok();
  return file.Error(node, "delete pattern '" + pattern +
                              "': expected a file name in the sensor's content folder, made of "
                              "letters, digits, '-', '_', '.', '*' and '?' (not starting with '-' "
                              "or '.'), such as \"C-00000291*.sys\"");
}

// The keys a step body may have besides when, needs and takes.
std::vector<std::string_view> StepKeys(StepKind kind) {
  std::vector<std::string_view> keys;
  switch (kind) {
    case StepKind::kReboot:
      keys.push_back("times");
      break;
    case StepKind::kBoot:
      keys.push_back("into");
      break;
    case StepKind::kDelete:
      keys.push_back("pattern");
      break;
    case StepKind::kUnlockBitlocker:
    case StepKind::kRestart:
    case StepKind::kRescueDisk:
    case StepKind::kRevertSnapshot:
    case StepKind::kReimage:
      break;
  }
  for (std::string_view common : {"when", "needs", "takes"}) keys.push_back(common);
  return keys;
}

// Reads the kind-specific value (times, into or pattern) from `node`.
Status ReadStepValue(const YamlFile& file, const std::string& key, const YAML::Node& node,
                     StepConfig& step) {
  if (key == "times") {
    ASSIGN_OR_RETURN(step.times, ReadInt(file, node, "times", 1, 1000));
  } else if (key == "into") {
    ASSIGN_OR_RETURN(step.into, ReadEnum(file, node, "boot target", ParseBootTarget,
                                         AllBootTargets(), BootTargetName));
  } else if (key == "pattern") {
    ASSIGN_OR_RETURN(step.pattern, ReadString(file, node, "pattern"));
    RETURN_IF_ERROR(CheckPattern(file, node, step.pattern));
  }
  return Status::Ok();
}

void AddNeed(StepConfig& step, Resource r) {
  if (std::find(step.needs.begin(), step.needs.end(), r) == step.needs.end()) {
    step.needs.push_back(r);
  }
}

Result<StepConfig> ReadStep(const YamlFile& file, const YAML::Node& node, size_t index) {
  const std::string what = "step " + std::to_string(index + 1);
  const std::string kinds = AllowedNames(AllStepKinds(), StepKindName);
  StepConfig step;
  step.where = file.At(node);
  YAML::Node key;
  YAML::Node body;  // null: the step's defaults
  if (node.IsScalar()) {
    key = node;  // "- restart"
  } else if (node.IsMap() && node.size() == 1) {
    key = node.begin()->first;
    body = node.begin()->second;
  } else {
    return file.Error(node,
                      what + ": expected a step kind (" + kinds +
                          ") or a map with exactly one key, the step kind, e.g. '- restart' or "
                          "'- reboot: {times: 3}'; got " +
                          (node.IsMap() ? "a map with " + std::to_string(node.size()) + " keys"
                                        : Describe(node)));
  }
  ASSIGN_OR_RETURN(step.kind,
                   ReadEnum(file, key, "step kind", ParseStepKind, AllStepKinds(), StepKindName));
  const std::string step_what = "the " + std::string(StepKindName(step.kind)) + " step";
  const std::vector<std::string_view> keys = StepKeys(step.kind);
  if (body.IsNull()) {
    // "- reboot:" or "- restart": every default.
  } else if (body.IsScalar()) {
    // Short forms: "- reboot: 15", "- boot: safe-mode", "- delete: C-00000291*.sys".
    if (keys.size() == 3) {
      return file.Error(body, step_what + ": expected nothing or a map with keys " +
                                  Join(std::vector<std::string>(keys.begin(), keys.end())) +
                                  ", got " + Describe(body));
    }
    RETURN_IF_ERROR(ReadStepValue(file, std::string(keys.front()), body, step));
  } else {
    ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, body, step_what, keys));
    for (std::string_view k : keys) {
      const std::string name(k);
      if (!fields.Has(name)) continue;
      const YAML::Node value = fields.Get(name);
      if (name == "when") {
        ASSIGN_OR_RETURN(step.when, ReadConditions(file, value));
      } else if (name == "needs") {
        ASSIGN_OR_RETURN(step.needs, ReadNeeds(file, value));
      } else if (name == "takes") {
        ASSIGN_OR_RETURN(step.takes, ReadDistribution(file, value, "takes"));
      } else {
        RETURN_IF_ERROR(ReadStepValue(file, name, value, step));
      }
    }
  }
  if (step.when.where.file.empty()) step.when.where = step.where;
  // Needs a step has whatever the runbook says: the stick to boot from, the server to boot from,
  // the escrow that holds the recovery password.
  if (step.kind == StepKind::kBoot && step.into == BootTarget::kUsb) {
    AddNeed(step, Resource::kUsbStick);
  }
  if (step.kind == StepKind::kBoot && step.into == BootTarget::kPxe) {
    AddNeed(step, Resource::kPxeServer);
  }
  if (step.kind == StepKind::kUnlockBitlocker) AddNeed(step, Resource::kKeyEscrow);
  return step;
}

// A directed graph over named nodes whose edges come from priority rules ("a before b").
class PriorityGraph {
 public:
  explicit PriorityGraph(std::vector<std::string> names)
      : names_(std::move(names)), edges_(names_.size()) {}

  void Add(size_t from, size_t to, const SourceLocation& rule) {
    edges_[from].push_back({to, rule});
  }

  // An error naming one cycle, located at the rule of the cycle written last in the file; OK if
  // there is none. `noun` prefixes each node in the message ("group " or "").
  Status CheckAcyclic(const std::string& noun) const {
    std::vector<int> color(names_.size(), 0);          // 0 new, 1 on the path, 2 done
    std::vector<std::pair<size_t, const Edge*>> path;  // node, edge taken into it
    std::vector<std::pair<size_t, const Edge*>> cycle;
    std::function<bool(size_t, const Edge*)> visit = [&](size_t n, const Edge* via) {
      color[n] = 1;
      path.emplace_back(n, via);
      for (const Edge& e : edges_[n]) {
        if (color[e.to] == 1) {
          size_t i = 0;
          while (path[i].first != e.to) ++i;
          cycle.assign(path.begin() + static_cast<std::ptrdiff_t>(i), path.end());
          cycle.emplace_back(e.to, &e);
          return true;
        }
        if (color[e.to] == 0 && visit(e.to, &e)) return true;
      }
      color[n] = 2;
      path.pop_back();
      return false;
    };
    for (size_t n = 0; n < names_.size() && cycle.empty(); ++n) {
      if (color[n] == 0) visit(n, nullptr);
    }
    if (cycle.empty()) return Status::Ok();
    std::string text = noun + "'" + names_[cycle[0].first] + "'";
    SourceLocation last = cycle[1].second->rule;
    for (size_t i = 1; i < cycle.size(); ++i) {
      const SourceLocation& rule = cycle[i].second->rule;
      text +=
          " before " + noun + "'" + names_[cycle[i].first] + "' (rule at " + rule.ToString() + ")";
      if (rule.line > last.line || (rule.line == last.line && rule.column > last.column)) {
        last = rule;
      }
    }
    return Status::AtLocation(last, "priorities form a cycle: " + text +
                                        "; expected an order in which something comes first");
  }

  // Longest chain of nodes ahead of each node (0 = nothing must be fixed before it). Acyclic only.
  std::vector<int> Ranks() const {
    std::vector<int> rank(names_.size(), -1);
    std::vector<std::vector<size_t>> before(names_.size());
    for (size_t n = 0; n < names_.size(); ++n) {
      for (const Edge& e : edges_[n]) before[e.to].push_back(n);
    }
    std::function<int(size_t)> rank_of = [&](size_t n) {
      if (rank[n] >= 0) return rank[n];
      int r = 0;
      for (size_t p : before[n]) r = std::max(r, rank_of(p) + 1);
      return rank[n] = r;
    };
    for (size_t n = 0; n < names_.size(); ++n) rank_of(n);
    return rank;
  }

 private:
  struct Edge {
    size_t to;
    SourceLocation rule;
  };
  std::vector<std::string> names_;
  std::vector<std::vector<Edge>> edges_;
};

constexpr char kOthers[] = "others";
constexpr char kKeyEscrowSelector[] = "key-escrow";

Result<PriorityRule> ReadPriorityRule(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a priority rule", {"first", "then"}));
  PriorityRule rule;
  rule.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node first, fields.Require("first"));
  ASSIGN_OR_RETURN(rule.first, ReadIdentifier(file, first, "first"));
  if (rule.first == kOthers) {
    return file.Error(first,
                      "first: 'others' may only appear in then; expected a role, a group "
                      "or key-escrow");
  }
  ASSIGN_OR_RETURN(YAML::Node then, fields.Require("then"));
  ASSIGN_OR_RETURN(std::vector<YAML::Node> then_nodes, ReadOneOrMore(file, then, "then"));
  for (const YAML::Node& t : then_nodes) {
    if (t.Scalar() == rule.first) {
      return file.Error(t, "then: '" + t.Scalar() + "' cannot come after itself");
    }
    rule.then.push_back(t.Scalar());
  }
  return rule;
}

// Cycles among the selectors as written (before any setup gives them groups).
Status CheckSelectorCycles(const std::vector<PriorityRule>& rules) {
  std::vector<std::string> names;
  auto index = [&](const std::string& name) {
    auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) return static_cast<size_t>(it - names.begin());
    names.push_back(name);
    return names.size() - 1;
  };
  std::vector<std::tuple<size_t, size_t, SourceLocation>> edges;
  for (const PriorityRule& rule : rules) {
    const size_t first = index(rule.first);  // nodes numbered in the order they are written
    for (const std::string& t : rule.then) {
      if (t == kOthers) continue;
      const size_t then = index(t);
      edges.emplace_back(first, then, rule.where);
    }
  }
  PriorityGraph graph(names);
  for (const auto& [from, to, where] : edges) graph.Add(from, to, where);
  return graph.CheckAcyclic("");
}

Result<RunbookConfig> ReadRunbookFile(const std::string& as_written, const std::string& path,
                                      const SourceLocation* named_at) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("runbook", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, root, "a runbook",
                                               {"name", "description", "starts", "steps",
                                                "priorities", "parallelism"}));
  RunbookConfig runbook;
  runbook.file = AbsolutePath(path);
  runbook.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(runbook.name, ReadIdentifier(file, name, "runbook name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(runbook.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("starts")) {
    ASSIGN_OR_RETURN(runbook.starts,
                     ReadEnum(file, fields.Get("starts"), "starts", ParseRunbookStart,
                              AllRunbookStarts(), RunbookStartName));
  }
  ASSIGN_OR_RETURN(YAML::Node steps, fields.Require("steps"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, steps, "steps"));
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSIGN_OR_RETURN(StepConfig step, ReadStep(file, steps[i], i));
    runbook.steps.push_back(step);
  }
  if (fields.Has("priorities")) {
    const YAML::Node priorities = fields.Get("priorities");
    RETURN_IF_ERROR(ExpectNonEmptyList(file, priorities, "priorities"));
    for (const YAML::Node& node : priorities) {
      ASSIGN_OR_RETURN(PriorityRule rule, ReadPriorityRule(file, node));
      runbook.priorities.push_back(rule);
    }
    RETURN_IF_ERROR(CheckSelectorCycles(runbook.priorities));
  }
  if (fields.Has("parallelism")) {
    ASSIGN_OR_RETURN(runbook.parallelism,
                     ReadInt(file, fields.Get("parallelism"), "parallelism", 0, 100000000));
  }
  return runbook;
}

// --- Setups -------------------------------------------------------------------------------------

// "08:00-16:00" (an end before the start runs over midnight).
Result<Shift> ReadShift(const YamlFile& file, const YAML::Node& node) {
  const std::string expected =
      "shift: expected \"HH:MM-HH:MM\" such as \"08:00-16:00\" (over midnight: \"22:00-06:00\"), "
      "got ";
  if (!node.IsScalar()) return file.Error(node, expected + Describe(node));
  const std::string& text = node.Scalar();
  const size_t dash = text.find('-');
  if (dash == std::string::npos || text.find('-', dash + 1) != std::string::npos) {
    return file.Error(node, expected + "'" + text + "'");
  }
  Shift shift;
  shift.where = file.At(node);
  Result<Seconds> start = ParseTimeOfDay(text.substr(0, dash));
  Result<Seconds> end = ParseTimeOfDay(text.substr(dash + 1));
  if (!start.ok()) return file.Error(node, "shift '" + text + "': " + start.status().message());
  if (!end.ok()) return file.Error(node, "shift '" + text + "': " + end.status().message());
  if (*start == *end) {
    return file.Error(node, "shift '" + text +
                                "' starts when it ends; leave out shifts for technicians who are "
                                "there around the clock");
  }
  shift.start = *start;
  shift.end = *end;
  return shift;
}

Result<SiteConfig> ReadSite(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "a site",
                                {"name", "technicians", "shifts", "travel", "usb_sticks"}));
  SiteConfig site;
  site.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(site.name, ReadIdentifier(file, name, "site name"));
  if (fields.Has("technicians")) {
    ASSIGN_OR_RETURN(site.technicians,
                     ReadInt(file, fields.Get("technicians"), "technicians", 0, 1000000));
  }
  if (fields.Has("shifts")) {
    const YAML::Node shifts = fields.Get("shifts");
    if (shifts.IsSequence() && shifts.size() == 0) {
      return file.Error(shifts,
                        "shifts: expected at least one shift such as \"08:00-16:00\"; "
                        "leave out shifts for technicians who are there around the clock");
    }
    RETURN_IF_ERROR(ExpectNonEmptyList(file, shifts, "shifts"));
    for (const YAML::Node& s : shifts) {
      ASSIGN_OR_RETURN(Shift shift, ReadShift(file, s));
      site.shifts.push_back(shift);
    }
  }
  if (fields.Has("travel")) {
    ASSIGN_OR_RETURN(site.travel, ReadDistribution(file, fields.Get("travel"), "travel"));
  }
  if (fields.Has("usb_sticks")) {
    ASSIGN_OR_RETURN(site.usb_sticks,
                     ReadInt(file, fields.Get("usb_sticks"), "usb_sticks", 0, 1000000));
  }
  return site;
}

std::vector<std::string> SiteNames(const std::vector<SiteConfig>& sites) {
  std::vector<std::string> names;
  for (const SiteConfig& s : sites) names.push_back(s.name);
  return names;
}

std::vector<std::string> GroupNames(const std::vector<GroupConfig>& groups) {
  std::vector<std::string> names;
  for (const GroupConfig& g : groups) names.push_back(g.name);
  return names;
}

const GroupConfig* FindGroup(const SetupConfig& setup, const std::string& name) {
  for (const GroupConfig& g : setup.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const SiteConfig* FindSite(const SetupConfig& setup, const std::string& name) {
  for (const SiteConfig& s : setup.sites) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Result<GroupConfig> ReadGroup(const YamlFile& file, const YAML::Node& node,
                              const std::vector<SiteConfig>& sites) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "a group",
                                {"name", "role", "count", "site", "sensor", "network",
                                 "online_in_window", "bitlocker", "console", "cloud"}));
  GroupConfig group;
  group.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(group.name, ReadIdentifier(file, name, "group name"));
  ASSIGN_OR_RETURN(YAML::Node role, fields.Require("role"));
  ASSIGN_OR_RETURN(group.role, ReadEnum(file, role, "role", ParseRole, AllRoles(), RoleName));
  ASSIGN_OR_RETURN(YAML::Node count, fields.Require("count"));
  ASSIGN_OR_RETURN(group.count, ReadInt(file, count, "count", 1, 100000000));
  // Its hosts are named after it: the last one's name must follow the rule too.
  if (Status ok = CheckIdentifier("host name", HostName(group.name, group.count)); !ok.ok()) {
    return file.Error(name, "group '" + group.name + "' of " + std::to_string(group.count) +
                                " host(s): " + ok.message());
  }

  group.site = sites.front().name;
  if (fields.Has("site")) {
    YAML::Node site = fields.Get("site");
    ASSIGN_OR_RETURN(group.site, ReadIdentifier(file, site, "site"));
    bool known = false;
    for (const SiteConfig& s : sites) known = known || s.name == group.site;
    if (!known) {
      return file.Error(site, "group '" + group.name + "' names unknown site '" + group.site +
                                  "'; sites of this setup: " + Join(SiteNames(sites)));
    }
  }
  if (fields.Has("sensor")) {
    // The raw scalar text, so an unquoted 7.10 stays "7.10" (YAML would make the float 7.1 of it).
    YAML::Node sensor = fields.Get("sensor");
    ASSIGN_OR_RETURN(group.sensor_version, ReadName(file, sensor, "sensor"));
    bool known = false;
    for (const std::string& v : SensorVersions()) known = known || v == group.sensor_version;
    if (!known) {
      return file.Error(sensor, "unknown sensor version '" + group.sensor_version +
                                    "'; allowed: " + Join(SensorVersions()) +
                                    " (write versions as text, e.g. sensor: \"7.10\")");
    }
  }
  if (fields.Has("network")) {
    ASSIGN_OR_RETURN(group.network, ReadEnum(file, fields.Get("network"), "network", ParseNetwork,
                                             AllNetworks(), NetworkName));
  }
  group.online_in_window = group.network != Network::kOffline;
  if (fields.Has("online_in_window")) {
    YAML::Node online = fields.Get("online_in_window");
    ASSIGN_OR_RETURN(group.online_in_window, ReadBool(file, online, "online_in_window"));
    if (group.online_in_window && group.network == Network::kOffline) {
      return file.Error(online, "group '" + group.name +
                                    "' has network: offline, so it cannot be online_in_window");
    }
  }
  if (fields.Has("bitlocker")) {
    ASSIGN_OR_RETURN(group.bitlocker, ReadBool(file, fields.Get("bitlocker"), "bitlocker"));
  }
  if (fields.Has("console")) {
    ASSIGN_OR_RETURN(group.oob_console, ReadConsole(file, fields.Get("console")));
  }
  group.cloud = group.role == Role::kCloudVm;
  if (fields.Has("cloud")) {
    ASSIGN_OR_RETURN(group.cloud, ReadBool(file, fields.Get("cloud"), "cloud"));
  }
  return group;
}

Result<KeyEscrowConfig> ReadKeyEscrow(const YamlFile& file, const YAML::Node& node,
                                      const std::vector<GroupConfig>& groups) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "key_escrow", {"hosted_on", "lookup"}));
  KeyEscrowConfig escrow;
  escrow.where = fields.where();
  if (fields.Has("hosted_on")) {
    const YAML::Node hosted_on = fields.Get("hosted_on");
    ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, hosted_on, "hosted_on"));
    if (name != "external") {
      bool known = false;
      for (const GroupConfig& g : groups) known = known || g.name == name;
      if (!known) {
        return file.Error(hosted_on, "key_escrow hosted_on names unknown group '" + name +
                                         "'; expected external or a group of this setup: " +
                                         Join(GroupNames(groups)));
      }
      escrow.hosted_on = name;
    }
  }
  if (fields.Has("lookup")) {
    ASSIGN_OR_RETURN(escrow.lookup, ReadDistribution(file, fields.Get("lookup"), "lookup"));
  }
  return escrow;
}

Result<ServiceConfig> ReadService(const YamlFile& file, const YAML::Node& node,
                                  const std::vector<GroupConfig>& groups) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a service", {"name", "needs"}));
  ServiceConfig service;
  service.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(service.name, ReadIdentifier(file, name, "service name"));
  ASSIGN_OR_RETURN(YAML::Node needs, fields.Require("needs"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, needs, "needs"));
  for (const YAML::Node& n : needs) {
    ASSIGN_OR_RETURN(
        Fields need_fields,
        Fields::Open(file, n, "a need of service '" + service.name + "'", {"group", "at_least"}));
    ServiceNeed need;
    need.where = need_fields.where();
    ASSIGN_OR_RETURN(YAML::Node group_node, need_fields.Require("group"));
    ASSIGN_OR_RETURN(need.group, ReadIdentifier(file, group_node, "group"));
    const GroupConfig* group = nullptr;
    for (const GroupConfig& g : groups) {
      if (g.name == need.group) group = &g;
    }
    if (group == nullptr) {
      return file.Error(group_node, "service '" + service.name + "' needs unknown group '" +
                                        need.group +
                                        "'; groups of this setup: " + Join(GroupNames(groups)));
    }
    for (const ServiceNeed& earlier : service.needs) {
      if (earlier.group == need.group) {
        return file.Error(group_node, "service '" + service.name + "' needs group '" + need.group +
                                          "' twice (first at " + earlier.where.ToString() + ")");
      }
    }
    if (need_fields.Has("at_least")) {
      const YAML::Node at_least = need_fields.Get("at_least");
      ASSIGN_OR_RETURN(need.at_least, ReadInt(file, at_least, "at_least", 1, 100000000));
      if (need.at_least > group->count) {
        return file.Error(at_least, "service '" + service.name + "' needs at least " +
                                        std::to_string(need.at_least) + " hosts of group '" +
                                        need.group + "', which has " +
                                        std::to_string(group->count) + " (at " +
                                        group->where.ToString() + ")");
      }
    }
    service.needs.push_back(need);
  }
  return service;
}

Result<SetupConfig> ReadSetupFile(const std::string& as_written, const std::string& path,
                                  const SourceLocation* named_at) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("setup", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, root, "a setup",
                                               {"name", "description", "image", "sites", "groups",
                                                "key_escrow", "pxe", "snapshots", "services"}));
  SetupConfig setup;
  setup.file = AbsolutePath(path);
  setup.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(setup.name, ReadIdentifier(file, name, "setup name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(setup.description, ReadString(file, fields.Get("description"), "description"));
  }
  ASSIGN_OR_RETURN(YAML::Node image, fields.Require("image"));
  ASSIGN_OR_RETURN(setup.image, ReadIdentifier(file, image, "image"));
  setup.image_where = file.At(image);

  ASSIGN_OR_RETURN(YAML::Node sites, fields.Require("sites"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, sites, "sites"));
  for (const YAML::Node& node : sites) {
    ASSIGN_OR_RETURN(SiteConfig site, ReadSite(file, node));
    for (const SiteConfig& earlier : setup.sites) {
      if (earlier.name == site.name) {
        return file.Error(node, "duplicate site name '" + site.name + "' (first defined at " +
                                    earlier.where.ToString() + ")");
      }
    }
    setup.sites.push_back(site);
  }

  ASSIGN_OR_RETURN(YAML::Node groups, fields.Require("groups"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, groups, "groups"));
  for (const YAML::Node& node : groups) {
    ASSIGN_OR_RETURN(GroupConfig group, ReadGroup(file, node, setup.sites));
    for (const GroupConfig& earlier : setup.groups) {
      if (earlier.name == group.name) {
        return file.Error(node, "duplicate group name '" + group.name + "' (first defined at " +
                                    earlier.where.ToString() + ")");
      }
    }
    setup.groups.push_back(group);
  }

  setup.key_escrow.where = fields.where();
  if (fields.Has("key_escrow")) {
    ASSIGN_OR_RETURN(setup.key_escrow, ReadKeyEscrow(file, fields.Get("key_escrow"), setup.groups));
  }
  if (fields.Has("pxe")) {
    ASSIGN_OR_RETURN(setup.pxe, ReadBool(file, fields.Get("pxe"), "pxe"));
  }
  setup.snapshots.where = fields.where();
  if (fields.Has("snapshots")) {
    // Writing the key at all turns snapshots on; "snapshots: {}" keeps the nightly 00:00.
    const YAML::Node snapshots = fields.Get("snapshots");
    setup.snapshots.enabled = true;
    setup.snapshots.where = file.At(snapshots);
    if (!snapshots.IsNull()) {
      ASSIGN_OR_RETURN(Fields snap, Fields::Open(file, snapshots, "snapshots", {"taken_at"}));
      if (snap.Has("taken_at")) {
        ASSIGN_OR_RETURN(setup.snapshots.taken_at,
                         ReadTimeOfDay(file, snap.Get("taken_at"), "taken_at"));
      }
    }
  }
  if (fields.Has("services")) {
    const YAML::Node services = fields.Get("services");
    RETURN_IF_ERROR(ExpectNonEmptyList(file, services, "services"));
    for (const YAML::Node& node : services) {
      ASSIGN_OR_RETURN(ServiceConfig service, ReadService(file, node, setup.groups));
      for (const ServiceConfig& earlier : setup.services) {
        if (earlier.name == service.name) {
          return file.Error(node, "duplicate service name '" + service.name +
                                      "' (first defined at " + earlier.where.ToString() + ")");
        }
      }
      setup.services.push_back(service);
    }
  }
  return setup;
}

// --- Images -------------------------------------------------------------------------------------

Result<PhaseTiming> ReadPhaseTiming(const YamlFile& file, const YAML::Node& node, Role role) {
  const std::string what = "the timing of role " + std::string(RoleName(role));
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, what, {"boot", "driver_load", "crash_dump", "content_fetch"}));
  PhaseTiming timing;
  if (fields.Has("boot")) {
    ASSIGN_OR_RETURN(timing.boot, ReadDuration(file, fields.Get("boot"), "boot", false));
  }
  if (fields.Has("driver_load")) {
    ASSIGN_OR_RETURN(timing.driver_load,
                     ReadDuration(file, fields.Get("driver_load"), "driver_load", true));
  }
  if (fields.Has("crash_dump")) {
    ASSIGN_OR_RETURN(timing.crash_dump,
                     ReadDuration(file, fields.Get("crash_dump"), "crash_dump", true));
  }
  if (fields.Has("content_fetch")) {
    ASSIGN_OR_RETURN(timing.content_fetch,
                     ReadDuration(file, fields.Get("content_fetch"), "content_fetch", true));
  }
  // Boot-start drivers load during boot, so reaching them cannot take longer than the whole boot.
  if (timing.driver_load > timing.boot) {
    YAML::Node at = fields.Has("driver_load") ? fields.Get("driver_load") : node;
    char msg[200];
    std::snprintf(msg, sizeof msg,
                  "driver_load (%gs) must not be longer than boot (%gs): drivers load during boot",
                  timing.driver_load, timing.boot);
    return file.Error(at, msg);
  }
  return timing;
}

// "10%", "10 %" or 10 (percent) → 10. Between 0 and 100.
Result<double> ReadPercent(const YamlFile& file, const YAML::Node& node, const std::string& what) {
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

// One profile of `networks:` (docs/TIME-BASE.md): every figure required, so that a recipe says
// what it assumes.
Result<NetworkProfile> ReadNetworkProfile(const YamlFile& file, const YAML::Node& node,
                                          const std::string& name) {
  const std::string what = "network profile '" + name + "'";
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what,
                                               {"rtt_ms", "jitter_ms", "loss_percent",
                                                "bandwidth_mbit", "usable_after_ms"}));
  NetworkProfile p;
  ASSIGN_OR_RETURN(YAML::Node rtt, fields.Require("rtt_ms"));
  ASSIGN_OR_RETURN(p.rtt_ms, ReadInt(file, rtt, what + " rtt_ms", 0, 10'000));
  ASSIGN_OR_RETURN(YAML::Node jitter, fields.Require("jitter_ms"));
  ASSIGN_OR_RETURN(p.jitter_ms, ReadInt(file, jitter, what + " jitter_ms", 0, 10'000));
  if (p.jitter_ms > p.rtt_ms) {
    return file.Error(
        jitter, what + " jitter_ms must not exceed its rtt_ms (" + std::to_string(p.rtt_ms) + ")");
  }
  ASSIGN_OR_RETURN(YAML::Node loss, fields.Require("loss_percent"));
  ASSIGN_OR_RETURN(p.loss_percent, ReadPercent(file, loss, what + " loss_percent"));
  ASSIGN_OR_RETURN(YAML::Node rate, fields.Require("bandwidth_mbit"));
  ASSIGN_OR_RETURN(p.bandwidth_mbit, ReadInt(file, rate, what + " bandwidth_mbit", 0, 100'000));
  ASSIGN_OR_RETURN(YAML::Node after, fields.Require("usable_after_ms"));
  const std::string after_what = what + " usable_after_ms";
  if (after.IsSequence()) {
    if (after.size() != 2) {
      return file.Error(after, after_what +
                                   ": expected a number or a range [min, max], got a "
                                   "list of " +
                                   std::to_string(after.size()));
    }
    ASSIGN_OR_RETURN(p.usable_after_min_ms, ReadInt(file, after[0], after_what, 0, 3'600'000));
    ASSIGN_OR_RETURN(p.usable_after_max_ms, ReadInt(file, after[1], after_what, 0, 3'600'000));
    if (p.usable_after_min_ms > p.usable_after_max_ms) {
      return file.Error(after, after_what + ": the range's minimum is above its maximum");
    }
  } else {
    ASSIGN_OR_RETURN(p.usable_after_min_ms, ReadInt(file, after, after_what, 0, 3'600'000));
    p.usable_after_max_ms = p.usable_after_min_ms;
  }
  return p;
}

Result<std::map<Network, NetworkProfile>> ReadNetworkProfiles(const YamlFile& file,
                                                              const YAML::Node& node) {
  if (!node.IsMap()) {
    return file.Error(node,
                      "networks: expected a map from network (wired, wifi, vpn) to its "
                      "profile, got " +
                          Describe(node));
  }
  std::map<Network, NetworkProfile> out;
  for (const auto& entry : node) {
    ASSIGN_OR_RETURN(Network network, ReadEnum(file, entry.first, "network", ParseNetwork,
                                               AllNetworks(), NetworkName));
    if (network == Network::kOffline) {
      return file.Error(entry.first, "networks: offline hosts have no link to profile");
    }
    ASSIGN_OR_RETURN(out[network],
                     ReadNetworkProfile(file, entry.second, std::string(NetworkName(network))));
  }
  return out;
}

Result<ImageConfig> ReadImageFile(const std::string& images_root, const std::string& name,
                                  const SourceLocation* named_at) {
  // Image names become folder names and arguments of build.sh.
  if (Status ok = CheckIdentifier("image name", name); !ok.ok()) {
    if (named_at != nullptr) return Status::AtLocation(*named_at, ok.message());
    return ok;
  }
  const std::string recipe_dir = (fs::path(images_root) / name).lexically_normal().string();
  const std::string path = (fs::path(recipe_dir) / "image.yaml").string();
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("image '" + name + "' recipe", path, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "an image recipe",
                                {"name", "kind", "description", "kernel", "race_window_ms",
                                 "networks", "timing", "recovery"}));
  ImageConfig image;
  image.recipe_dir = AbsolutePath(recipe_dir);
  image.file = AbsolutePath(path);
  image.where = fields.where();
  for (Role role : AllRoles()) image.timing[role] = PhaseTiming{};

  ASSIGN_OR_RETURN(YAML::Node name_node, fields.Require("name"));
  ASSIGN_OR_RETURN(image.name, ReadIdentifier(file, name_node, "name"));
  if (image.name != name) {
    return file.Error(name_node,
                      "image name '" + image.name + "' does not match its folder '" + name + "'");
  }
  if (fields.Has("kind")) {
    ASSIGN_OR_RETURN(image.kind, ReadEnum(file, fields.Get("kind"), "image kind", ParseImageKind,
                                          AllImageKinds(), ImageKindName));
  }
  if (fields.Has("recovery")) {
    YAML::Node list = fields.Get("recovery");
    RETURN_IF_ERROR(ExpectNonEmptyList(file, list, "recovery"));
    image.recovery.clear();
    std::map<RecoveryPath, SourceLocation> seen;
    for (const auto& item : list) {
      ASSIGN_OR_RETURN(RecoveryPath path, ReadEnum(file, item, "recovery path", ParseRecoveryPath,
                                                   AllRecoveryPaths(), RecoveryPathName));
      if (seen.count(path)) {
        return file.Error(item, "duplicate recovery path '" + std::string(RecoveryPathName(path)) +
                                    "' (first at " + seen[path].ToString() + ")");
      }
      seen[path] = file.At(item);
      image.recovery.push_back(path);
    }
  } else if (image.kind != ImageKind::kWinsim) {
    // What a real Windows image can be taken through depends on how it was built (WinRE present,
    // BitLocker on, a rescue VM that reads NTFS...): the recipe has to say it.
    return file.Error(fields.where(),
                      "an image of kind " + std::string(ImageKindName(image.kind)) +
                          " must list the recovery paths it supports (recovery: [...], from " +
                          AllowedNames(AllRecoveryPaths(), RecoveryPathName) + ")");
  }
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(image.description, ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("kernel")) {
    YAML::Node kernel = fields.Get("kernel");
    ASSIGN_OR_RETURN(image.kernel, ReadName(file, kernel, "kernel"));
    if (image.kernel != "custom" && image.kernel != "debian") {
      return file.Error(kernel,
                        "kernel: expected one of custom, debian, got '" + image.kernel + "'");
    }
  }
  if (fields.Has("race_window_ms")) {
    ASSIGN_OR_RETURN(image.race_window_ms,
                     ReadInt(file, fields.Get("race_window_ms"), "race_window_ms", 1, 60000));
  }
  if (fields.Has("networks")) {
    ASSIGN_OR_RETURN(image.networks, ReadNetworkProfiles(file, fields.Get("networks")));
  }
  if (fields.Has("timing")) {
    YAML::Node timing = fields.Get("timing");
    const std::string roles = AllowedNames(AllRoles(), RoleName);
    if (!timing.IsMap()) {
      return file.Error(timing, "timing: expected a map from role (" + roles +
                                    ") to phase durations, got " + Describe(timing));
    }
    std::map<Role, SourceLocation> seen;
    for (const auto& entry : timing) {
      ASSIGN_OR_RETURN(Role role,
                       ReadEnum(file, entry.first, "role", ParseRole, AllRoles(), RoleName));
      if (seen.count(role)) {
        return file.Error(entry.first, "duplicate timing for role '" + std::string(RoleName(role)) +
                                           "' (first at " + seen[role].ToString() + ")");
      }
      seen[role] = file.At(entry.first);
      ASSIGN_OR_RETURN(image.timing[role], ReadPhaseTiming(file, entry.second, role));
    }
  }
  return image;
}

// --- A runbook on a setup -----------------------------------------------------------------------

// "step 2 (boot usb)" for messages.
std::string StepLabel(const StepConfig& step, size_t index) {
  std::string label =
      "step " + std::to_string(index + 1) + " (" + std::string(StepKindName(step.kind));
  if (step.kind == StepKind::kBoot) label += " " + std::string(BootTargetName(step.into));
  return label + ")";
}

std::string SetupLabel(const SetupConfig& setup) {
  return "setup '" + setup.name + "'" + (setup.file.empty() ? "" : " (" + setup.file + ")");
}

// Whether the hosts of `group` can ever have `need` met in `setup`.
bool CanMeet(Resource need, const GroupConfig& group, const SetupConfig& setup) {
  const SiteConfig* site = FindSite(setup, group.site);
  const int technicians = site == nullptr ? 0 : site->technicians;
  switch (need) {
    case Resource::kTechnician:
      return technicians > 0;
    case Resource::kRemoteConsole:
      return group.oob_console && technicians > 0;
    case Resource::kUsbStick:
      return site != nullptr && site->usb_sticks > 0;
    case Resource::kKeyEscrow:
      // Always there in the end: an external escrow stays up, a hosted one answers once one of its
      // hosts is fixed (how long that takes is what runs measure). Hosts without BitLocker do not
      // wait for it at all.
      return true;
    case Resource::kPxeServer:
      return setup.pxe;
  }
  return false;
}

// Why no host of `groups` can have `need` met (for the error message).
std::string WhyNot(Resource need, const std::vector<const GroupConfig*>& groups) {
  std::vector<std::string> sites;
  std::vector<std::string> names;
  bool any_oob = false;
  for (const GroupConfig* g : groups) {
    if (std::find(sites.begin(), sites.end(), g->site) == sites.end()) sites.push_back(g->site);
    names.push_back(g->name);
    any_oob = any_oob || g->oob_console;
  }
  switch (need) {
    case Resource::kTechnician:
      return "no technicians at the sites of its hosts (" + Join(sites) + ")";
    case Resource::kRemoteConsole:
      if (!any_oob) return "none of its groups (" + Join(names) + ") has console: oob";
      return "the sites of its groups with console: oob have no technicians to work the console";
    case Resource::kUsbStick:
      return "no usb_sticks at the sites of its hosts (" + Join(sites) + ")";
    case Resource::kPxeServer:
      return "the setup has no network boot (pxe: true is not set)";
    case Resource::kKeyEscrow:
      break;
  }
  return "it cannot be met";
}

// The groups a priority selector stands for, or an error naming what selectors can be.
Result<std::vector<size_t>> SelectorGroups(const std::string& selector, const PriorityRule& rule,
                                           const SetupConfig& setup) {
  std::vector<size_t> out;
  const std::optional<Role> role = ParseRole(selector);
  bool known = role.has_value() || selector == kKeyEscrowSelector;
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    const GroupConfig& g = setup.groups[i];
    const bool match = g.name == selector || (role && g.role == *role) ||
                       (selector == kKeyEscrowSelector && g.name == setup.key_escrow.hosted_on);
    known = known || g.name == selector;
    if (match) out.push_back(i);
  }
  if (!known) {
    return Status::AtLocation(
        rule.where, "priority rule names unknown selector '" + selector + "'; expected a role (" +
                        AllowedNames(AllRoles(), RoleName) + "), a group of " + SetupLabel(setup) +
                        " (" + Join(GroupNames(setup.groups)) + "), key-escrow, or others in then");
  }
  return out;
}

Result<PriorityGraph> GroupPriorityGraph(const RunbookConfig& runbook, const SetupConfig& setup) {
  PriorityGraph graph(GroupNames(setup.groups));
  for (const PriorityRule& rule : runbook.priorities) {
    ASSIGN_OR_RETURN(std::vector<size_t> first, SelectorGroups(rule.first, rule, setup));
    for (const std::string& t : rule.then) {
      std::vector<size_t> then;
      if (t == kOthers) {
        for (size_t i = 0; i < setup.groups.size(); ++i) {
          if (std::find(first.begin(), first.end(), i) == first.end()) then.push_back(i);
        }
      } else {
        ASSIGN_OR_RETURN(then, SelectorGroups(t, rule, setup));
      }
      for (size_t f : first) {
        for (size_t x : then) {
          if (f == x) {
            return Status::AtLocation(
                rule.where, "priorities form a cycle: group '" + setup.groups[f].name +
                                "' matches both first (" + rule.first + ") and then (" + t +
                                ") of this rule in " + SetupLabel(setup));
          }
          graph.Add(f, x, rule.where);
        }
      }
    }
  }
  RETURN_IF_ERROR(graph.CheckAcyclic("group "));
  return graph;
}

// --- Scenarios ----------------------------------------------------------------------------------

}  // namespace

Status CheckRolloutFitsSetup(const RolloutConfig& rollout, const SetupConfig& setup) {
  for (const std::string& g : rollout.pinned) {
    bool known = false;
    for (const auto& group : setup.groups) known |= group.name == g;
    if (!known) {
      return Status::AtLocation(rollout.where, "pinned names unknown group '" + g + "'; " +
                                                   SetupLabel(setup) + " has " +
                                                   Join(GroupNames(setup.groups)));
    }
  }
  return Status::Ok();
}

namespace {

Result<RingConfig> ReadRing(const YamlFile& file, const YAML::Node& node, size_t index) {
  const std::string what = "rings[" + std::to_string(index) + "]";
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what, {"name", "percent", "after"}));
  RingConfig ring;
  ring.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(ring.name, ReadIdentifier(file, name, what + " name"));
  ASSIGN_OR_RETURN(YAML::Node percent, fields.Require("percent"));
  ASSIGN_OR_RETURN(ring.percent, ReadPercent(file, percent, what + " percent"));
  if (fields.Has("after")) {
    ASSIGN_OR_RETURN(ring.after, ReadDuration(file, fields.Get("after"), what + " after", true));
  }
  return ring;
}

Result<RolloutConfig> ReadRollout(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "rollout",
                                               {"policy", "start", "release", "revert", "rings",
                                                "health_gate", "pinned"}));
  RolloutConfig rollout;
  rollout.where = fields.where();
  if (fields.Has("policy")) {
    ASSIGN_OR_RETURN(rollout.policy,
                     ReadEnum(file, fields.Get("policy"), "rollout policy", ParseRolloutPolicy,
                              AllRolloutPolicies(), RolloutPolicyName));
  }
  if (fields.Has("start")) {
    ASSIGN_OR_RETURN(rollout.start, ReadTimeOfDay(file, fields.Get("start"), "start"));
  }
  if (fields.Has("release")) {
    ASSIGN_OR_RETURN(rollout.release, ReadTimeOfDay(file, fields.Get("release"), "release"));
  }
  if (fields.Has("revert")) {
    ASSIGN_OR_RETURN(rollout.revert, ReadTimeOfDay(file, fields.Get("revert"), "revert"));
  }
  auto shown = [&](const std::string& key, Seconds t) {
    return key + " (" + FormatTimeOfDay(t) + (fields.Has(key) ? "" : ", the default") + ")";
  };
  auto at = [&](const std::string& key) {
    return fields.Has(key) ? file.At(fields.Get(key)) : fields.where();
  };
  if (rollout.release < rollout.start) {
    return file.Error(at("release"), shown("release", rollout.release) + " is before " +
                                         shown("start", rollout.start) +
                                         "; expected start <= release <= revert");
  }
  if (rollout.revert < rollout.release) {
    return file.Error(at("revert"), shown("revert", rollout.revert) + " is before " +
                                        shown("release", rollout.release) +
                                        "; expected start <= release <= revert");
  }
  if (fields.Has("rings")) {
    YAML::Node rings = fields.Get("rings");
    if (rollout.policy != RolloutPolicy::kRings) {
      return file.Error(rings, "rings are only used with policy: rings");
    }
    RETURN_IF_ERROR(ExpectNonEmptyList(file, rings, "rings"));
    double sum = 0;
    std::set<std::string> names;
    for (size_t i = 0; i < rings.size(); ++i) {
      ASSIGN_OR_RETURN(RingConfig ring, ReadRing(file, rings[i], i));
      if (!names.insert(ring.name).second) {
        return file.Error(rings[i], "ring '" + ring.name + "' is listed twice");
      }
      if (!rollout.rings.empty() && ring.after < rollout.rings.back().after) {
        return file.Error(rings[i], "ring '" + ring.name + "' goes out before ring '" +
                                        rollout.rings.back().name +
                                        "'; expected rings in release order (after ascending)");
      }
      sum += ring.percent;
      rollout.rings.push_back(ring);
    }
    if (std::abs(sum - 100) > 1e-6) {
      return file.Error(rings, "ring percents add up to " + fmt::format("{:g}", sum) +
                                   " %; expected 100 % (every host in exactly one ring)");
    }
  } else if (rollout.policy == RolloutPolicy::kRings) {
    return file.Error(fields.where(), "policy: rings needs a `rings` list (name, percent, after)");
  }
  if (fields.Has("health_gate")) {
    YAML::Node gate_node = fields.Get("health_gate");
    if (rollout.policy != RolloutPolicy::kRings) {
      return file.Error(gate_node, "a health gate only applies to policy: rings");
    }
    ASSIGN_OR_RETURN(Fields gate, Fields::Open(file, gate_node, "health_gate", {"max_crash_rate"}));
    rollout.gate.enabled = true;
    rollout.gate.where = gate.where();
    ASSIGN_OR_RETURN(YAML::Node rate, gate.Require("max_crash_rate"));
    ASSIGN_OR_RETURN(double percent, ReadPercent(file, rate, "health_gate max_crash_rate"));
    rollout.gate.max_crash_rate = percent / 100;
  }
  if (fields.Has("pinned")) {
    YAML::Node pinned = fields.Get("pinned");
    if (!pinned.IsSequence()) {
      return file.Error(pinned, "pinned: expected a list of group names, got " + Describe(pinned));
    }
    for (const auto& g : pinned) {
      ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, g, "pinned group"));
      rollout.pinned.push_back(name);
    }
  }
  return rollout;
}

Result<StopConfig> ReadStop(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "stop", {"max_scenario", "max_wall"}));
  StopConfig stop;
  stop.where = fields.where();
  if (fields.Has("max_scenario")) {
    ASSIGN_OR_RETURN(stop.max_scenario,
                     ReadDuration(file, fields.Get("max_scenario"), "max_scenario", false));
  }
  if (fields.Has("max_wall")) {
    ASSIGN_OR_RETURN(stop.max_wall, ReadDuration(file, fields.Get("max_wall"), "max_wall", false));
  }
  return stop;
}

Result<ScenarioConfig> ReadScenarioFile(const std::string& as_written, const std::string& path,
                                        const std::string& images_root) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("scenario", as_written, path, nullptr));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, root, "a scenario",
                                               {"name", "description", "setup", "fault", "rollout",
                                                "runbook", "backend", "repetitions", "seed", "stop",
                                                "race_window_ms", "mix", "calibration"}));
  ScenarioConfig scenario;
  scenario.file = AbsolutePath(path);
  scenario.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(scenario.name, ReadIdentifier(file, name, "scenario name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(scenario.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("fault")) {
    ASSIGN_OR_RETURN(Fields fault,
                     Fields::Open(file, fields.Get("fault"), "fault", {"kind", "channel"}));
    scenario.fault.where = fault.where();
    ASSIGN_OR_RETURN(YAML::Node kind, fault.Require("kind"));
    ASSIGN_OR_RETURN(scenario.fault.kind, ReadEnum(file, kind, "fault kind", ParseFaultKind,
                                                   AllFaultKinds(), FaultKindName));
    if (fault.Has("channel")) {
      ASSIGN_OR_RETURN(int64_t channel,
                       ReadInt(file, fault.Get("channel"), "fault channel", 0, 99999999));
      // The sensor interprets channel 291 (named-pipe detections, the IPC template type).
      if (channel != 291) {
        return file.Error(fault.Get("channel"), "unknown channel " + std::to_string(channel) +
                                                    "; expected 291 (the channel the sensor "
                                                    "interprets)");
      }
      scenario.fault.channel = static_cast<int>(channel);
    }
  }
  if (fields.Has("rollout")) {
    ASSIGN_OR_RETURN(scenario.rollout, ReadRollout(file, fields.Get("rollout")));
  } else {
    scenario.rollout.where = fields.where();
  }
  if (fields.Has("backend")) {
    ASSIGN_OR_RETURN(scenario.backend,
                     ReadEnum(file, fields.Get("backend"), "backend", ParseBackendKind,
                              AllBackendKinds(), BackendKindName));
  }
  if (fields.Has("repetitions")) {
    ASSIGN_OR_RETURN(scenario.repetitions,
                     ReadInt(file, fields.Get("repetitions"), "repetitions", 1, 100000));
  }
  if (fields.Has("race_window_ms")) {
    ASSIGN_OR_RETURN(scenario.race_window_ms,
                     ReadInt(file, fields.Get("race_window_ms"), "race_window_ms", 1, 60000));
  }
  if (fields.Has("seed")) {
    ASSIGN_OR_RETURN(scenario.seed, ReadUnsigned(file, fields.Get("seed"), "seed"));
  }
  if (fields.Has("stop")) {
    ASSIGN_OR_RETURN(scenario.stop, ReadStop(file, fields.Get("stop")));
  } else {
    scenario.stop.where = fields.where();
  }

  // The files it names, each resolved against this file's folder.
  if (fields.Has("calibration")) {
    ASSIGN_OR_RETURN(std::string cal, ReadName(file, fields.Get("calibration"), "calibration"));
    scenario.calibration_file = AbsolutePath(file.Resolve(cal));
    scenario.calibration_where = file.At(fields.Get("calibration"));
  }
  if (fields.Has("mix")) {
    // A world of organisations for the simulator (lab/sim reads the mix file); each archetype
    // names its own setup and runbook, so the scenario needs neither.
    ASSIGN_OR_RETURN(std::string mix, ReadName(file, fields.Get("mix"), "mix"));
    scenario.mix_file = AbsolutePath(file.Resolve(mix));
    scenario.mix_where = file.At(fields.Get("mix"));
    if (!fs::exists(scenario.mix_file)) {
      return file.Error(fields.Get("mix"), "mix file '" + mix + "' (resolved to " +
                                               scenario.mix_file + ") does not exist");
    }
    if (fields.Has("setup")) {
      return file.Error(fields.Get("setup"),
                        "a scenario with a mix names no setup (each archetype "
                        "of the mix names its own)");
    }
    if (scenario.backend != BackendKind::kSim) {
      return file.Error(fields.Get("mix"), "a mix runs only on the simulator; add `backend: sim`");
    }
    scenario.setup.name = "mix";
    scenario.setup.image = "winsim";
    scenario.setup.where = scenario.mix_where;
    scenario.setup.image_where = scenario.mix_where;
    if (fields.Has("runbook")) {
      ASSIGN_OR_RETURN(std::string runbook_path, ReadName(file, fields.Get("runbook"), "runbook"));
      const SourceLocation runbook_at = file.At(fields.Get("runbook"));
      ASSIGN_OR_RETURN(scenario.runbook,
                       ReadRunbookFile(runbook_path, file.Resolve(runbook_path), &runbook_at));
    }
    ASSIGN_OR_RETURN(scenario.image,
                     ReadImageFile(images_root, scenario.setup.image, &scenario.setup.image_where));
    return scenario;
  }
  ASSIGN_OR_RETURN(YAML::Node setup_node, fields.Require("setup"));
  ASSIGN_OR_RETURN(std::string setup_path, ReadName(file, setup_node, "setup"));
  const SourceLocation setup_at = file.At(setup_node);
  ASSIGN_OR_RETURN(scenario.setup, ReadSetupFile(setup_path, file.Resolve(setup_path), &setup_at));

  ASSIGN_OR_RETURN(YAML::Node runbook_node, fields.Require("runbook"));
  ASSIGN_OR_RETURN(std::string runbook_path, ReadName(file, runbook_node, "runbook"));
  const SourceLocation runbook_at = file.At(runbook_node);
  ASSIGN_OR_RETURN(scenario.runbook,
                   ReadRunbookFile(runbook_path, file.Resolve(runbook_path), &runbook_at));

  ASSIGN_OR_RETURN(scenario.image,
                   ReadImageFile(images_root, scenario.setup.image, &scenario.setup.image_where));
  RETURN_IF_ERROR(CheckRunbookFitsImage(scenario.runbook, scenario.setup, scenario.image));
  RETURN_IF_ERROR(CheckRunbookFitsSetup(scenario.runbook, scenario.setup));
  RETURN_IF_ERROR(CheckRolloutFitsSetup(scenario.rollout, scenario.setup));
  return scenario;
}

// Runs `load`, turning any exception that still escapes yaml-cpp or the standard library into an
// error: the promise of this file is that none reaches the caller.
template <typename T>
Result<T> Guarded(const std::string& path, const std::function<Result<T>()>& load) {
  try {
    return load();
  } catch (const YAML::Exception& e) {
    SourceLocation where{path};
    if (!e.mark.is_null()) {
      where.line = e.mark.line + 1;
      where.column = e.mark.column + 1;
    }
    return Status::AtLocation(where, e.msg);
  } catch (const std::exception& e) {
    return Status::Internal("reading " + path + ": " + e.what());
  }
}

std::string SetupSummary(const SetupConfig& setup) {
  return std::to_string(TotalHosts(setup)) + " hosts in " + std::to_string(setup.groups.size()) +
         " groups at " + std::to_string(setup.sites.size()) + " site(s), image '" + setup.image +
         "'";
}

// What a setup has beyond its hosts, for `validate`.
std::string SetupDetails(const SetupConfig& setup) {
  int64_t technicians = 0, sticks = 0, bitlocker = 0, cloud = 0, oob = 0;
  for (const SiteConfig& site : setup.sites) {
    technicians += site.technicians;
    sticks += site.usb_sticks;
  }
  for (const GroupConfig& g : setup.groups) {
    if (g.bitlocker) bitlocker += g.count;
    if (g.cloud) cloud += g.count;
    if (g.oob_console) oob += g.count;
  }
  std::string line = "; " + std::to_string(technicians) + " technician(s), " +
                     std::to_string(sticks) + " USB stick(s); " + std::to_string(bitlocker) +
                     " BitLocker, " + std::to_string(cloud) + " cloud, " + std::to_string(oob) +
                     " out-of-band console host(s); key escrow ";
  if (setup.key_escrow.hosted_on.empty()) {
    line += "external";
  } else {
    line += "on group '" + setup.key_escrow.hosted_on + "'";
  }
  line += " (lookup " + setup.key_escrow.lookup.ToString() + "); PXE " +
          (setup.pxe ? "yes" : "no") + "; snapshots " +
          (setup.snapshots.enabled ? "at " + FormatTimeOfDay(setup.snapshots.taken_at) : "none");
  std::vector<std::string> services;
  for (const ServiceConfig& s : setup.services) services.push_back(s.name);
  line += "; services: " + (services.empty() ? std::string("none") : Join(services));
  return line;
}

// "boot safe-mode [technician] takes uniform(2m, 5m) when bitlocker" for `validate`.
std::string StepSummary(const StepConfig& step) {
  std::string text(StepKindName(step.kind));
  switch (step.kind) {
    case StepKind::kReboot:
      text += " x" + std::to_string(step.times);
      break;
    case StepKind::kBoot:
      text += " " + std::string(BootTargetName(step.into));
      break;
    case StepKind::kDelete:
      text += " " + step.pattern;
      break;
    default:
      break;
  }
  if (!step.needs.empty()) text += " [" + AllowedNames(step.needs, ResourceName) + "]";
  if (step.takes.Mean() > 0) text += " takes " + step.takes.ToString();
  std::vector<std::string> when;
  if (step.when.bitlocker) when.push_back(*step.when.bitlocker ? "bitlocker" : "no bitlocker");
  if (step.when.oob_console) when.push_back(*step.when.oob_console ? "console oob" : "no console");
  if (step.when.cloud) when.push_back(*step.when.cloud ? "cloud" : "not cloud");
  if (!step.when.roles.empty()) when.push_back("role " + AllowedNames(step.when.roles, RoleName));
  if (!step.when.groups.empty()) when.push_back("group " + Join(step.when.groups));
  if (!step.when.sites.empty()) when.push_back("site " + Join(step.when.sites));
  if (!when.empty()) text += " when " + Join(when);
  return text;
}

std::string RunbookSummary(const RunbookConfig& r) {
  std::vector<std::string> steps;
  for (const StepConfig& step : r.steps) steps.push_back(StepSummary(step));
  std::string line = "starts " + std::string(RunbookStartName(r.starts)) + ", " +
                     std::to_string(r.steps.size()) + " step(s): ";
  for (size_t i = 0; i < steps.size(); ++i) line += (i > 0 ? "; " : "") + steps[i];
  std::vector<std::string> rules;
  for (const PriorityRule& rule : r.priorities) {
    rules.push_back(rule.first + " before " + Join(rule.then));
  }
  line += "; priorities: " + (rules.empty() ? std::string("none") : Join(rules));
  line += "; parallelism: " +
          (r.parallelism == 0 ? std::string("unlimited") : std::to_string(r.parallelism));
  return line;
}

}  // namespace

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

Result<ScenarioConfig> LoadScenario(const std::string& path, const std::string& images_root) {
  return Guarded<ScenarioConfig>(path, [&] { return ReadScenarioFile(path, path, images_root); });
}

Result<SetupConfig> LoadSetup(const std::string& path) {
  return Guarded<SetupConfig>(path, [&] { return ReadSetupFile(path, path, nullptr); });
}

Result<RunbookConfig> LoadRunbook(const std::string& path) {
  return Guarded<RunbookConfig>(path, [&] { return ReadRunbookFile(path, path, nullptr); });
}

Result<ImageConfig> LoadImage(const std::string& images_root, const std::string& name) {
  return Guarded<ImageConfig>(images_root + "/" + name,
                              [&] { return ReadImageFile(images_root, name, nullptr); });
}

Status CheckRunbookFitsSetup(const RunbookConfig& runbook, const SetupConfig& setup) {
  bool any_applies = false;
  for (size_t i = 0; i < runbook.steps.size(); ++i) {
    const StepConfig& step = runbook.steps[i];
    const std::string label = StepLabel(step, i);
    for (const std::string& g : step.when.groups) {
      if (FindGroup(setup, g) == nullptr) {
        return Status::AtLocation(step.when.where, label + ": when names unknown group '" + g +
                                                       "'; groups of " + SetupLabel(setup) + ": " +
                                                       Join(GroupNames(setup.groups)));
      }
    }
    for (const std::string& s : step.when.sites) {
      if (FindSite(setup, s) == nullptr) {
        return Status::AtLocation(step.when.where, label + ": when names unknown site '" + s +
                                                       "'; sites of " + SetupLabel(setup) + ": " +
                                                       Join(SiteNames(setup.sites)));
      }
    }
    std::vector<const GroupConfig*> applies;
    for (const GroupConfig& g : setup.groups) {
      if (ConditionsMatch(step.when, g)) applies.push_back(&g);
    }
    if (applies.empty()) continue;  // skipped for every host of this setup
    any_applies = true;
    if (step.kind == StepKind::kRevertSnapshot && !setup.snapshots.enabled) {
      return Status::AtLocation(step.where,
                                label + " needs snapshots, but " + SetupLabel(setup) +
                                    " takes none; expected snapshots: {taken_at: \"00:00\"} in "
                                    "the setup");
    }
    for (Resource need : step.needs) {
      bool met = false;
      for (const GroupConfig* g : applies) met = met || CanMeet(need, *g, setup);
      if (!met) {
        return Status::AtLocation(step.where, label + " needs " + std::string(ResourceName(need)) +
                                                  ", which no host it applies to can get in " +
                                                  SetupLabel(setup) + ": " + WhyNot(need, applies));
      }
    }
    bool all_met = false;
    for (const GroupConfig* g : applies) {
      bool ok = true;
      for (Resource need : step.needs) ok = ok && CanMeet(need, *g, setup);
      all_met = all_met || ok;
    }
    if (!all_met) {
      return Status::AtLocation(
          step.where, label + " needs " + AllowedNames(step.needs, ResourceName) +
                          " together, which no host it applies to can get in " + SetupLabel(setup) +
                          " (each is at a different site or group)");
    }
  }
  if (!any_applies) {
    return Status::AtLocation(
        runbook.where, "runbook '" + runbook.name + "' does nothing on " + SetupLabel(setup) +
                           ": the when conditions of its steps match none of its groups (" +
                           Join(GroupNames(setup.groups)) + ")");
  }
  return PriorityRanks(runbook, setup).status();
}

Status CheckRunbookFitsImage(const RunbookConfig& runbook, const SetupConfig& setup,
                             const ImageConfig& image) {
  for (size_t i = 0; i < runbook.steps.size(); ++i) {
    const StepConfig& step = runbook.steps[i];
    const std::optional<RecoveryPath> path = StepRecoveryPath(step.kind, step.into);
    if (!path || ImageSupports(image, *path)) continue;
    bool applies = false;
    for (const GroupConfig& g : setup.groups) applies = applies || ConditionsMatch(step.when, g);
    if (!applies) continue;  // skipped for every host of this setup: never asked of the image
    return Status::AtLocation(
        step.where,
        StepLabel(step, i) + " of runbook '" + runbook.name + "' needs recovery path " +
            std::string(RecoveryPathName(*path)) + ", which image '" + image.name + "' (kind " +
            std::string(ImageKindName(image.kind)) + ", " + image.file +
            ") does not support; it supports: " + AllowedNames(image.recovery, RecoveryPathName) +
            " (its recovery: list); pick a runbook without this step or another image");
  }
  return Status::Ok();
}

Result<std::map<std::string, int>> PriorityRanks(const RunbookConfig& runbook,
                                                 const SetupConfig& setup) {
  ASSIGN_OR_RETURN(PriorityGraph graph, GroupPriorityGraph(runbook, setup));
  const std::vector<int> ranks = graph.Ranks();
  std::map<std::string, int> out;
  for (size_t i = 0; i < setup.groups.size(); ++i) out[setup.groups[i].name] = ranks[i];
  return out;
}

Result<ScenarioConfig> Recombine(ScenarioConfig base, const SetupConfig* setup,
                                 const RunbookConfig* runbook) {
  if (setup != nullptr) base.setup = *setup;
  if (runbook != nullptr) base.runbook = *runbook;
  if (base.setup.image != base.image.name) {
    // The images live next to the one the scenario loaded.
    if (base.image.recipe_dir.empty()) {
      return Status::AtLocation(base.setup.image_where,
                                "image '" + base.setup.image + "' of " + SetupLabel(base.setup) +
                                    " is not the scenario's image '" + base.image.name +
                                    "', and the scenario does not say where images live");
    }
    const std::string images_root = fs::path(base.image.recipe_dir).parent_path().string();
    ASSIGN_OR_RETURN(base.image, Guarded<ImageConfig>(images_root, [&] {
                       return ReadImageFile(images_root, base.setup.image, &base.setup.image_where);
                     }));
  }
  RETURN_IF_ERROR(CheckRunbookFitsImage(base.runbook, base.setup, base.image));
  RETURN_IF_ERROR(CheckRunbookFitsSetup(base.runbook, base.setup));
  RETURN_IF_ERROR(CheckRolloutFitsSetup(base.rollout, base.setup));
  return base;
}

Result<std::string> FindPlaybook(const ScenarioConfig& scenario, const std::string& kind,
                                 const std::string& name_or_path) {
  if (kind != "runbooks" && kind != "setups") {
    return Status::InvalidArgument("playbook kind '" + kind + "': expected runbooks or setups");
  }
  const std::string singular = kind.substr(0, kind.size() - 1);
  if (name_or_path.empty()) {
    return Status::InvalidArgument("expected a " + singular + " name or path, got ''");
  }
  const fs::path written(name_or_path);
  const bool is_path = name_or_path.find('/') != std::string::npos ||
                       written.extension() == ".yaml" || written.extension() == ".yml";
  std::error_code ec;
  if (is_path) {
    const std::string path = AbsolutePath(name_or_path);
    if (!fs::is_regular_file(path, ec)) {
      return Status::NotFound(singular + " file '" + name_or_path + "' (resolved to " + path +
                              ") does not exist");
    }
    return path;
  }
  if (Status ok = CheckIdentifier(singular + " name", name_or_path); !ok.ok()) {
    return Status::InvalidArgument(ok.message() + "; or give a path to a YAML file");
  }
  const fs::path folder =
      (fs::path(AbsolutePath(scenario.file)).parent_path().parent_path() / kind).lexically_normal();
  const fs::path path = folder / (name_or_path + ".yaml");
  if (fs::is_regular_file(path, ec)) return path.string();
  std::vector<std::string> available;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml") available.push_back(it->path().stem().string());
  }
  std::sort(available.begin(), available.end());
  return Status::NotFound("no " + singular + " named '" + name_or_path + "': looked for " +
                          path.string() +
                          (available.empty() ? "" : "; " + kind + " there: " + Join(available)));
}

Status ValidateFile(const std::string& path, const std::string& images_root, std::string* summary) {
  enum class Kind { kUnknown, kScenario, kSetup, kRunbook, kImage };
  const fs::path p(path);
  Kind kind = Kind::kUnknown;
  if (p.filename() == "image.yaml") kind = Kind::kImage;

  // By its top-level keys (a file that does not parse is reported by the loader below).
  if (kind == Kind::kUnknown) {
    Result<YAML::Node> root =
        Guarded<YAML::Node>(path, [&] { return ParseFile("playbook", path, path, nullptr); });
    if (!root.ok()) return root.status();
    if (root->IsMap()) {
      for (const auto& entry : *root) {
        if (!entry.first.IsScalar()) continue;
        const std::string& key = entry.first.Scalar();
        if (key == "setup" || key == "runbook" || key == "fault" || key == "rollout" ||
            key == "stop" || key == "backend") {
          kind = Kind::kScenario;
        } else if (key == "groups" || key == "sites" || key == "key_escrow" || key == "services" ||
                   key == "snapshots" || key == "pxe") {
          kind = Kind::kSetup;
        } else if (key == "steps" || key == "starts" || key == "priorities" ||
                   key == "parallelism") {
          kind = Kind::kRunbook;
        }
        if (kind != Kind::kUnknown) break;
      }
    }
  }
  // Else by its folder.
  if (kind == Kind::kUnknown) {
    const std::string folder = p.lexically_normal().parent_path().filename().string();
    if (folder == "scenarios") kind = Kind::kScenario;
    if (folder == "setups") kind = Kind::kSetup;
    if (folder == "runbooks") kind = Kind::kRunbook;
  }

  std::string line;
  switch (kind) {
    case Kind::kUnknown:
      return Status::InvalidArgument(
          path +
          ": cannot tell what kind of playbook this is: expected a scenario (keys setup, "
          "runbook, ...), a setup (keys sites, groups), a runbook (key steps) or an image "
          "recipe (a file named image.yaml)");
    case Kind::kScenario: {
      ASSIGN_OR_RETURN(ScenarioConfig s, LoadScenario(path, images_root));
      line = "scenario '" + s.name + "': setup '" + s.setup.name + "' (" + SetupSummary(s.setup) +
             "), fault " + std::string(FaultKindName(s.fault.kind)) + " released " +
             FormatTimeOfDay(s.rollout.release) + ", reverted " +
             FormatTimeOfDay(s.rollout.revert) + ", runbook '" + s.runbook.name + "' (" +
             std::to_string(s.runbook.steps.size()) + " step(s)), backend " +
             std::string(BackendKindName(s.backend)) + ", " + std::to_string(s.repetitions) +
             " repetition(s), seed " + std::to_string(s.seed) + ", stop after " +
             FormatDuration(s.stop.max_scenario) + " scenario / " +
             FormatDuration(s.stop.max_wall) + " wall";
      break;
    }
    case Kind::kSetup: {
      ASSIGN_OR_RETURN(SetupConfig s, LoadSetup(path));
      line = "setup '" + s.name + "': " + SetupSummary(s) + SetupDetails(s);
      break;
    }
    case Kind::kRunbook: {
      ASSIGN_OR_RETURN(RunbookConfig r, LoadRunbook(path));
      line = "runbook '" + r.name + "': " + RunbookSummary(r);
      break;
    }
    case Kind::kImage: {
      const fs::path dir = fs::path(AbsolutePath(path)).parent_path();
      const std::string root = dir.parent_path().string();
      ASSIGN_OR_RETURN(ImageConfig image, LoadImage(root, dir.filename().string()));
      line = "image '" + image.name + "' (" + std::string(ImageKindName(image.kind)) +
             "): timing for " + std::to_string(image.timing.size()) + " roles, recovery " +
             AllowedNames(image.recovery, RecoveryPathName);
      break;
    }
  }
  if (summary != nullptr) *summary = line;
  return Status::Ok();
}

}  // namespace chaoslab::config
