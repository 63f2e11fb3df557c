// A game day end to end, as people play it: `chaoslab gameday` on two real QEMU guests (one with
// BitLocker), driven in headless Chromium (Debian's /usr/bin/chromium over the DevTools protocol,
// private profile, loopback only). The instructor presses Start; the trainee watches the hosts
// reach boot-loop, opens the BitLocker host's console, picks Safe Mode from the boot menu, reads
// the recovery password off the key-escrow page, types a wrong one and then the right one, deletes
// the channel file and restarts after the vendor's revert, and sees the host turn "recovered". The
// instructor asks for an ETA, takes the key escrow down and ends the exercise; the debrief names
// the wrong password. Requests without the token are refused; a trainee cannot reach instructor
// actions; every action is in the journal. Screenshots go to <build>/test-artifacts/gameday/.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/lab_harness.h"
#include "tests/integration/loopback_http.h"

namespace chaoslab::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

using Reply = HttpReply;

Reply Request(int port, http::verb verb, const std::string& target, const std::string& body = "") {
  return LoopbackRequest(port, verb, target, body);
}

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int value = 0, bits = -8;
  for (char c : in) {
    size_t d = kAlphabet.find(c);
    if (d == std::string::npos) continue;  // '=' and line breaks
    value = (value << 6) + static_cast<int>(d);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((value >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

// Headless Chromium with one page, driven over the DevTools protocol (a WebSocket on loopback).
class Chromium {
 public:
  explicit Chromium(const fs::path& dir) : dir_(dir) {}
  ~Chromium() { Stop(); }

  bool Start() {
    fs::create_directories(dir_ / "profile");
    pid_ = fork();
    if (pid_ == 0) {
      freopen((dir_ / "chromium.log").c_str(), "w", stderr);
      freopen("/dev/null", "w", stdout);
      const std::string profile = "--user-data-dir=" + (dir_ / "profile").string();
      execl("/usr/bin/chromium", "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            profile.c_str(), "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", "--window-size=1280,1000",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Chromium writes the port it chose into the profile.
    const fs::path port_file = dir_ / "profile" / "DevToolsActivePort";
    int port = 0;
    for (int i = 0; i < 300 && !port; ++i) {
      std::ifstream in(port_file);
      if (!(in >> port)) port = 0;
      if (!port) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!port) return false;
    Reply list = Request(port, http::verb::get, "/json/list");
    json targets = json::parse(list.body, nullptr, false);
    std::string ws_url;
    for (const auto& t : targets)
      if (t.value("type", "") == "page") ws_url = t.value("webSocketDebuggerUrl", "");
    std::smatch m;
    if (!std::regex_search(ws_url, m, std::regex(R"(ws://[^/]+(/devtools/page/.+))"))) return false;
    ws_ = std::make_unique<websocket::stream<beast::tcp_stream>>(io_);
    beast::get_lowest_layer(*ws_).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    ws_->handshake("127.0.0.1:" + std::to_string(port), m[1].str());
    ws_->read_message_max(64 << 20);
    return Call("Page.enable").is_object();
  }

  void Stop() {
    ws_.reset();
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 50 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  // One DevTools command; its result (events in between are skipped).
  json Call(const std::string& method, json params = json::object()) {
    const int id = ++next_id_;
    ws_->text(true);
    ws_->write(asio::buffer(json{{"id", id}, {"method", method}, {"params", params}}.dump()));
    while (true) {
      beast::flat_buffer buf;
      beast::get_lowest_layer(*ws_).expires_after(std::chrono::seconds(60));
      ws_->read(buf);
      json msg = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
      if (msg.value("id", 0) == id) return msg.contains("result") ? msg["result"] : msg;
    }
  }

  void Navigate(const std::string& url) {
    Call("Page.navigate", {{"url", url}});
    WaitFor("document.readyState === 'complete' && document.body.dataset.ws === 'open'",
            std::chrono::seconds(30));
  }

  // A JavaScript expression's value (promises awaited).
  json Eval(const std::string& expression) {
    json r = Call("Runtime.evaluate",
                  {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    return r.contains("result") && r["result"].contains("value") ? r["result"]["value"] : json();
  }

  // Polls `expression` until it is truthy; false on timeout.
  bool WaitFor(const std::string& expression, std::chrono::seconds timeout) {
    const auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      json v = Eval("!!(" + expression + ")");
      if (v.is_boolean() && v.get<bool>()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    return false;
  }

  // Types a line into the focused xterm.js terminal as a person would: text, then Enter.
  void TypeLine(const std::string& text) {
    Eval("document.querySelector('#console .xterm-helper-textarea').focus()");
    Call("Input.insertText", {{"text", text}});
    json enter = {{"type", "keyDown"},
                  {"key", "Enter"},
                  {"code", "Enter"},
                  {"text", "\r"},
                  {"windowsVirtualKeyCode", 13},
                  {"nativeVirtualKeyCode", 13}};
    Call("Input.dispatchKeyEvent", enter);
    enter["type"] = "keyUp";
    enter.erase("text");
    Call("Input.dispatchKeyEvent", enter);
  }

  bool Screenshot(const fs::path& file) {
    json r = Call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}});
    if (!r.contains("data")) return false;
    std::ofstream(file, std::ios::binary) << Base64Decode(r["data"].get<std::string>());
    return fs::file_size(file) > 1000;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  asio::io_context io_;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws_;
  int next_id_ = 0;
};

fs::path Artefacts() {
  const char* build = std::getenv("CHAOSLAB_BUILD_DIR");
  fs::path dir = fs::path(build && *build ? build : ".") / "test-artifacts" / "gameday";
  fs::create_directories(dir);
  return dir;
}

// Two workstations on a slow VPN link (they lose the reboot race, so the trainee's fix is what
// recovers them), one with BitLocker; one technician; the escrow is its own (healthy) server.
constexpr const char* kSetup = R"(name: gameday-e2e
description: Two VPN workstations, one BitLocker-encrypted, one technician.
image: winsim
sites:
  - name: hq
    technicians: 1
groups:
  - name: ws-bl
    role: workstation
    count: 1
    sensor: "7.11"
    bitlocker: true
    network: vpn
  - name: ws
    role: workstation
    count: 1
    sensor: "7.11"
    network: vpn
key_escrow:
  lookup: {uniform: [1m, 2m]}
services:
  - name: check-in
    needs:
      - {group: ws, at_least: 1}
      - {group: ws-bl, at_least: 1}
)";

std::string Terminal() { return "document.querySelector('#console .xterm-rows').textContent"; }

TEST(GamedayE2eTest, TraineesRecoverABitLockerHostByTypingInTheBrowser) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  ASSERT_EQ(access("/usr/bin/chromium", X_OK), 0) << "chromium missing: run .ci/setup-debian";
  const auto t0 = Clock::now();
  const fs::path setup = lab.dir() / "gameday-e2e.yaml";
  std::ofstream(setup) << kSetup;
  pid_t pid = lab.Start({"gameday", lab.scenario("channel-291"), "--setup", setup.string(),
                         "--lead", "15", "--revert-after", "50", "--max-booting", "2"});
  ASSERT_TRUE(lab.WaitForStderr(pid, "(instructor)", std::chrono::seconds(60)))
      << lab.StderrOf(pid);
  const std::string err = lab.StderrOf(pid);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      err, m,
      std::regex(R"(gameday: http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]{32}) \(trainee\))")))
      << err;
  const int port = std::stoi(m[1]);
  const std::string trainee = m[2];
  ASSERT_TRUE(std::regex_search(
      err, m,
      std::regex(R"(gameday: http://127\.0\.0\.1:\d+/\?token=([0-9a-f]{32}) \(instructor\))")))
      << err;
  const std::string instructor = m[1];
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  // Access: nothing without the token; a trainee cannot act as the instructor.
  EXPECT_EQ(Request(port, http::verb::get, "/").status, http::status::unauthorized);
  EXPECT_EQ(Request(port, http::verb::get, "/api/escrow/key?host=ws-bl-01").status,
            http::status::unauthorized);
  EXPECT_EQ(Request(port, http::verb::post, "/api/action", R"({"kind":"start"})").status,
            http::status::unauthorized);
  EXPECT_EQ(
      Request(port, http::verb::post, "/api/action?token=" + trainee, R"({"kind":"start"})").status,
      http::status::forbidden);
  EXPECT_EQ(
      Request(port, http::verb::post, "/api/action?token=" + trainee, R"({"kind":"escrow-down"})")
          .status,
      http::status::forbidden);
  EXPECT_EQ(Request(port, http::verb::get, "/api/instructor?token=" + trainee).status,
            http::status::forbidden);

  const fs::path out = Artefacts();
  Chromium chrome(lab.dir() / "chromium");
  ASSERT_TRUE(chrome.Start()) << "DevTools did not come up";

  // The instructor starts the exercise.
  chrome.Navigate(base + "/?token=" + instructor);
  ASSERT_TRUE(chrome.WaitFor("!document.getElementById('instructor-panel').hidden",
                             std::chrono::seconds(10)));
  chrome.Eval("document.querySelector('[data-action=start]').click()");
  ASSERT_TRUE(chrome.WaitFor("document.body.dataset.phase === 'running'", std::chrono::seconds(30)))
      << lab.StderrOf(pid);

  // The trainee's page: no instructor controls; the exposed hosts boot-loop by themselves.
  chrome.Navigate(base + "/?token=" + trainee);
  EXPECT_EQ(chrome.Eval("document.body.dataset.role"), "trainee");
  EXPECT_EQ(chrome.Eval("document.getElementById('instructor-panel').hidden"), true);
  ASSERT_TRUE(
      chrome.WaitFor("document.querySelector('.host[data-host=\"ws-bl-01\"]')"
                     "?.dataset.bootLooped === 'true'",
                     std::chrono::seconds(150)))
      << lab.StderrOf(pid);
  const double to_boot_loop_s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_TRUE(chrome.Screenshot(out / "gameday-boot-loop.png"));

  // The console: the blue screen is there; Safe Mode from the boot menu.
  chrome.Eval("document.querySelector('.host[data-host=\"ws-bl-01\"]').click()");
  ASSERT_TRUE(
      chrome.WaitFor("document.body.dataset.consoleWs === 'open'", std::chrono::seconds(20)));
  EXPECT_TRUE(chrome.WaitFor(Terminal() + ".includes('PAGE_FAULT_IN_NONPAGED_AREA')",
                             std::chrono::seconds(20)));
  chrome.Eval("document.querySelector('[data-boot=\"safe-mode\"]').click()");
  ASSERT_TRUE(chrome.WaitFor(Terminal() + ".includes('env=safe')", std::chrono::seconds(90)))
      << chrome.Eval(Terminal());
  EXPECT_EQ(chrome.Eval("document.querySelector('.host[data-host=\"ws-bl-01\"]').dataset.state"),
            "remediating");

  // The recovery password from the lab's key-escrow page.
  chrome.Eval("document.getElementById('escrow-host').value = 'ws-bl-01'");
  chrome.Eval("document.querySelector('#escrow-form button').click()");
  ASSERT_TRUE(chrome.WaitFor("document.body.dataset.escrow === 'ok'", std::chrono::seconds(10)));
  const std::string password =
      chrome.Eval("document.getElementById('escrow-password').textContent");
  ASSERT_TRUE(std::regex_match(password, std::regex(R"((\d{6}-){7}\d{6})"))) << password;

  // A typo first (the debrief counts it), then the real password, the delete.
  std::string wrong = password;
  wrong[0] = wrong[0] == '1' ? '2' : '1';
  chrome.TypeLine("manage-bde -unlock C: -RecoveryPassword " + wrong);
  ASSERT_TRUE(chrome.WaitFor(Terminal() + ".includes('bad-password')", std::chrono::seconds(60)))
      << chrome.Eval(Terminal());
  chrome.TypeLine("manage-bde -unlock C: -RecoveryPassword " + password);
  ASSERT_TRUE(chrome.WaitFor(Terminal() + ".includes('cmd=unlock rc=0')", std::chrono::seconds(60)))
      << chrome.Eval(Terminal());
  chrome.TypeLine("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'");
  ASSERT_TRUE(chrome.WaitFor(Terminal() + ".includes('cmd=del rc=0')", std::chrono::seconds(60)))
      << chrome.Eval(Terminal());
  EXPECT_TRUE(chrome.Screenshot(out / "gameday-console.png"));

  // Restart once the vendor reverted (before, it would fetch the bad file again): recovered.
  ASSERT_TRUE(chrome.WaitFor("document.querySelector('#timeline li[data-kind=\"revert\"]')",
                             std::chrono::seconds(90)));
  chrome.TypeLine("restart");
  ASSERT_TRUE(
      chrome.WaitFor("document.querySelector('.host[data-host=\"ws-bl-01\"]')"
                     ".dataset.state === 'recovered'",
                     std::chrono::seconds(120)))
      << chrome.Eval(Terminal()) << lab.StderrOf(pid);
  const double to_recovered_s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(chrome.Eval("Number(document.getElementById('keys-fetched').dataset.keys)").get<int>(),
            1);
  EXPECT_TRUE(chrome.Screenshot(out / "gameday-recovered.png"));

  // The instructor: an executive's question (a trainee answers it), the escrow goes down.
  chrome.Navigate(base + "/?token=" + instructor);
  chrome.Eval("document.querySelector('#eta-ask button').click()");
  ASSERT_TRUE(chrome.WaitFor("!document.getElementById('eta').hidden", std::chrono::seconds(10)));
  EXPECT_EQ(Request(port, http::verb::post, "/api/action?token=" + trainee,
                    R"({"kind":"eta-answer","detail":"all desks by 06:30"})")
                .status,
            http::status::ok);
  EXPECT_TRUE(chrome.WaitFor("document.getElementById('eta-answers').textContent.includes('06:30')",
                             std::chrono::seconds(10)));
  chrome.Eval("document.querySelector('[data-action=\"escrow-down\"]').click()");
  ASSERT_TRUE(chrome.WaitFor("document.getElementById('escrow-chip')?.textContent === 'down'",
                             std::chrono::seconds(20)));
  EXPECT_EQ(Request(port, http::verb::get, "/api/escrow/key?host=ws-bl-01&token=" + trainee).status,
            http::status::service_unavailable);

  // The end, and the debrief: the team's curve against the automated runbook, the mistake.
  chrome.Eval("document.querySelector('[data-action=\"end\"]').click()");
  ASSERT_TRUE(chrome.WaitFor("document.body.dataset.debrief === 'shown'", std::chrono::seconds(90)))
      << lab.StderrOf(pid);
  EXPECT_TRUE(
      chrome.WaitFor("document.querySelector('#debrief-mistakes li[data-kind=\"wrong-password\"]')",
                     std::chrono::seconds(5)));
  EXPECT_NE(chrome.Eval("document.getElementById('debrief-how').textContent")
                .get<std::string>()
                .find("simulator"),
            std::string::npos);
  EXPECT_TRUE(chrome.Screenshot(out / "gameday-debrief.png"));
  Reply debrief = Request(port, http::verb::get, "/api/debrief?token=" + trainee);
  ASSERT_EQ(debrief.status, http::status::ok);
  json d = json::parse(debrief.body);
  EXPECT_TRUE(d["baseline"].contains("curve")) << d["baseline"].dump();
  chrome.Stop();

  kill(pid, SIGTERM);
  EXPECT_EQ(lab.Wait(pid, std::chrono::seconds(60)), 0) << lab.StderrOf(pid);
  const std::string run_id = d["run_id"];
  auto actions = RunProcess({"sqlite3", lab.journal(),
                             "SELECT role || '|' || kind || '|' || host_id || '|' || detail FROM "
                             "actions WHERE run_id = '" +
                                 run_id + "' ORDER BY seq"});
  ASSERT_TRUE(actions.ok());
  const std::string& a = actions->out;
  EXPECT_NE(a.find("instructor|start||"), std::string::npos) << a;
  EXPECT_NE(a.find("trainee|boot|ws-bl-01|safe-mode"), std::string::npos) << a;
  EXPECT_NE(a.find("trainee|key-fetch|ws-bl-01|"), std::string::npos) << a;
  EXPECT_NE(a.find("trainee|console|ws-bl-01|del 'C:\\Windows"), std::string::npos) << a;
  EXPECT_NE(a.find("trainee|console|ws-bl-01|restart"), std::string::npos) << a;
  EXPECT_NE(a.find("instructor|eta-ask||"), std::string::npos) << a;
  EXPECT_NE(a.find("trainee|eta-answer||all desks by 06:30"), std::string::npos) << a;
  EXPECT_NE(a.find("instructor|escrow-down||"), std::string::npos) << a;
  EXPECT_NE(a.find("instructor|end||"), std::string::npos) << a;
  RecordProperty("wall_s_to_boot_loop", std::to_string(to_boot_loop_s));
  RecordProperty("wall_s_to_recovered", std::to_string(to_recovered_s));
  RecordProperty("wall_s_total",
                 std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()));
}

}  // namespace
}  // namespace chaoslab::testing
