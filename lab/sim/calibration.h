// The simulator's calibration: what real guests of an image showed, with the number of samples
// behind each figure. `chaoslab calibrate` writes it from VM runs; the simulator reads it and
// refuses a missing file, one made for another version of the image (its recipe hash differs),
// and impossible figures (file:line:column).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/config/config.h"

namespace chaoslab::sim {

// Boots of hosts whose disk holds the bad channel file after the revert, on one network profile:
// each boot is a race between fetching the reverted file and the first IPC notification.
struct RaceFigures {
  int64_t hosts = 0;  // hosts observed
  int64_t boots = 0;  // boots after the revert with the bad file on disk
  int64_t wins = 0;   // boots where the reverted file won (the host came up healthy)
  // recovered_after[k]: hosts that came back on their k-th such boot (index 0 unused).
  std::vector<int64_t> recovered_after;
  int64_t never = 0;  // hosts that never came back within the runbook's reboots
  // Probability that one boot wins the race (maximum-likelihood: wins / boots).
  double WinProbability() const { return boots > 0 ? double(wins) / double(boots) : 0.0; }
  SourceLocation where;
};

// A measured quantity: mean and standard deviation of `samples` observations.
struct Figure {
  double mean = 0, sd = 0;
  int64_t samples = 0;
  SourceLocation where;
};

// How often a runbook step's machine part succeeded on real guests.
struct StepFigures {
  int64_t ok = 0, attempts = 0;
  double Rate() const { return attempts > 0 ? double(ok) / double(attempts) : 1.0; }
  SourceLocation where;
};

// How the VM runs behind a calibration were measured (`method:`): the guest clock
// (lab/backend/guest_clock.h: "icount-shift0", or "wall", whose figures follow the machine's
// load), the priority of the lab's side of the guests' network path (lab/backend/lab_priority.h:
// "realtime", or "ordinary", whose figures follow the machine's load too), the race window of the
// scenario they ran, and the machine's load at the start.
struct Method {
  std::string guest_clock;
  std::string host_path;
  int64_t race_window_ms = 0;
  double load_average = -1;
  SourceLocation where;
};

struct Calibration {
  std::string file;        // absolute path it was read from
  std::string image;       // image name, e.g. "winsim"
  std::string image_hash;  // RecipeHash() of the image (its network profiles included)
  std::string generated_at, generated_by;
  Method method;
  std::map<config::Network, RaceFigures> race;
  // `remediation:` the same boots of hosts under the vendor's cloud remediation (quarantine from
  // the revert, reboot-race-remediation.yaml): a win is a boot that survived, by the quarantine or
  // the reverted file. Its own figure: the quarantine comes with the first answer (the manifest),
  // the reverted file needs a second request, so the two races differ. Empty: not measured.
  std::map<config::Network, RaceFigures> remediation;
  // boot_wall_s (one crash cycle of a real guest, wall), crash_detection_s (release → first crash,
  // scenario), recovery_s (revert-phase reboot until healthy, scenario)...
  std::map<std::string, Figure> figures;
  std::map<config::StepKind, StepFigures> steps;

  // Rate of the step's machine part (1 when not calibrated: the guest decides deterministically).
  double StepRate(config::StepKind kind) const {
    auto it = steps.find(kind);
    return it == steps.end() ? 1.0 : it->second.Rate();
  }
};

// One journal event of a VM run, as far as step outcomes need it (lab/journal's JournalEvent).
struct StepEvent {
  std::string host, kind, detail;
};

// Adds to `steps` what the machine parts of a VM run's runbook steps did, from its journal events
// in order — the same outcomes the simulator draws with StepRate:
//   boot (into safe-mode, winre or usb): attempts = `step boot:...`; fails on `step-failed boot:
//     boot failed...` (the guest reported a failed boot);
//   unlock-bitlocker: the typed `manage-bde -unlock` (`command cmd=unlock`) during that step, ok
//     when rc=0;
//   delete: the typed `del` (`command cmd=del`) during that step on a volume that was not locked
//     (on a locked one it fails by design in both), ok when rc=0.
// Failures that are not the machine's (no technician, escrow down, not at a console) do not count.
void AddStepOutcomes(const std::vector<StepEvent>& events,
                     std::map<config::StepKind, StepFigures>* steps);

// A content hash of an image recipe (every file under images/<name> that goes into the guest —
// not docs (*.md) nor the image's test scripts (*selftest*) — names and bytes, sorted): a
// calibration describes the image as built from exactly this recipe.
Result<std::string> RecipeHash(const config::ImageConfig& image);

// Reads and checks a calibration file against `image`: FailedPrecondition when missing or stale
// (with what to run), InvalidArgument with file:line:column for impossible figures.
Result<Calibration> LoadCalibration(const std::string& path, const config::ImageConfig& image);

// FailedPrecondition, naming both, when `cal` was measured in another way than `scenario` would
// run: on another guest clock than the lab's own (the instruction-counting one, whose figures do
// not depend on the machine's load), or with another race window (a scenario's race_window_ms
// override included). The image's network profiles are in its recipe hash.
Status CheckCalibrationFits(const Calibration& cal, const config::ScenarioConfig& scenario);

// Writes `cal` as YAML, `provenance` as its leading comment lines.
Status SaveCalibration(const Calibration& cal, const std::string& provenance,
                       const std::string& path);

// The calibration file a scenario uses: its `calibration:` key, else
// <playbooks>/calibration/<image>.yaml next to the scenario's folder.
std::string DefaultCalibrationPath(const config::ScenarioConfig& scenario);

}  // namespace chaoslab::sim
