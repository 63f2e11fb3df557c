// chaoslab-channel: make and inspect channel files. The logic lives here so that the main
// `chaoslab` CLI can offer the same subcommands.
//
//   chaoslab-channel make KIND [--version N] -o FILE    KIND: good channel-291 truncated zeroed
//   bad-magic chaoslab-channel inspect FILE                       header, instances, verdict of
//   every sensor
//
// Exit codes: 0 done; 1 the file cannot be written, read or decoded; 2 bad command line.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/sensor_version.h"

namespace chaoslab::content {

// argv[0] is the program name. Writes to `out` and `err`.
int ChannelToolMain(int argc, char** argv, std::ostream& out, std::ostream& err);
// Same, on std::cout / std::cerr.
int ChannelToolMain(int argc, char** argv);

// What running `sensor`'s interpreter on an accepted `file` does, as one line ("runs: ...",
// "FAULTS: ..."). The tool runs it in a child process, so that a fault is observed, not suffered.
using InterpretFn =
    std::function<std::string(const SensorVersion& sensor, const ChannelFile& file)>;

// `inspect` on the bytes of a file at `path`, printing to `out`; returns its exit code (0, or 1
// when the bytes do not decode). Bytes from the file (criterion values, names) are printed
// escaped, never raw. The lab-side decoder that lab/fuzz drives.
int InspectBytes(std::string_view path, std::string_view bytes, std::ostream& out,
                 const InterpretFn& interpret);

}  // namespace chaoslab::content
