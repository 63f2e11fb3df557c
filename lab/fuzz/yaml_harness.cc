// The YAML loaders: the same bytes as a scenario, setup, runbook, mix, calibration and inventory.
// Each input is written to <tmp>/playbooks/scenarios/fuzz.yaml, next to links to the repository's
// setups/, runbooks/, mixes/, calibration/ and inventory/, so that names such as
// `setup: ../setups/demo-lab.yaml` resolve as in playbooks/.
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <exception>
#include <filesystem>
#include <fstream>

#include "lab/config/config_loader.h"
#include "lab/fuzz/lab_fuzz.h"
#include "lab/libvirt/inventory.h"
#include "lab/sim/calibration.h"
#include "lab/sim/mix.h"

namespace chaoslab::fuzz {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  std::string source = SourceDir();
  std::string images = source + "/images";
  fs::path dir;                         // <tmp>/chaoslab-fuzz-yaml-<pid>
  std::string path;                     // the input's file
  config::ScenarioConfig mix_scenario;  // what LoadMix needs: the scenario naming the mix
  config::ImageConfig image;            // what LoadCalibration checks against

  Fixture() {
    std::error_code ec;
    fs::path tmp = fs::exists("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = tmp / ("chaoslab-fuzz-yaml-" + std::to_string(getpid()));
    fs::remove_all(dir, ec);
    fs::create_directories(dir / "playbooks" / "scenarios");
    for (const char* kind : {"setups", "runbooks", "mixes", "calibration", "inventory"}) {
      fs::create_directory_symlink(fs::path(source) / "playbooks" / kind, dir / "playbooks" / kind);
    }
    path = (dir / "playbooks" / "scenarios" / "fuzz.yaml").string();
    auto scenario = config::LoadScenario(source + "/playbooks/scenarios/global-2024.yaml", images);
    if (!scenario.ok()) Fail("yaml fixture", scenario.status().ToString());
    mix_scenario = *scenario;
    auto winsim = config::LoadImage(images, "winsim");
    if (!winsim.ok()) Fail("yaml fixture", winsim.status().ToString());
    image = *winsim;
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Fixture& TheFixture() {
  static Fixture fixture;
  return fixture;
}

// Whether `message` names a place "<file>:<line>:<column>".
bool HasLocation(std::string_view message) {
  auto digits = [&](size_t at) {
    size_t end = at;
    while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) ++end;
    return end - at;
  };
  for (size_t colon = message.find(':'); colon != std::string_view::npos;
       colon = message.find(':', colon + 1)) {
    size_t line = digits(colon + 1);
    if (line == 0 || colon == 0) continue;
    size_t second = colon + 1 + line;
    if (second < message.size() && message[second] == ':' && digits(second + 1) > 0) return true;
  }
  return false;
}

// A loader's result: OK, or an error that says where (file:line:column); never an exception.
// An error about a file with no YAML in it (empty, comments, a null document) has no line to
// point at: it must name the file.
bool NamesNothing(std::string_view message, const std::string& path, std::string_view bytes) {
  if (!message.starts_with(path)) return false;
  try {
    return YAML::Load(std::string(bytes)).IsNull();
  } catch (const std::exception&) {
    return false;  // yaml-cpp's errors have a mark: the loader should have said where
  }
}

template <typename Load>
void Check(std::string_view loader, const std::string& path, std::string_view bytes, Load load,
           Stats& stats) {
  Status status;
  try {
    status = load();
  } catch (const std::exception& e) {
    Fail(std::string(loader) + " threw", e.what());
  } catch (...) {
    Fail(std::string(loader) + " threw", "not a std::exception");
  }
  if (status.ok()) {
    ++stats[std::string(loader) + "_ok"];
    return;
  }
  if (!HasLocation(status.message()) && !(NamesNothing(status.message(), path, bytes))) {
    Fail(std::string(loader) + " error without file:line:column", status.ToString());
  }
}

}  // namespace

void CheckYaml(std::string_view bytes, Stats& stats) {
  Fixture& f = TheFixture();
  {
    std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) Fail("yaml fixture", "cannot write " + f.path);
  }
  Check(
      "scenario", f.path, bytes, [&] { return config::LoadScenario(f.path, f.images).status(); },
      stats);
  Check(
      "setup", f.path, bytes, [&] { return config::LoadSetup(f.path).status(); }, stats);
  Check(
      "runbook", f.path, bytes, [&] { return config::LoadRunbook(f.path).status(); }, stats);
  Check(
      "mix", f.path, bytes, [&] { return sim::LoadMix(f.path, f.mix_scenario).status(); }, stats);
  Check(
      "calibration", f.path, bytes, [&] { return sim::LoadCalibration(f.path, f.image).status(); },
      stats);
  Check(
      "inventory", f.path, bytes,
      [&] { return libvirt::ParseInventory(std::string(bytes), f.path).status(); }, stats);
}

}  // namespace chaoslab::fuzz
