#include "lab/sim/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "lab/backend/guest_clock.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::sim {
namespace {

namespace fs = std::filesystem;

uint64_t Fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

using config::Fields;
using config::ReadInt;
using config::ReadNumber;
using config::ReadString;
using config::YamlFile;

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

// `method:`: how the VM runs behind the figures were measured.
Result<Method> ReadMethod(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "method",
                                {"guest_clock", "host_path", "race_window_ms", "load_average"}));
  Method method;
  method.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node clock, fields.Require("guest_clock"));
  ASSIGN_OR_RETURN(method.guest_clock, ReadString(file, clock, "guest_clock"));
  ASSIGN_OR_RETURN(YAML::Node host_path, fields.Require("host_path"));
  ASSIGN_OR_RETURN(method.host_path, ReadString(file, host_path, "host_path"));
  ASSIGN_OR_RETURN(YAML::Node window, fields.Require("race_window_ms"));
  ASSIGN_OR_RETURN(method.race_window_ms, ReadInt(file, window, "race_window_ms", 1, kNoLimit));
  if (fields.Has("load_average")) {
    ASSIGN_OR_RETURN(method.load_average,
                     ReadNumber(file, fields.Get("load_average"), "load_average"));
  }
  return method;
}

// One network profile's entry of `race:`.
Result<RaceFigures> ReadRaceFigures(const YamlFile& file, const YAML::Node& node,
                                    const std::string& what) {
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, what, {"hosts", "boots", "wins", "recovered_after", "never"}));
  RaceFigures r;
  r.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node boots, fields.Require("boots"));
  ASSIGN_OR_RETURN(r.boots, ReadInt(file, boots, what + " boots", 1, kNoLimit));
  ASSIGN_OR_RETURN(YAML::Node wins, fields.Require("wins"));
  ASSIGN_OR_RETURN(r.wins, ReadInt(file, wins, what + " wins", 0, kNoLimit));
  if (r.wins > r.boots) {
    return file.Error(wins, fmt::format("{}: {} wins out of {} boots is impossible (wins <= boots)",
                                        what, r.wins, r.boots));
  }
  if (fields.Has("hosts")) {
    ASSIGN_OR_RETURN(r.hosts, ReadInt(file, fields.Get("hosts"), what + " hosts", 0, kNoLimit));
  }
  if (fields.Has("never")) {
    ASSIGN_OR_RETURN(r.never, ReadInt(file, fields.Get("never"), what + " never", 0, kNoLimit));
  }
  if (fields.Has("recovered_after")) {
    const YAML::Node list = fields.Get("recovered_after");
    if (!list.IsSequence()) {
      return file.Error(list, what + " recovered_after: expected a list, got " +
                                  config::internal::Describe(list));
    }
    int64_t sum = 0;
    for (const YAML::Node& item : list) {
      ASSIGN_OR_RETURN(int64_t k, ReadInt(file, item, what + " recovered_after", 0, kNoLimit));
      r.recovered_after.push_back(k);
      sum += k;
    }
    if (r.hosts > 0 && sum + r.never != r.hosts) {
      return file.Error(list, fmt::format("{}: {} recovered + {} never != {} hosts", what, sum,
                                          r.never, r.hosts));
    }
  }
  return r;
}

// One entry of `figures:`, named `name`.
Result<Figure> ReadFigure(const YamlFile& file, const YAML::Node& node, const std::string& name) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "figure " + name, {"mean", "sd", "samples"}));
  Figure f;
  f.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node mean, fields.Require("mean"));
  ASSIGN_OR_RETURN(f.mean, ReadNumber(file, mean, name + " mean"));
  if (fields.Has("sd")) {
    ASSIGN_OR_RETURN(f.sd, ReadNumber(file, fields.Get("sd"), name + " sd"));
    if (f.sd < 0) return file.Error(fields.Get("sd"), name + ": a standard deviation < 0");
  }
  ASSIGN_OR_RETURN(YAML::Node samples, fields.Require("samples"));
  ASSIGN_OR_RETURN(f.samples, ReadInt(file, samples, name + " samples", 1, kNoLimit));
  if (f.mean < 0) return file.Error(mean, name + ": a duration cannot be negative");
  return f;
}

