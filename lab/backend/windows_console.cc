#include "lab/backend/windows_console.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace chaoslab {
namespace {

// What a screen says, as text: cursor moves and screen clears (ESC [ ... H/f/J) become line
// breaks, other escapes (colours, the menu's highlight) and carriage returns go.
std::string ScreenText(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      i += 2;
      while (i < bytes.size() && !(bytes[i] >= 0x40 && bytes[i] <= 0x7e)) ++i;
      if (i < bytes.size() && (bytes[i] == 'H' || bytes[i] == 'f' || bytes[i] == 'J')) out += '\n';
      continue;
    }
    if (c == '\r' || c == '\0') continue;
    out += c;
  }
  return out;
}

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t") - b + 1));
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The engine's name for a typed line, as winsim's console names its result
// (docs/GUEST-PROTOCOL.md).
std::string CommandName(std::string_view line) {
  std::string first = Lower(std::string(line.substr(0, line.find(' '))));
  if (first == "manage-bde")
    return line.find("-unlock") != std::string_view::npos ? "unlock" : "status";
  if (first == "erase") return "del";
  if (first == "reboot") return "restart";
  const bool plain = !first.empty() && std::all_of(first.begin(), first.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  return plain ? first : "other";
}

constexpr char kF8[] =
    "\x1b"
    "8";  // VT100+ function key 8, as EMS reads it
constexpr char kDown[] = "\x1b[B";
constexpr size_t kKeepText = 16 * 1024;  // screen text kept while waiting for a screen

const std::regex kBootMenu(R"(Choose an operating system to start|To specify an advanced option)",
                           std::regex::icase);
const std::regex kAdvancedHeader(R"(Advanced Boot Options)", std::regex::icase);
// The legacy menu's last entry: once it is painted, the whole list is.
const std::regex kMenuEnd(R"(Start Windows Normally)", std::regex::icase);
// Painted in full: its key ID (shown below the input field) or its closing hints.
const std::regex kRecoveryScreen(
    R"(BitLocker recovery[\s\S]*(Recovery key ID:?\s*[0-9A-Fa-f]{8}|Press Enter to continue|Esc for more recovery options))",
    std::regex::icase);
const std::regex kKeyId(R"(Recovery key ID:?\s*([0-9A-Fa-f]{8}))");
const std::regex kCmdAvailable(R"(The CMD command is now available)", std::regex::icase);

}  // namespace

std::string WindowsConsole::ConsoleLine(std::string_view bitlocker) const {
  // After a normal boot's recovery screen winsim's console is WinRE's; so is this one's.
  const std::string env = target_ == BootTarget::kSafeMode ? "safe" : "winre";
  return "@@winsim phase=console env=" + env + " bitlocker=" + std::string(bitlocker);
}

void WindowsConsole::Reply(Output* out, const std::string& name, const std::string& rest) {
  out->lines.push_back("@@winsim cmd=" + name + " " + rest);
}

WindowsConsole::Output WindowsConsole::OnBoot(BootTarget target) {
  Output out;
  if (!running_.empty()) Reply(&out, running_, "rc=1 reason=rebooted via=sac");
  for (const Pending& p : queue_) Reply(&out, p.name, "rc=1 reason=rebooted via=sac");
  queue_.clear();
  running_.clear();
  sac_ = sac::SacDriver(cred_);
  stage_ = Stage::kBootMenu;
  target_ = target;
  menu_chosen_ = false;
  buf_.clear();
  partial_escape_.clear();
  recovery_screen_.clear();
  return out;
}

