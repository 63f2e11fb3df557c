// A dm-crypt mapping made with the device-mapper ioctls directly (the guest has neither cryptsetup
// nor dmsetup nor udev). Used by the guest's `bde unlock`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::bde {

struct CryptTarget {
  std::string name;  // the mapping: /dev/mapper/<name>; [A-Za-z0-9_-], at most 127 characters
  uint32_t backing_major = 0;  // the encrypted block device
  uint32_t backing_minor = 0;
  uint64_t offset_sectors = 0;  // where the data area starts on it
  uint64_t sectors = 0;         // length of the data area
  std::string cipher;           // "aes-xts-plain64"
  std::span<const uint8_t> key;
};

// The crypt target's parameters: "<cipher> <hex key> 0 <major>:<minor> <offset>" (IV offset 0:
// the IV counts sectors from the start of the mapping, which is how chaoslab-bde encrypted it).
std::string CryptTableParams(const CryptTarget& target);

// The DM_TABLE_LOAD argument: struct dm_ioctl, one dm_target_spec, the parameters (NUL-terminated,
// padded to 8 bytes). Holds the key: wipe it after use.
std::vector<uint8_t> BuildTableLoad(const CryptTarget& target);

// Creates and activates the mapping through `<dev_dir>/mapper/control` and makes the block node
// `<dev_dir>/mapper/<name>` (returned). On failure nothing is left behind. InvalidArgument for a
// bad name, IoError (with the ioctl's name and errno) otherwise.
Result<std::string> ActivateCryptMapping(const CryptTarget& target,
                                         const std::string& dev_dir = "/dev");

// Removes the mapping and its node (used by `bde lock`). NotFound if there is no such mapping.
Status RemoveMapping(const std::string& name, const std::string& dev_dir = "/dev");

}  // namespace chaoslab::bde