// One entry of `steps:`, for the step kind `kind`.
Result<StepFigures> ReadStepFigures(const YamlFile& file, const YAML::Node& node,
                                    const std::string& kind) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "step " + kind, {"ok", "attempts"}));
  StepFigures s;
  s.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node ok, fields.Require("ok"));
  ASSIGN_OR_RETURN(s.ok, ReadInt(file, ok, "ok", 0, kNoLimit));
  ASSIGN_OR_RETURN(YAML::Node attempts, fields.Require("attempts"));
  ASSIGN_OR_RETURN(s.attempts, ReadInt(file, attempts, "attempts", 1, kNoLimit));
  if (s.ok > s.attempts) {
    return file.Error(ok, fmt::format("step {}: {} successes out of {} attempts is impossible",
                                      kind, s.ok, s.attempts));
  }
  return s;
}

// The file's image and recipe hash must be the scenario's: a calibration of another image, or of
// an older recipe of this one, measured other guests.
Status CheckMadeForImage(const YamlFile& file, const Calibration& cal, const Fields& fields,
                         const config::ImageConfig& image) {
  if (cal.image != image.name) {
    return file.Error(fields.Get("image"),
                      "calibration is for image '" + cal.image + "', the scenario runs '" +
                          image.name + "'; run `chaoslab calibrate --image " + image.name + "`");
  }
  ASSIGN_OR_RETURN(std::string now_hash, RecipeHash(image));
  if (cal.image_hash != now_hash) {
    return Status::FailedPrecondition(fmt::format(
        "{}: stale calibration: made for image {} with recipe hash {} (at {}), the recipe in {} "
        "now hashes to {}; run `chaoslab calibrate` to measure the current image",
        file.At(fields.Get("image_hash")).ToString(), cal.image, cal.image_hash, cal.generated_at,
        image.recipe_dir, now_hash));
  }
  return Status::Ok();
}

// `race:` or `remediation:`: RaceFigures per network profile.
Result<std::map<config::Network, RaceFigures>> ReadRacesPerNetwork(const YamlFile& file,
                                                                   const YAML::Node& node,
                                                                   const std::string& what) {
  RETURN_IF_ERROR(
      Fields::Open(file, node, what + " (per network profile)", {"wired", "wifi", "vpn"}).status());
  std::map<config::Network, RaceFigures> races;
  for (const auto& entry : node) {
    const std::string net = entry.first.Scalar();
    ASSIGN_OR_RETURN(races[*config::ParseNetwork(net)],
                     ReadRaceFigures(file, entry.second, what + " " + net));
  }
  return races;
}

Result<Calibration> Parse(const std::string& path, const config::ImageConfig& image) {
  ASSIGN_OR_RETURN(YAML::Node root, config::ParseFile("calibration", path, path, nullptr));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "a calibration",
                                {"image", "image_hash", "generated_at", "generated_by", "method",
                                 "race", "remediation", "figures", "steps"}));
  Calibration cal;
  cal.file = path;
  ASSIGN_OR_RETURN(YAML::Node img, fields.Require("image"));
  ASSIGN_OR_RETURN(cal.image, ReadString(file, img, "image"));
  ASSIGN_OR_RETURN(YAML::Node hash, fields.Require("image_hash"));
  ASSIGN_OR_RETURN(cal.image_hash, ReadString(file, hash, "image_hash"));
  if (fields.Has("generated_at")) {
    ASSIGN_OR_RETURN(cal.generated_at,
                     ReadString(file, fields.Get("generated_at"), "generated_at"));
  }
  if (fields.Has("generated_by")) {
    ASSIGN_OR_RETURN(cal.generated_by,
                     ReadString(file, fields.Get("generated_by"), "generated_by"));
  }
  RETURN_IF_ERROR(CheckMadeForImage(file, cal, fields, image));
  if (!fields.Has("method")) {
    return Status::FailedPrecondition(
        fields.where().ToString() +
        ": the calibration does not say how it was measured (no method: guest clock, host "
        "path, race window); it predates the load-independent reboot race: run `chaoslab "
        "calibrate`");
  }
  ASSIGN_OR_RETURN(cal.method, ReadMethod(file, fields.Get("method")));
  ASSIGN_OR_RETURN(YAML::Node race, fields.Require("race"));
  ASSIGN_OR_RETURN(cal.race, ReadRacesPerNetwork(file, race, "race"));
  if (fields.Has("remediation")) {
    ASSIGN_OR_RETURN(cal.remediation,
                     ReadRacesPerNetwork(file, fields.Get("remediation"), "remediation"));
  }
  if (fields.Has("figures")) {
    const YAML::Node figures = fields.Get("figures");
    RETURN_IF_ERROR(Fields::Open(file, figures, "figures", {}).status());
    for (const auto& entry : figures) {
      const std::string name = entry.first.Scalar();
      ASSIGN_OR_RETURN(cal.figures[name], ReadFigure(file, entry.second, name));
    }
  }
  if (fields.Has("steps")) {
    const YAML::Node steps = fields.Get("steps");
    RETURN_IF_ERROR(Fields::Open(file, steps, "steps", {}).status());
    for (const auto& entry : steps) {
      const std::string name = entry.first.Scalar();
      std::optional<config::StepKind> kind = config::ParseStepKind(name);
      if (!kind) return file.Error(entry.first, "unknown step kind '" + name + "'");
      ASSIGN_OR_RETURN(cal.steps[*kind], ReadStepFigures(file, entry.second, name));
    }
  }
  return cal;
}

}  // namespace

