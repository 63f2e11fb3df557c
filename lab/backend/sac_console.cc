#include "lab/backend/sac_console.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace chaoslab::sac {
namespace {

constexpr char kDriverDir[] = "C:\\Windows\\System32\\drivers\\CrowdStrike\\";
// Back to the SAC channel from any other: Esc Tab 0 (SAC's channel switch keys).
constexpr char kToSacChannel[] = "\x1b\t0";

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// 8 groups of 6 digits, dashes between (what BitLocker shows and manage-bde takes).
bool IsRecoveryPassword(std::string_view pw) {
  if (pw.size() != 55) return false;
  for (size_t i = 0; i < pw.size(); ++i) {
    if (i % 7 == 6 ? pw[i] != '-' : !std::isdigit(static_cast<unsigned char>(pw[i]))) return false;
  }
  return true;
}

// File-name characters only: nothing cmd.exe would read as an operator, quote or variable.
bool IsPlainPattern(std::string_view p) {
  return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '*' || c == '?';
  });
}

// SAC paints with VT100: colour and cursor sequences (ESC [ ... final byte) and carriage returns
// carry nothing the driver reads.
std::string Plain(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      i += 2;
      while (i < bytes.size() && !(bytes[i] >= 0x40 && bytes[i] <= 0x7e)) ++i;
      continue;
    }
    if (c == '\r' || c == '\0') continue;
    out += c;
  }
  return out;
}

struct Match {
  size_t end = std::string::npos;  // one past the match
  std::smatch m;
};

Match Find(const std::string& buf, const std::regex& re) {
  Match r;
  if (std::regex_search(buf, r.m, re)) r.end = static_cast<size_t>(r.m.position(0) + r.m.length(0));
  return r;
}

const std::regex kSacPrompt(R"(SAC>)");
const std::regex kChannel(R"(Channel:\s*(Cmd\d{4}))");
const std::regex kCmdRefused(R"((could not|unable to|failed to|not (yet )?available))",
                             std::regex::icase);
const std::regex kAnyKey(R"(Use any other key to view this channel)");
const std::regex kUsername(R"(Username:)");
const std::regex kDomain(R"(Domain\s*:)");
const std::regex kPassword(R"(Password:)");
const std::regex kLogonFailed(
    R"((Unable to authenticate|logon failure|Invalid username|password is incorrect))",
    std::regex::icase);
// cmd.exe's prompt at the end of what arrived: C:\Windows\system32>
const std::regex kCmdPrompt(R"([A-Za-z]:\\[^\n>]*>[ ]*$)");
const std::regex kRc(R"(chaoslab-rc=(-?\d+))");
const std::regex kNotFound(R"(Could Not Find)", std::regex::icase);
const std::regex kDenied(R"(Access is denied)", std::regex::icase);
const std::regex kRecoveryScreen(R"(BitLocker recovery[\s\S]*recovery key)", std::regex::icase);
const std::regex kKeyWrong(R"((isn't right|is not correct|incorrect|not valid))",
                           std::regex::icase);
const std::regex kBootsOn(R"((SAC started|SAC>|Windows is loading))", std::regex::icase);

}  // namespace

Job EnterSafeModeJob() {
  return {"safe-mode", {"bcdedit /set {default} safeboot minimal"}, true, {}};
}
Job LeaveSafeModeJob() {
  return {"restart", {"bcdedit /deletevalue {default} safeboot"}, true, {}};
}
Job BootToWinREJob() { return {"winre", {"reagentc /boottore"}, true, {}}; }
Job DeleteJob(std::string_view pattern) {
  return {
      "del", {"del /f /q \"" + std::string(kDriverDir) + std::string(pattern) + "\""}, false, {}};
}
Job UnlockJob(std::string_view pw) {
  return {"unlock", {"manage-bde -unlock C: -RecoveryPassword " + std::string(pw)}, false, {}};
}
Job RecoveryScreenJob(std::string_view pw) {
  std::string digits;
  for (char c : pw)
    if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
  return {"unlock", {}, false, digits};
}

