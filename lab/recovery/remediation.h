// The vendor's automated cloud remediation (config::VendorRemediationConfig) as both drivers
// see it: which hosts their organisation opted in, and whether a boot at scenario time `at`
// hears the quarantine instruction. The VM lab tells the content server (the guest's sensor then
// races it for real); the simulator draws the race from the calibration's `remediation:` figures.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lab/config/config.h"

namespace chaoslab::recovery {

// Whether host `host` (the driver's index; in the simulator within its organisation) of group
// `group` opted in: every host of a listed group, or a draw from its own hash of (seed, host),
// so it does not move any other stream's draws.
inline bool RemediationOptedIn(const config::VendorRemediationConfig& r, uint64_t seed,
                               uint64_t host, std::string_view group) {
  if (!r.enabled) return false;
  if (!r.opted_in_groups.empty()) {
    for (const std::string& g : r.opted_in_groups)
      if (g == group) return true;
    return false;
  }
  if (r.opted_in <= 0) return false;
  if (r.opted_in >= 1) return true;
  // SplitMix64 of the pair.
  uint64_t z = seed ^ (0x6f7074696e000000ULL + host * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < r.opted_in;
}

// Whether the cloud answers an opted-in host's boot at `at` with the quarantine instruction.
inline bool RemediationOffered(const config::VendorRemediationConfig& r, bool opted_in, double at) {
  return r.enabled && opted_in && at >= r.available;
}

}  // namespace chaoslab::recovery