Result<std::string> RecipeHash(const config::ImageConfig& image) {
  std::error_code ec;
  if (image.recipe_dir.empty() || !fs::is_directory(image.recipe_dir, ec)) {
    return Status::NotFound("image recipe folder of " + image.name + " not found");
  }
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(image.recipe_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& f : files) {
    std::string rel = fs::relative(f, image.recipe_dir).generic_string();
    // Only what goes into the guest counts: byte code, docs and the image's own test scripts do
    // not change what a calibration measured.
    std::string name = f.filename().string();
    if (rel.find("__pycache__") != std::string::npos || rel.ends_with(".pyc") ||
        name.ends_with(".md") || name.find("selftest") != std::string::npos) {
      continue;
    }
    std::ifstream in(f, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    h = Fnv1a(h, rel);
    h = Fnv1a(h, std::string_view("\0", 1));
    h = Fnv1a(h, bytes.str());
  }
  return fmt::format("fnv1a64:{:016x}", h);
}

Result<Calibration> LoadCalibration(const std::string& path, const config::ImageConfig& image) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) {
    return Status::FailedPrecondition(
        "no calibration file " + (path.empty() ? std::string("given") : path) +
        ": the simulator needs the figures real guests showed; run `chaoslab calibrate` (writes "
        "playbooks/calibration/" +
        image.name + ".yaml)");
  }
  return config::Guarded<Calibration>(path, [&] { return Parse(path, image); });
}

Status CheckCalibrationFits(const Calibration& cal, const config::ScenarioConfig& scenario) {
  const std::string lab_clock = GuestClockName(GuestClock::kInstructions);
  if (cal.method.guest_clock != lab_clock) {
    return Status::FailedPrecondition(fmt::format(
        "{}: calibration measured on the {} guest clock; the lab's reboot race runs on {} (its "
        "figures do not follow the machine's load): run `chaoslab calibrate` on a machine "
        "without KVM, or with --accel tcg",
        cal.method.where.ToString(), cal.method.guest_clock, lab_clock));
  }
  if (cal.method.host_path != "realtime") {
    return Status::FailedPrecondition(fmt::format(
        "{}: calibration measured with host_path {}: the lab's side of the guests' network path "
        "ran at ordinary priority, so its race figures follow the machine's load "
        "(docs/TIME-BASE.md): run `chaoslab calibrate` as root",
        cal.method.where.ToString(), cal.method.host_path));
  }
  // The race is drawn from what guests showed at the calibrated window: another window cannot be
  // applied, only measured (issue 17: an override must not be silently ignored).
  const int window = scenario.RaceWindowMs();
  if (cal.method.race_window_ms != window) {
    const std::string source =
        scenario.race_window_ms
            ? "its race_window_ms at " + scenario.race_window_where.ToString()
            : "the race_window_ms of image " + scenario.image.name + ", " + scenario.image.file;
    return Status::FailedPrecondition(fmt::format(
        "{}: calibration measured with race_window_ms {}, scenario {} runs race_window_ms {} "
        "({}); the simulator cannot apply another window than the one measured: calibrate with "
        "this window (`chaoslab calibrate --scenario`) or drop the override",
        cal.method.where.ToString(), cal.method.race_window_ms, scenario.name, window, source));
  }
  return Status::Ok();
}