WindowsConsole::Output WindowsConsole::Type(std::string_view text) {
  Output out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string line = Trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty()) continue;
    const std::string name = CommandName(line);
    if (stage_ == Stage::kStuck) {
      // Nothing on this screen takes a command: say so rather than wait for a SAC that never
      // comes.
      Reply(&out, name, "rc=1 reason=no-console via=ems");
      continue;
    }
    if (stage_ == Stage::kRecoveryKey || stage_ == Stage::kKeyTyped) {
      // Only the key can be typed at BitLocker's recovery screen; C: is locked for the rest.
      if (name != "unlock" || stage_ == Stage::kKeyTyped) {
        Reply(
            &out, name,
            name == "del" ? "rc=1 reason=locked deleted=0 via=ems" : "rc=1 reason=locked via=ems");
        continue;
      }
      auto job = sac::TranslateEngineCommand(line);
      if (!job.ok()) {
        Reply(&out, name, "rc=1 reason=syntax via=ems");
        continue;
      }
      const std::string pw =
          job->commands.empty() ? "" : job->commands[0].substr(job->commands[0].rfind(' ') + 1);
      auto begun = sac_.Begin(sac::RecoveryScreenJob(pw));
      if (!begun.ok()) {
        Reply(&out, name, "rc=1 reason=busy via=ems");
        continue;
      }
      running_ = name;
      stage_ = Stage::kKeyTyped;
      // The screen is already up: show it to the driver again.
      auto typed = sac_.Feed(recovery_screen_);
      out.send += begun->send + typed.send;
      continue;
    }
    Result<sac::Job> job = name == "restart" && menu_chosen_
                               // Safe mode came from the one-time menu choice: nothing in BCD
                               // to undo, just restart.
                               ? Result<sac::Job>(sac::Job{"restart", {}, true, {}})
                               : sac::TranslateEngineCommand(line);
    if (!job.ok()) {
      Reply(&out, name, "rc=1 reason=unsupported via=sac");
      continue;
    }
    queue_.push_back({name, std::move(*job)});
  }
  if (stage_ == Stage::kSacReady) StartNextJob(&out);
  return out;
}

void WindowsConsole::StartNextJob(Output* out) {
  while (running_.empty() && !queue_.empty()) {
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    auto begun = sac_.Begin(std::move(*next.job));
    if (!begun.ok()) {
      Reply(out, next.name, "rc=1 reason=busy via=sac");
      continue;
    }
    running_ = next.name;
    out->send += begun->send;
  }
}

WindowsConsole::Output WindowsConsole::Feed(std::string_view chunk) {
  Output out;
  // An escape sequence cut by the read ends is held back until it is whole: half of one would
  // show as text ("[2J") and break the screens' parsing.
  std::string data = std::move(partial_escape_) + std::string(chunk);
  partial_escape_.clear();
  if (const size_t esc = data.rfind('\x1b'); esc != std::string::npos) {
    size_t end = esc + 1;
    if (end < data.size() && data[end] == '[') {
      ++end;
      while (end < data.size() && !(data[end] >= 0x40 && data[end] <= 0x7e)) ++end;
    }
    if (end >= data.size() && data.size() - esc < 32) {
      partial_escape_ = data.substr(esc);
      data.resize(esc);
    }
  }
  const std::string_view bytes = data;
  if (sac_.busy()) {
    sac::SacDriver::Output o = sac_.Feed(bytes);
    out.send += o.send;
    if (!o.lines.empty()) {
      out.lines.insert(out.lines.end(), o.lines.begin(), o.lines.end());
      running_.clear();
      if (stage_ == Stage::kKeyTyped) {
        // The key worked (Windows goes on loading) or the screen asks again.
        const bool ok = o.lines.back().find(" rc=0") != std::string::npos;
        stage_ = ok ? Stage::kLoading : Stage::kRecoveryKey;
        if (ok) buf_.clear();
      }
    }
  }
  buf_ += ScreenText(bytes);
  Step(&out);
  if (stage_ == Stage::kSacReady) StartNextJob(&out);
  if (buf_.size() > kKeepText) buf_.erase(0, buf_.size() - kKeepText);
  return out;
}

