#include "agents/sensor/channel_tool.h"

#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/sensor_version.h"

namespace chaoslab::content {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

const char kUsage[] =
    "usage: chaoslab-channel make KIND [--version N] -o FILE\n"
    "       chaoslab-channel inspect FILE\n"
    "KIND: good | channel-291 | truncated | zeroed | bad-magic\n";

// `text` with the bytes a terminal could act on (controls, DEL, non-ASCII) as \xNN, and inside
// quotes '"' and '\\' escaped too: a channel file is untrusted input; inspect prints to a terminal.
std::string Printable(std::string_view text, bool in_quotes = false) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (in_quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Runs the interpreter in a child so that a fault (the 7.11 bug) is observed, not suffered.
std::string TryInterpret(const SensorVersion& sensor, const ChannelFile& file) {
  auto notification = IpcNotification::Sample();
  if (!notification.ok()) return "not run: " + notification.status().ToString();
  const pid_t child = fork();
  if (child < 0) return std::string("not run: fork: ") + strerror(errno);
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    _exit(Interpret(sensor, file, *notification).ok() ? 0 : 1);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    return std::string("FAULTS: interpreter killed by ") + strsignal(WTERMSIG(status)) +
           " (bugcheck 0x50 PAGE_FAULT_IN_NONPAGED_AREA in the guest)";
  }
  // It ran cleanly in the child, so it is safe to run here for the details.
  auto outcome = Interpret(sensor, file, *notification);
  if (!outcome.ok()) return "interpreter refuses it, no fault: " + outcome.status().message();
  return "runs: " + std::to_string(outcome->instances_evaluated) + " instances evaluated, " +
         std::to_string(outcome->instances_matched) + " matched the sample notification";
}

int Make(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string kind_name, output;
  uint32_t version = 1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--version" || a == "-o") && i + 1 >= args.size()) {
      err << "chaoslab-channel make: " << a << " needs a value\n" << kUsage;
      return kExitUsage;
    }
    if (a == "--version") {
      const std::string& v = args[++i];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
      if (ec != std::errc() || end != v.data() + v.size() || version > 99999999) {
        err << "chaoslab-channel make: --version " << v << ": expected 0..99999999\n";
        return kExitUsage;
      }
    } else if (a == "-o") {
      output = args[++i];
    } else if (kind_name.empty() && !a.starts_with("-")) {
      kind_name = a;
    } else {
      err << "chaoslab-channel make: unexpected argument '" << a << "'\n" << kUsage;
      return kExitUsage;
    }
  }
  if (kind_name.empty() || output.empty()) {
    err << "chaoslab-channel make: KIND and -o FILE are required\n" << kUsage;
    return kExitUsage;
  }
  auto kind = ParseChannelFileKind(kind_name);
  if (!kind.ok()) {
    err << "chaoslab-channel make: " << kind.status().message() << "\n";
    return kExitUsage;
  }
  const std::string bytes = MakeChannelFile(*kind, version);
  std::ofstream file(output, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) {
    err << "chaoslab-channel make: cannot write " << output << ": " << strerror(errno) << "\n";
    return kExitError;
  }
  out << "wrote " << output << ": " << ChannelFileKindName(*kind) << ", version " << version << ", "
      << bytes.size() << " bytes\n";
  return 0;
}

void PrintInstance(const TemplateInstance& instance, const TemplateType* type, std::ostream& out) {
  size_t wildcards = 0;
  std::ostringstream values;
  for (const Criterion& c : instance.criteria) {
    if (c.wildcard) {
      ++wildcards;
      continue;
    }
    values << "    field " << c.field;
    if (type) values << " (" << type->FieldName(c.field) << ")";
    values << " = \"" << Printable(c.value, /*in_quotes=*/true) << "\"\n";
  }
  out << "  instance " << instance.id << ": " << instance.criteria.size() << " criteria, "
      << wildcards << " wildcards\n"
      << values.str();
}

int Inspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() != 1) {
    err << "chaoslab-channel inspect: expected one FILE\n" << kUsage;
    return kExitUsage;
  }
  const std::string& path = args[0];
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "chaoslab-channel inspect: cannot open " << path << ": " << strerror(errno) << "\n";
    return kExitError;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return InspectBytes(path, buffer.str(), out, TryInterpret);
}

}  // namespace

int InspectBytes(std::string_view path, std::string_view bytes, std::ostream& out,
                 const InterpretFn& interpret) {
  out << "file: " << Printable(path) << " (" << bytes.size() << " bytes)\n";
  const std::string name = std::filesystem::path(path).filename().string();
  if (auto id = ParseChannelFileName(name); id.ok()) {
    out << "name: channel " << id->channel << ", version " << id->content_version << "\n";
  }
  auto file = DecodeChannelFile(bytes);
  if (!file.ok()) {
    out << "decode: " << Printable(file.status().ToString()) << "\n";
    for (const SensorVersion& sensor : AllSensorVersions()) {
      out << "sensor " << sensor.name << ": rejected (corrupt-file)\n";
    }
    return kExitError;
  }
  const TemplateType* type = FindTemplateType(file->template_type);
  out << "format: " << file->format_version << "\nchannel: " << file->channel
      << "\ncontent version: " << file->content_version << "\ntemplate type: 0x" << std::hex
      << std::setw(4) << std::setfill('0') << file->template_type << std::dec;
  if (type) {
    out << " (" << type->name << ", " << type->declared_fields() << " fields)";
  } else {
    out << " (unknown)";
  }
  out << "\ninstances: " << file->instances.size() << "\n";
  for (const TemplateInstance& instance : file->instances) PrintInstance(instance, type, out);
  for (const SensorVersion& sensor : AllSensorVersions()) {
    out << "sensor " << sensor.name << ": ";
    if (auto rejection = CheckContent(sensor, *file)) {
      out << "rejected (" << rejection->reason << ": " << Printable(rejection->detail) << ")\n";
    } else {
      out << "accepted; " << Printable(interpret(sensor, *file)) << "\n";
    }
  }
  return 0;
}

int ChannelToolMain(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  const std::string command = argc >= 2 ? argv[1] : "";
  if (command == "make") return Make(args, out, err);
  if (command == "inspect") return Inspect(args, out, err);
  if (command == "--help" || command == "-h" || command == "help") {
    out << kUsage;
    return 0;
  }
  err << "chaoslab-channel: expected a command: make or inspect\n" << kUsage;
  return kExitUsage;
}

int ChannelToolMain(int argc, char** argv) {
  return ChannelToolMain(argc, argv, std::cout, std::cerr);
}

}  // namespace chaoslab::content
