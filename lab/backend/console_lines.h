// Splits a serial console's byte stream into lines for kConsoleLine events. Shared by the QEMU and
// libvirt backends, whose console readers differ only in where the bytes come from.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace chaoslab {

// A line longer than this is delivered in pieces (a guest printing without newlines must not grow
// the buffer without bound).
inline constexpr size_t kMaxConsoleLine = 64 * 1024;

using LineSink = std::function<void(std::string)>;

// Lines out of chunks of console bytes: without the newline, without carriage returns.
class ConsoleLineSplitter {
 public:
  void Feed(std::string_view bytes, const LineSink& emit);
  // The last, unterminated line (at end of file).
  void Flush(const LineSink& emit);

 private:
  std::string pending_;
};

// Reads `fd` until end of file or an error, calling `on_bytes` for every chunk read. Blocks.
void ReadConsoleChunks(int fd, const std::function<void(std::string_view)>& on_bytes);

// Reads `fd` until end of file or an error, calling `emit` for every line without its newline and
// without carriage returns; a last unterminated line is delivered too. Blocks.
void ReadConsoleLines(int fd, const LineSink& emit);

}  // namespace chaoslab
