// The game-day dashboard against a real run: `chaoslab run channel-291 --max-vms 3 --dashboard` on
// real QEMU guests, watched over its WebSocket and rendered by headless Chromium (Debian's
// /usr/bin/chromium, a private profile, loopback only). Screenshots are kept as test artefacts in
// <build>/test-artifacts/gameday/.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>

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

http::status Get(int port, const std::string& target) {
  return LoopbackRequest(port, http::verb::get, target).status;
}

class Browser {
 public:
  explicit Browser(const fs::path& dir) : dir_(dir) { fs::create_directories(dir_ / "profile"); }
  // Loads `url`, lets its script run for `ms` of virtual time, and returns stdout (--dump-dom)
  // or writes a screenshot.
  Result<ProcessOutput> Run(const std::vector<std::string>& extra, const std::string& url) {
    std::vector<std::string> argv = {"/usr/bin/chromium",
                                     "--headless",
                                     "--no-sandbox",  // the tests may run as root (CI)
                                     "--disable-gpu",
                                     "--user-data-dir=" + (dir_ / "profile").string(),
                                     "--no-first-run",
                                     "--no-default-browser-check",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--disable-extensions",
                                     "--hide-scrollbars",
                                     "--window-size=1280,900"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return RunProcess(argv, std::chrono::seconds(120));
  }

 private:
  fs::path dir_;
};

// The page's DOM once it has had its first WebSocket messages: headless Chromium's --dump-dom can
// print before the socket delivered, so a dump without data is retried.
std::string LiveDom(Browser& chrome, const std::string& url) {
  std::string dom;
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto out = chrome.Run({"--virtual-time-budget=5000", "--dump-dom"}, url);
    if (!out.ok()) return "chromium: " + out.status().ToString();
    dom = out->out;
    if (dom.find("data-messages=\"0\"") == std::string::npos &&
        dom.find("data-messages=") != std::string::npos) {
      return dom;
    }
  }
  return dom;
}

fs::path Artefacts() {
  const char* build = std::getenv("CHAOSLAB_BUILD_DIR");
  fs::path dir = fs::path(build && *build ? build : ".") / "test-artifacts" / "gameday";
  fs::create_directories(dir);
  return dir;
}

