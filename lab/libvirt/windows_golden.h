// The golden Windows image that images/windows/build.sh makes from a user's ISO, as a run uses it:
// every host of an image of kind windows is a clone of it (docs/WINDOWS.md). The folder holds
//   windows.qcow2          the golden system disk; each host runs on a qcow2 overlay over it
//   OVMF_VARS.fd           its UEFI variable store; each host gets a copy as its NVRAM
//   tpm/                   its swtpm state (BitLocker's TPM protector is sealed to it); each host's
//                          swtpm runs on a copy, so the clone unlocks as the golden machine did
//   recovery-password.txt  the BitLocker recovery password the build escrowed
//   admin-password.txt     the local administrator's password (SAC's cmd channel logs on with it)
//   image.json             how it was built (secure_boot decides the firmware)
// Clones of one golden image share its BitLocker recovery password and TPM identity: a real fleet
// has one per machine. The lab cannot re-key an image it cannot boot here.
#pragma once

#include <string>

#include "lab/common/status.h"

namespace chaoslab::libvirt {

struct WindowsGolden {
  std::string dir;                // absolute
  std::string disk;               // <dir>/windows.qcow2
  std::string ovmf_vars;          // <dir>/OVMF_VARS.fd
  std::string tpm_state;          // <dir>/tpm
  std::string recovery_password;  // <dir>/recovery-password.txt
  std::string admin_password;     // <dir>/admin-password.txt
  bool secure_boot = true;        // image.json "secure_boot" (absent: true, build.sh's default)
  // The firmware that goes with the variable store (Debian's ovmf package).
  std::string ovmf_code() const;
  std::string ovmf_vars_template() const;
};

// $CHAOSLAB_WINDOWS_DIR (for a build.sh --out elsewhere), else
// ${CHAOSLAB_CACHE_DIR:-$HOME/.cache/chaoslab}/windows, where build.sh puts it by default.
std::string DefaultWindowsGoldenDir();

// Checks that `dir` holds a golden image: FailedPrecondition naming the first missing or unusable
// path and the command that builds it. Reads nothing but file types and image.json.
Result<WindowsGolden> FindWindowsGolden(const std::string& dir);

}  // namespace chaoslab::libvirt
