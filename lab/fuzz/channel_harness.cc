// chaoslab-channel inspect, the lab's view of a channel file, over any bytes.
#include <exception>
#include <sstream>

#include "agents/sensor/channel_tool.h"
#include "lab/fuzz/lab_fuzz.h"

namespace chaoslab::fuzz {
namespace {

// The tool runs the interpreter in a child (the 7.11 one faults by design); the sensor's own
// fuzzers (agents/sensor/fuzz) cover the interpreters, so this one only says it did not run.
std::string NotRun(const content::SensorVersion&, const content::ChannelFile&) {
  return "not run (lab-fuzz)";
}

}  // namespace

void CheckChannel(std::string_view bytes, Stats& stats) {
  std::ostringstream out;
  int code = -1;
  try {
    code = content::InspectBytes("/fuzz/input.sys", bytes, out, NotRun);
    // The input as a file name too (a manifest or a folder listing names the file).
    if (content::ParseChannelFileName(bytes).ok()) ++stats["names"];
  } catch (const std::exception& e) {
    Fail("inspect threw", e.what());
  }
  if (code != 0 && code != 1) Fail("inspect", "exit code " + std::to_string(code));
  ++stats[code == 0 ? "decoded" : "undecodable"];
  // The report is text a terminal may show: printable ASCII and newlines, whatever the file held.
  const std::string text = out.str();
  for (char c : text) {
    if (c != '\n' && (c < 0x20 || c > 0x7e)) Fail("inspect", "unescaped byte in the report");
  }
  if (text.find(code == 0 ? "\ninstances: " : "\ndecode: ") == std::string::npos) {
    Fail("inspect",
         "the report lacks its " + std::string(code == 0 ? "instances" : "decode") + " line");
  }
}

}  // namespace chaoslab::fuzz