Result<Job> TranslateEngineCommand(std::string_view text) {
  std::string t(text);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (IEquals(t, "restart")) return LeaveSafeModeJob();
  if (t.size() > 4 && IEquals(t.substr(0, 4), "del ")) {
    std::string path = t.substr(4);
    if (path.size() >= 2 && (path.front() == '\'' || path.front() == '"') &&
        path.back() == path.front()) {
      path = path.substr(1, path.size() - 2);
    }
    const std::string dir = kDriverDir;
    if (path.size() <= dir.size() || !IEquals(path.substr(0, dir.size()), dir) ||
        !IsPlainPattern(path.substr(dir.size()))) {
      return Status::InvalidArgument("SAC: del takes a file-name pattern in " + dir + ", not '" +
                                     path + "'");
    }
    return DeleteJob(path.substr(dir.size()));
  }
  const std::string unlock = "manage-bde -unlock C: -RecoveryPassword ";
  if (t.size() > unlock.size() && IEquals(t.substr(0, unlock.size()), unlock)) {
    std::string pw = t.substr(unlock.size());
    if (!IsRecoveryPassword(pw)) {
      return Status::InvalidArgument("SAC: not a 48-digit recovery password");
    }
    return UnlockJob(pw);
  }
  return Status::InvalidArgument("SAC: no translation for the console command '" + t + "'");
}

Result<SacDriver::Output> SacDriver::Begin(Job job) {
  if (busy()) return Status::FailedPrecondition("SAC: job '" + job_.name + "' still runs");
  job_ = std::move(job);
  buf_.clear();
  next_command_ = 0;
  rc_ = 0;
  extra_.clear();
  typed_domain_ = typed_user_ = false;
  Output out;
  if (!job_.recovery_key.empty()) {
    state_ = State::kRecoveryScreen;  // the boot manager paints it by itself
  } else {
    state_ = State::kSacPrompt;
    out.send = "\r";  // SAC answers Enter with its prompt
  }
  return out;
}

SacDriver::Output SacDriver::Feed(std::string_view bytes) {
  Output out;
  if (state_ == State::kIdle) return out;
  buf_ += Plain(bytes);
  Step(&out);
  return out;
}

void SacDriver::Finish(Output* out, int rc, const std::string& extra) {
  out->lines.push_back("@@winsim cmd=" + job_.name + " rc=" + std::to_string(rc) + extra +
                       " via=sac");
  state_ = State::kIdle;
  buf_.clear();
}

void SacDriver::TypeNextCommand(Output* out) {
  out->send += job_.commands[next_command_++] + "\r";
  state_ = State::kCommand;
}

void SacDriver::Step(Output* out) {
  // Each state reads what it waits for from the front of the buffer; loop while one consumed
  // something, as the next prompt may already be there.
  while (state_ != State::kIdle && StepOnce(out)) {
  }
}

bool SacDriver::Consume(size_t end) {
  buf_.erase(0, end);
  return true;
}

