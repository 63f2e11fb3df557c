// chaoslab-bde: the host's BitLocker tool (encrypts winsim system disks; see bde_format.h).
//
//   chaoslab-bde encrypt --in PLAIN.img --out ENC.img --recovery-password-out FILE
//                        --tpm-secret-out FILE [--seed TEXT] [--iterations N]
//   chaoslab-bde inspect IMG
//   chaoslab-bde check IMG KEY
//   chaoslab-bde decrypt --in ENC.img --out PLAIN.img KEY
// KEY is one of --recovery-password PW, --recovery-password-file FILE, --tpm-secret HEX,
// --tpm-secret-file FILE. Secret files are written with mode 0600 (replacing what was there).
// Exit codes: 0 ok; 1 the key does not unlock the volume (check, decrypt) or any other failure;
// 2 usage; 3 the image is not encrypted (inspect, check, decrypt).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace chaoslab::bde {

inline constexpr int kToolExitError = 1;
inline constexpr int kToolExitUsage = 2;
inline constexpr int kToolExitNotEncrypted = 3;

// `args` without the program name.
int BdeToolMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace chaoslab::bde