TEST(GamedayDashboardTest, ARealRunIsWatchedLiveAndNeedsTheToken) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  ASSERT_EQ(access("/usr/bin/chromium", X_OK), 0) << "chromium missing: run .ci/setup-debian";
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = lab.Start({"run", lab.scenario("channel-291"), "--max-vms", "3", "--json",
                         "--dashboard", "--dashboard-hold"});
  ASSERT_TRUE(lab.WaitForStderr(pid, "(instructor)", std::chrono::seconds(60)))
      << lab.StderrOf(pid);
  std::smatch m;
  std::string err = lab.StderrOf(pid);
  const std::regex trainee_re(
      R"(dashboard: http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]{32}) \(trainee\))");
  const std::regex instructor_re(
      R"(dashboard: http://127\.0\.0\.1:\d+/\?token=([0-9a-f]{32}) \(instructor\))");
  ASSERT_TRUE(std::regex_search(err, m, trainee_re)) << err;
  const int port = std::stoi(m[1]);
  const std::string token = m[2];
  ASSERT_TRUE(std::regex_search(err, m, instructor_re)) << err;
  const std::string instructor = m[1];
  ASSERT_NE(token, instructor);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/?token=" + token;

  // No token, a wrong one, or a trainee at an instructor path: refused.
  EXPECT_EQ(Get(port, "/"), http::status::unauthorized);
  EXPECT_EQ(Get(port, "/api/state"), http::status::unauthorized);
  EXPECT_EQ(Get(port, "/?token=" + std::string(32, '0')), http::status::unauthorized);
  EXPECT_EQ(Get(port, "/api/instructor?token=" + token), http::status::forbidden);
  EXPECT_EQ(Get(port, "/api/instructor?token=" + instructor), http::status::ok);
  EXPECT_EQ(Get(port, "/?token=" + token), http::status::ok);

  // Live: a WebSocket gets the snapshot, then the run's events until the exposed hosts (ws-711,
  // srv-711) reach boot-loop.
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  beast::get_lowest_layer(ws).connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  ws.handshake("127.0.0.1:" + std::to_string(port), "/ws?token=" + token);
  std::set<std::string> hosts, boot_looped;
  int messages = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(8);
  bool all_looped = false;
  while (!all_looped && std::chrono::steady_clock::now() < deadline) {
    beast::get_lowest_layer(ws).expires_after(std::chrono::minutes(2));
    beast::flat_buffer buf;
    ws.read(buf);
    json msg = json::parse(beast::buffers_to_string(buf.data()));
    messages++;
    std::vector<json> changed;
    if (msg["type"] == "snapshot") {
      for (const auto& h : msg["hosts"]) changed.push_back(h);
    } else if (msg.contains("host")) {
      changed.push_back(msg["host"]);
    }
    for (const auto& h : changed) {
      hosts.insert(h["id"].get<std::string>());
      if (h["state"] == "boot-loop") {
        EXPECT_GE(h["crashes"].get<int>(), 2) << h.dump();
        EXPECT_TRUE(h["group"] == "ws-711" || h["group"] == "srv-711") << h.dump();
        boot_looped.insert(h["id"].get<std::string>());
      }
    }
    all_looped =
        !boot_looped.empty() && std::all_of(hosts.begin(), hosts.end(), [&](const std::string& id) {
          return boot_looped.count(id) || !(id.starts_with("ws-711") || id.starts_with("srv-711"));
        });
  }
  const double to_boot_loop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(all_looped) << messages << " messages; boot-looped: " << boot_looped.size();
  EXPECT_GE(hosts.size(), 3u);
  EXPECT_GT(messages, 5);
  RecordProperty("wall_s_to_boot_loop", std::to_string(to_boot_loop_s));

  // A boot-looped host's serial console: what it printed (the bugcheck), and a typed line goes to
  // the machine and into the journal.
  const std::string console_host = *boot_looped.begin();
  websocket::stream<beast::tcp_stream> console(io);
  beast::get_lowest_layer(console).connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  beast::get_lowest_layer(console).expires_after(std::chrono::seconds(30));
  console.handshake("127.0.0.1:" + std::to_string(port),
                    "/console/" + console_host + "?token=" + token);
  beast::flat_buffer backlog_buf;
  console.read(backlog_buf);
  json backlog = json::parse(beast::buffers_to_string(backlog_buf.data()));
  EXPECT_EQ(backlog["type"], "tty-backlog");
  EXPECT_NE(backlog["lines"].dump().find("PAGE_FAULT_IN_NONPAGED_AREA"), std::string::npos)
      << backlog.dump().substr(0, 3000);
  console.text(true);
  console.write(asio::buffer(std::string("dir C:\\\n")));

  // The page, as a browser renders it while the run goes: the fleet grid and the timeline.
  Browser chrome(lab.dir() / "chromium");
  const fs::path out = Artefacts();
  auto shot = chrome.Run(
      {"--virtual-time-budget=3000", "--screenshot=" + (out / "dashboard-live.png").string()}, url);
  ASSERT_TRUE(shot.ok()) << shot.status().ToString();
  EXPECT_TRUE(fs::exists(out / "dashboard-live.png")) << shot->err;
  const std::string dom = LiveDom(chrome, url);
  EXPECT_NE(dom.find("data-ws=\"open\""), std::string::npos) << dom.substr(0, 2000);
  for (const auto& id : boot_looped) {
    std::regex tile("data-host=\"" + id + "\"[^>]*data-boot-looped=\"true\"");
    EXPECT_TRUE(std::regex_search(dom, tile)) << id << "\n" << dom.substr(0, 4000);
  }
  EXPECT_NE(dom.find("data-kind=\"crash\""), std::string::npos);
  // The console in the page (xterm.js), opened by #console=<host> as a click on the tile would.
  std::string console_dom;
  for (int attempt = 0; attempt < 5; ++attempt) {
    console_dom = LiveDom(chrome, url + "#console=" + console_host);
    if (console_dom.find("PAGE_FAULT_IN_NONPAGED_AREA", console_dom.find("xterm-rows")) !=
        std::string::npos) {
      break;
    }
  }
  EXPECT_NE(console_dom.find("data-console=\"" + console_host + "\""), std::string::npos);
  const size_t rows = console_dom.find("xterm-rows");
  ASSERT_NE(rows, std::string::npos) << console_dom.substr(0, 3000);
  EXPECT_NE(console_dom.find("PAGE_FAULT_IN_NONPAGED_AREA", rows), std::string::npos)
      << console_dom.substr(rows, 3000);
  auto console_shot =
      chrome.Run({"--virtual-time-budget=5000", "--screenshot=" + (out / "console.png").string()},
                 url + "#console=" + console_host);
  EXPECT_TRUE(console_shot.ok());

  // Without the token the browser gets nothing of the page.
  auto refused = chrome.Run({"--dump-dom"}, "http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->out.find("id=\"fleet\""), std::string::npos);
  EXPECT_NE(refused->out.find("valid token"), std::string::npos) << refused->out;

  // The run ends; the dashboard holds the final state until told to stop.
  ASSERT_TRUE(lab.WaitForStderr(pid, "still serving", std::chrono::minutes(10)))
      << lab.StderrOf(pid);
  auto final_shot = chrome.Run(
      {"--virtual-time-budget=3000", "--screenshot=" + (out / "dashboard-final.png").string()},
      url);
  ASSERT_TRUE(final_shot.ok());
  const std::string final_dom = LiveDom(chrome, url);
  EXPECT_NE(final_dom.find("data-status=\"finished\""), std::string::npos)
      << final_dom.substr(0, 2000);
  // The recovery curve was drawn (uPlot's canvas) with the points so far.
  EXPECT_NE(final_dom.find("<canvas"), std::string::npos);
  std::smatch points;
  ASSERT_TRUE(
      std::regex_search(final_dom, points, std::regex(R"re(id="curve"[^>]*data-points="(\d+)")re")))
      << final_dom.substr(0, 3000);
  EXPECT_GE(std::stoi(points[1]), 3);
  kill(pid, SIGTERM);
  EXPECT_EQ(lab.Wait(pid, std::chrono::seconds(60)), 0) << lab.StderrOf(pid);
  json run = json::parse(lab.StdoutOf(pid));
  EXPECT_EQ(run["status"], "finished");
  // The typed line is in the journal, on that host.
  auto journaled =
      RunProcess({"sqlite3", lab.journal(),
                  "SELECT host_id || '|' || detail FROM events WHERE run_id = '" +
                      run["run_id"].get<std::string>() + "' AND kind = 'console-input'"});
  ASSERT_TRUE(journaled.ok());
  EXPECT_EQ(journaled->out, console_host + "|dir C:\\\n") << journaled->err;
  RecordProperty(
      "wall_s_total",
      std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
}

}  // namespace
}  // namespace chaoslab::testing