bool SacDriver::StepOnce(Output* out) {
  switch (state_) {
    case State::kIdle:
      return false;
    case State::kSacPrompt:
      return OnSacPrompt(out);
    case State::kChannelCreated:
      if (Match m = Find(buf_, kChannel); m.end != std::string::npos) {
        out->send += "ch -sn " + m.m[1].str() + "\r";
        state_ = State::kChannelShown;
        return Consume(m.end);
      }
      if (Find(buf_, kCmdRefused).end != std::string::npos)
        Finish(out, 1, " reason=sac-cmd-unavailable");
      return false;
    case State::kChannelShown:
      if (Match m = Find(buf_, kAnyKey); m.end != std::string::npos) {
        out->send += "\r";
        state_ = State::kLogon;
        return Consume(m.end);
      }
      return false;
    case State::kLogon:
      return OnLogon(out);
    case State::kCommand:
      if (Match m = Find(buf_, kCmdPrompt); m.end != std::string::npos) {
        const std::string said = buf_.substr(0, m.end);
        if (std::regex_search(said, kNotFound)) extra_ += " deleted=0";
        if (std::regex_search(said, kDenied)) extra_ += " reason=access-denied";
        out->send += "echo chaoslab-rc=%ERRORLEVEL%\r";
        state_ = State::kErrorLevel;
        return Consume(m.end);
      }
      return false;
    case State::kErrorLevel:
      return OnErrorLevel(out);
    case State::kBackToSac:
      if (Match m = Find(buf_, kSacPrompt); m.end != std::string::npos) {
        out->send += "restart\r";
        Consume(m.end);
        Finish(out, 0, extra_);
        return true;
      }
      return false;
    case State::kRecoveryScreen:
      if (Match m = Find(buf_, kRecoveryScreen); m.end != std::string::npos) {
        out->send += job_.recovery_key + "\r";
        state_ = State::kKeyTyped;
        return Consume(m.end);
      }
      return false;
    case State::kKeyTyped:
      if (Find(buf_, kKeyWrong).end != std::string::npos) {
        Finish(out, 1, " reason=wrong-key");
      } else if (Find(buf_, kBootsOn).end != std::string::npos) {
        Finish(out, 0, "");
      }
      return false;
  }
  return false;
}

bool SacDriver::OnSacPrompt(Output* out) {
  Match m = Find(buf_, kSacPrompt);
  if (m.end == std::string::npos) return false;
  Consume(m.end);
  if (job_.commands.empty()) {  // nothing to run in cmd: straight to restart
    state_ = State::kBackToSac;
    buf_ = "SAC>";
  } else {
    out->send += "cmd\r";
    state_ = State::kChannelCreated;
  }
  return true;
}

bool SacDriver::OnLogon(Output* out) {
  if (Find(buf_, kLogonFailed).end != std::string::npos) {
    out->send += kToSacChannel;
    Finish(out, 1, " reason=logon-failed");
    return false;
  }
  // Whichever prompt came first.
  Match best;
  int which = -1;
  const std::regex* prompts[] = {&kUsername, &kDomain, &kPassword, &kCmdPrompt};
  for (int i = 0; i < 4; ++i) {
    Match m = Find(buf_, *prompts[i]);
    if (m.end != std::string::npos && (which < 0 || m.end < best.end)) {
      best = m;
      which = i;
    }
  }
  if (which < 0) return false;
  Consume(best.end);
  if (which == 0) out->send += cred_.username + "\r";
  if (which == 1) out->send += cred_.domain + "\r";
  if (which == 2) out->send += cred_.password + "\r";
  if (which == 3) TypeNextCommand(out);
  return true;
}

bool SacDriver::OnErrorLevel(Output* out) {
  // The typed line echoes as "echo chaoslab-rc=%ERRORLEVEL%": only digits are the answer.
  Match rc = Find(buf_, kRc);
  if (rc.end == std::string::npos) return false;
  const std::string after = buf_.substr(rc.end);
  std::smatch p;
  if (!std::regex_search(after, p, kCmdPrompt)) return false;
  const int value = std::stoi(rc.m[1].str());
  buf_.erase(0, rc.end + static_cast<size_t>(p.position(0) + p.length(0)));
  if (value != 0 && rc_ == 0) rc_ = value;
  if (rc_ == 0 && next_command_ < job_.commands.size()) {
    TypeNextCommand(out);
  } else if (rc_ == 0 && job_.restart_after) {
    out->send += std::string("exit\r") + kToSacChannel;
    state_ = State::kBackToSac;
  } else {
    out->send += std::string("exit\r") + kToSacChannel;
    Finish(out, rc_, extra_);
  }
  return true;
}

}  // namespace chaoslab::sac
