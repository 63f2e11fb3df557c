// chaoslab-channel: make and inspect channel files. The logic lives here so that the main
// `chaoslab` CLI can offer the same subcommands.
//
//   chaoslab-channel make KIND [--version N] -o FILE    KIND: good channel-291 truncated zeroed
//   bad-magic chaoslab-channel inspect FILE                       header, instances, verdict of
//   every sensor
//
// Exit codes: 0 done; 1 the file cannot be written, read or decoded; 2 bad command line.
#pragma once

#include <iosfwd>

namespace chaoslab::content {

// argv[0] is the program name. Writes to `out` and `err`.
int ChannelToolMain(int argc, char** argv, std::ostream& out, std::ostream& err);
// Same, on std::cout / std::cerr.
int ChannelToolMain(int argc, char** argv);

}  // namespace chaoslab::content