void WindowsConsole::Step(Output* out) {
  std::smatch m;
  const bool recovery = target_ == BootTarget::kSafeMode || target_ == BootTarget::kWinRE;
  // A screen that may come before SAC whatever was chosen.
  if ((stage_ == Stage::kBootMenu || stage_ == Stage::kAdvancedMenu || stage_ == Stage::kLoading) &&
      OnRecoveryScreen(out))
    return;
  if (stage_ == Stage::kBootMenu && std::regex_search(buf_, m, kBootMenu)) {
    buf_.erase(0, static_cast<size_t>(m.position(0) + m.length(0)));
    if (recovery) {
      out->send += kF8;
      stage_ = Stage::kAdvancedMenu;
    } else {
      out->send += "\r";  // no need to sit out the menu's timeout
      stage_ = Stage::kLoading;
    }
  }
  if (stage_ == Stage::kAdvancedMenu) {
    ChooseFromAdvancedMenu(out);
    return;
  }
  if ((stage_ == Stage::kLoading || stage_ == Stage::kBootMenu) &&
      std::regex_search(buf_, m, kCmdAvailable)) {
    buf_.erase(0, static_cast<size_t>(m.position(0) + m.length(0)));
    const bool skipped_menu = stage_ == Stage::kBootMenu;
    stage_ = Stage::kSacReady;
    if (recovery && skipped_menu) {
      // Windows came up without offering the menu (bootmenupolicy not legacy): not where the
      // runbook wanted to be.
      out->lines.push_back("@@winsim boot-failed reason=no-boot-menu via=ems");
    } else if (recovery) {
      out->lines.push_back(ConsoleLine("unlocked") + " via=sac");
    }
  }
}

// BitLocker's recovery screen: the host waits for its key (`locked`).
bool WindowsConsole::OnRecoveryScreen(Output* out) {
  std::smatch m;
  if (!std::regex_search(buf_, m, kRecoveryScreen)) return false;
  recovery_screen_ = buf_.substr(0, static_cast<size_t>(m.position(0) + m.length(0)));
  std::smatch id;
  std::string key_id;
  const std::string after = buf_.substr(static_cast<size_t>(m.position(0)));
  if (std::regex_search(after, id, kKeyId)) key_id = " key-id=" + id[1].str();
  buf_.clear();
  stage_ = Stage::kRecoveryKey;
  out->lines.push_back("@@winsim phase=bitlocker-recovery reason=tpm-refused" + key_id +
                       " via=ems");
  out->lines.push_back(ConsoleLine("locked") + " via=ems");
  return true;
}

// The F8 menu, once painted whole: move to the entry the boot target wants and take it.
void WindowsConsole::ChooseFromAdvancedMenu(Output* out) {
  std::smatch head, end;
  if (!std::regex_search(buf_, head, kAdvancedHeader)) return;
  const std::string menu = buf_.substr(static_cast<size_t>(head.position(0) + head.length(0)));
  if (!std::regex_search(menu, end, kMenuEnd)) return;
  // The entries in painted order; the first is highlighted.
  static const char* const kEntries[] = {
      "repair your computer",
      "safe mode",
      "safe mode with networking",
      "safe mode with command prompt",
      "enable boot logging",
      "enable low-resolution video",
      "last known good configuration (advanced)",
      "debugging mode",
      "disable automatic restart on system failure",
      "disable driver signature enforcement",
      "disable early launch anti-malware driver",
      "start windows normally",
  };
  std::vector<std::string> shown;
  size_t pos = 0;
  const std::string text = menu.substr(0, static_cast<size_t>(end.position(0) + end.length(0)));
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string entry = Lower(Trim(text.substr(pos, nl - pos)));
    pos = nl + 1;
    if (std::find(std::begin(kEntries), std::end(kEntries), entry) != std::end(kEntries))
      shown.push_back(entry);
  }
  const std::string want = target_ == BootTarget::kWinRE ? "repair your computer" : "safe mode";
  auto it = std::find(shown.begin(), shown.end(), want);
  buf_.clear();
  if (it == shown.end()) {
    stage_ = Stage::kStuck;
    out->lines.push_back(std::string("@@winsim boot-failed reason=no-menu-entry entry=") +
                         (target_ == BootTarget::kWinRE ? "winre" : "safe") + " via=ems");
    return;
  }
  for (auto i = shown.begin(); i != it; ++i) out->send += kDown;
  out->send += "\r";
  menu_chosen_ = true;
  stage_ = Stage::kLoading;
}

}  // namespace chaoslab
