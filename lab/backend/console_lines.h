// Splits a serial console's byte stream into lines for kConsoleLine events. Shared by the QEMU and
// libvirt backends, whose console readers differ only in where the bytes come from.
#pragma once

#include <functional>
#include <string>

namespace chaoslab {

// A line longer than this is delivered in pieces (a guest printing without newlines must not grow
// the buffer without bound).
inline constexpr size_t kMaxConsoleLine = 64 * 1024;

// Reads `fd` until end of file or an error, calling `emit` for every line without its newline and
// without carriage returns; a last unterminated line is delivered too. Blocks.
void ReadConsoleLines(int fd, const std::function<void(std::string)>& emit);

}  // namespace chaoslab