Status SaveCalibration(const Calibration& cal, const std::string& provenance,
                       const std::string& path) {
  std::ostringstream out;
  std::istringstream lines(provenance);
  for (std::string line; std::getline(lines, line);) out << "# " << line << "\n";
  out << "image: " << cal.image << "\n";
  out << "image_hash: \"" << cal.image_hash << "\"\n";
  out << "generated_at: \"" << cal.generated_at << "\"\n";
  out << "generated_by: \"" << cal.generated_by << "\"\n";
  out << fmt::format(
      "method: {{guest_clock: {}, host_path: {}, race_window_ms: {}, load_average: {:.1f}}}\n",
      cal.method.guest_clock, cal.method.host_path, cal.method.race_window_ms,
      cal.method.load_average);
  auto races = [&](const char* key, const std::map<config::Network, RaceFigures>& per_net) {
    out << key << ":\n";
    for (const auto& [net, r] : per_net) {
      out << "  " << config::NetworkName(net) << ": {hosts: " << r.hosts << ", boots: " << r.boots
          << ", wins: " << r.wins << ", recovered_after: [";
      for (size_t i = 0; i < r.recovered_after.size(); ++i)
        out << (i ? ", " : "") << r.recovered_after[i];
      out << "], never: " << r.never << "}\n";
    }
  };
  races("race", cal.race);
  if (!cal.remediation.empty()) races("remediation", cal.remediation);
  if (!cal.figures.empty()) {
    out << "figures:\n";
    for (const auto& [name, f] : cal.figures)
      out << fmt::format("  {}: {{mean: {:.3f}, sd: {:.3f}, samples: {}}}\n", name, f.mean, f.sd,
                         f.samples);
  }
  if (!cal.steps.empty()) {
    out << "steps:\n";
    for (const auto& [kind, s] : cal.steps)
      out << "  " << config::StepKindName(kind) << ": {ok: " << s.ok << ", attempts: " << s.attempts
          << "}\n";
  }
  std::ofstream f(path);
  f << out.str();
  return f ? Status::Ok() : Status::IoError("cannot write " + path);
}

std::string DefaultCalibrationPath(const config::ScenarioConfig& scenario) {
  if (!scenario.calibration_file.empty()) return scenario.calibration_file;
  fs::path playbooks = fs::path(scenario.file).parent_path().parent_path();
  return (playbooks / "calibration" / (scenario.image.name + ".yaml")).string();
}

namespace {

// The value of `key=` in a guest line ("@@winsim cmd=del rc=0 deleted=1"), "" when absent.
std::string GuestValue(const std::string& line, const std::string& key) {
  const std::string k = " " + key + "=";
  size_t at = line.find(k);
  if (at == std::string::npos) return "";
  at += k.size();
  return line.substr(at, line.find(' ', at) - at);
}

}  // namespace

void AddStepOutcomes(const std::vector<StepEvent>& events,
                     std::map<config::StepKind, StepFigures>* steps) {
  using config::StepKind;
  struct HostSeen {
    std::string step;  // the running step's label ("boot:safe-mode", "delete", ...)
    bool locked = false;
  };
  std::map<std::string, HostSeen> seen;
  for (const StepEvent& e : events) {
    if (e.host.empty()) continue;
    HostSeen& h = seen[e.host];
    if (e.kind == "step") {
      h.step = e.detail;
      if (e.detail.rfind("boot:", 0) == 0 && e.detail != "boot:pxe") {
        (*steps)[StepKind::kBoot].attempts++;
        (*steps)[StepKind::kBoot].ok++;  // taken back below if the guest reports a failed boot
      }
    } else if (e.kind == "step-failed") {
      if (h.step.rfind("boot:", 0) == 0 && h.step != "boot:pxe") {
        // The guest reported a failed boot: a failed attempt. Anything else (the lab could not
        // reset the VM) was not the guest's doing: no attempt.
        StepFigures& f = (*steps)[StepKind::kBoot];
        f.ok--;
        if (e.detail.rfind("boot: boot failed", 0) != 0) f.attempts--;
      }
      h.step.clear();
    } else if (e.kind == "console") {
      h.locked = GuestValue(e.detail, "bitlocker") == "locked";
    } else if (e.kind == "command") {
      const std::string cmd = GuestValue(e.detail, "cmd");
      const bool ok = GuestValue(e.detail, "rc") == "0";
      if (cmd == "unlock" && h.step == "unlock-bitlocker") {
        (*steps)[StepKind::kUnlockBitlocker].attempts++;
        if (ok) (*steps)[StepKind::kUnlockBitlocker].ok++;
      } else if (cmd == "del" && h.step == "delete" && !h.locked) {
        (*steps)[StepKind::kDelete].attempts++;
        if (ok) (*steps)[StepKind::kDelete].ok++;
      }
      if (cmd == "unlock" && ok) h.locked = false;
    }
  }
}

}  // namespace chaoslab::sim
