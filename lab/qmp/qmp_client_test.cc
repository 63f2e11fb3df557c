#include "lab/qmp/qmp_client.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/process.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

namespace chaoslab::qmp {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const char kGreeting[] =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})";

std::string MakeTempDir() {
  char tmpl[] = "/tmp/chaoslab-qmp-XXXXXX";
  char* dir = mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return dir ? dir : "";
}

// One accepted connection of the fake server, seen from the server's side.
class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  ~Conn() { Close(); }
  void Send(const std::string& line) {
    std::string data = line + "\r\n";
    ASSERT_EQ(send(fd_, data.data(), data.size(), MSG_NOSIGNAL), ssize_t(data.size()));
  }
  // For a peer that may hang up part-way (the client refusing what it is sent).
  void SendIgnoringHangUp(const std::string& line) {
    std::string data = line + "\r\n";
    (void)!send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
  }
  void SendRaw(const std::string& data) {
    ASSERT_EQ(send(fd_, data.data(), data.size(), MSG_NOSIGNAL), ssize_t(data.size()));
  }
  // The next command the client sent, or null JSON after 5 s / on EOF.
  json ReadCommand() {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return json::parse(line);
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (Clock::now() >= deadline || poll(&pfd, 1, 100) < 0) return nullptr;
      if (!(pfd.revents & POLLIN)) continue;
      char chunk[4096];
      ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return nullptr;
      buffer_.append(chunk, size_t(n));
    }
  }
  void Reply(const json& command, const json& ret) {
    Send(json{{"return", ret}, {"id", command["id"]}}.dump());
  }
  void Handshake() {
    Send(kGreeting);
    json caps = ReadCommand();
    ASSERT_EQ(caps.value("execute", ""), "qmp_capabilities");
    Reply(caps, json::object());
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  std::string buffer_;
};

// A scripted QMP server on a Unix socket: accepts one connection and runs the script on it.
class FakeQmpServer {
 public:
  FakeQmpServer() : dir_(MakeTempDir()), path_(dir_ + "/qmp.sock") {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 1), 0);
  }
  ~FakeQmpServer() {
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
    fs::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  void Serve(std::function<void(Conn&)> script) {
    thread_ = std::thread([this, script] {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 5000) != 1) return;
      Conn conn(accept(listen_fd_, nullptr, nullptr));
      script(conn);
    });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::string dir_;
  std::string path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

// Collects what a client's callbacks receive.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;
  std::vector<Status> closes;

  Callbacks callbacks() {
    return Callbacks{[this](const Event& e) {
                       std::lock_guard<std::mutex> lock(mu);
                       events.push_back(e);
                       cv.notify_all();
                     },
                     [this](const Status& s) {
                       std::lock_guard<std::mutex> lock(mu);
                       closes.push_back(s);
                       cv.notify_all();
                     }};
  }
  bool WaitFor(std::function<bool()> pred, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
  // Waits for an event named `name` at index >= `from`; returns its index or -1.
  int WaitEvent(const std::string& name, size_t from = 0,
                milliseconds timeout = milliseconds(10000)) {
    int found = -1;
    WaitFor(
        [&] {
          for (size_t i = from; i < events.size(); ++i) {
            if (events[i].name == name) return found = int(i), true;
          }
          return false;
        },
        timeout);
    return found;
  }
  std::vector<std::string> names() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (auto& e : events) out.push_back(e.name);
    return out;
  }
};

TEST(QmpClientTest, NegotiatesAndExecutes) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    json cmd = c.ReadCommand();
    EXPECT_EQ(cmd["execute"], "query-status");
    EXPECT_FALSE(cmd.contains("arguments"));
    c.Reply(cmd, {{"status", "running"}, {"running", true}});
    cmd = c.ReadCommand();
    EXPECT_EQ(cmd["execute"], "human-monitor-command");
    EXPECT_EQ(cmd["arguments"]["command-line"], "info version");
    c.Reply(cmd, "7.2.0");
    c.ReadCommand();  // waits for the client to go away
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_TRUE((*client)->connected());
  auto status = (*client)->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ((*status)["status"], "running");
  auto hmp = (*client)->Execute("human-monitor-command", {{"command-line", "info version"}});
  ASSERT_TRUE(hmp.ok()) << hmp.status().ToString();
  EXPECT_EQ(*hmp, "7.2.0");
  (*client)->Close();
  EXPECT_FALSE((*client)->connected());
  client->reset();
  server.Join();
  ASSERT_EQ(rec.closes.size(), 1u);
  EXPECT_TRUE(rec.closes[0].ok()) << "a local Close() ends with OK: " << rec.closes[0].ToString();
}

TEST(QmpClientTest, MatchesOutOfOrderRepliesAndKeepsEventOrder) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    json a = c.ReadCommand();
    json b = c.ReadCommand();
    ASSERT_FALSE(a.is_null());
    ASSERT_FALSE(b.is_null());
    // Two messages in one write, then events interleaved with replies in reverse order.
    c.SendRaw(
        json{{"event", "STOP"}, {"timestamp", {{"seconds", 10}, {"microseconds", 500000}}}}.dump() +
        "\r\n" + json{{"event", "E1"}, {"data", {{"n", 1}}}}.dump() + "\r\n");
    c.Reply(b, json{{"who", b["execute"]}});
    c.Send(json{{"event", "E2"}, {"data", {{"n", 2}}}}.dump());
    c.Send("");  // blank lines are ignored
    c.Reply(a, json{{"who", a["execute"]}});
    c.Send(json{{"event", "E3"}}.dump());
    c.ReadCommand();
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<json> r1 = Status::Internal("unset"), r2 = Status::Internal("unset");
  std::thread t1([&] { r1 = (*client)->Execute("cmd-one"); });
  std::thread t2([&] { r2 = (*client)->Execute("cmd-two"); });
  t1.join();
  t2.join();
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ((*r1)["who"], "cmd-one");
  EXPECT_EQ((*r2)["who"], "cmd-two");
  ASSERT_GE(rec.WaitEvent("E3"), 0);
  EXPECT_EQ(rec.names(), (std::vector<std::string>{"STOP", "E1", "E2", "E3"}));
  EXPECT_DOUBLE_EQ(rec.events[0].qemu_timestamp, 10.5);
  EXPECT_TRUE(rec.events[0].data.is_null());
  EXPECT_EQ(rec.events[1].data["n"], 1);
  client->reset();
}

TEST(QmpClientTest, ErrorReplyBecomesStatusWithQemuDescription) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    json cmd = c.ReadCommand();
    c.Send(json{{"error", {{"class", "GenericError"}, {"desc", "Guest is not running"}}},
                {"id", cmd["id"]}}
               .dump());
    cmd = c.ReadCommand();
    c.Send(json{{"error", {{"class", "CommandNotFound"}, {"desc", "The command x not found"}}},
                {"id", cmd["id"]}}
               .dump());
    c.ReadCommand();
  });
  auto client = Connect(server.path(), {}, milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto r = (*client)->Execute("cont");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("Guest is not running"), std::string::npos);
  EXPECT_NE(r.status().message().find("cont"), std::string::npos);
  r = (*client)->Execute("x");
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE((*client)->connected()) << "an error reply does not end the connection";
}

TEST(QmpClientTest, ServerClosingMidCommandGivesUnavailableAndOneOnClosed) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    c.ReadCommand();
    c.Close();
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  // kUnavailable, not the kTimeout that 20 s without an answer would give: the close woke it.
  auto r = (*client)->Execute("query-status", nullptr, milliseconds(20000));
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ((*client)->Execute("query-status").status().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE((*client)->connected());
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }));
  (*client)->Close();
  client->reset();
  ASSERT_EQ(rec.closes.size(), 1u);
  EXPECT_EQ(rec.closes[0].code(), ErrorCode::kUnavailable);
}

TEST(QmpClientTest, GarbageIsCorruptionAndClosesTheConnection) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    c.ReadCommand();
    c.Send("{\"return\": {}, \"id\": ");  // truncated JSON
    c.ReadCommand();                      // EOF once the client hangs up
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto r = (*client)->Execute("query-status");
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption) << r.status().ToString();
  EXPECT_FALSE((*client)->connected());
  EXPECT_EQ((*client)->Execute("query-status").status().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }));
  EXPECT_EQ(rec.closes[0].code(), ErrorCode::kCorruption);
  server.Join();  // the server saw EOF: the client really hung up
}

TEST(QmpClientTest, NonObjectMessageIsCorruption) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    c.ReadCommand();
    c.Send("[1, 2, 3]");
    c.ReadCommand();
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->Execute("query-status").status().code(), ErrorCode::kCorruption);
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }));
  EXPECT_EQ(rec.closes[0].code(), ErrorCode::kCorruption);
  EXPECT_NE(rec.closes[0].message().find("[1, 2, 3]"), std::string::npos);
}

TEST(QmpClientTest, TimeoutThenLateReplyIsIgnored) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    json slow = c.ReadCommand();
    json next = c.ReadCommand();  // sent after the first timed out
    c.Reply(slow, "late");
    c.Reply(next, "on time");
    c.ReadCommand();
  });
  auto client = Connect(server.path(), {}, milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto r = (*client)->Execute("slow", nullptr, milliseconds(100));
  EXPECT_EQ(r.status().code(), ErrorCode::kTimeout);
  auto next = (*client)->Execute("next");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(*next, "on time");
}

TEST(QmpClientTest, CloseUnblocksPendingExecute) {
  FakeQmpServer server;
  std::atomic<bool> command_read{false};
  server.Serve([&](Conn& c) {
    c.Handshake();
    c.ReadCommand();
    command_read = true;
    c.ReadCommand();  // never answers; returns at EOF
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<json> r = Status::Internal("unset");
  std::thread t([&] { r = (*client)->Execute("never", nullptr, milliseconds(30000)); });
  // The command is on the wire, so Execute is waiting for its answer when Close comes.
  bool sent = rec.WaitFor([&] { return command_read.load(); }, milliseconds(10000));
  (*client)->Close();
  (*client)->Close();  // idempotent
  t.join();
  ASSERT_TRUE(sent) << "the server never read the command (waited 10 s)";
  // kUnavailable, not the kTimeout of 30 s without an answer: Close woke the waiting Execute.
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  client->reset();
  EXPECT_EQ(rec.closes.size(), 1u);
}

TEST(QmpClientTest, ExecuteFromEventCallbackFailsInsteadOfDeadlocking) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Handshake();
    c.Send(json{{"event", "RESET"}}.dump());
    c.ReadCommand();
  });
  std::unique_ptr<Client> client;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> inner;
  Callbacks cbs;
  cbs.on_event = [&](const Event&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return client != nullptr; });
    inner = client->Execute("query-status").status();
    cv.notify_all();
  };
  auto connected = Connect(server.path(), cbs, milliseconds(5000));
  ASSERT_TRUE(connected.ok()) << connected.status().ToString();
  {
    std::unique_lock<std::mutex> lock(mu);
    client = std::move(*connected);
    cv.notify_all();
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return inner.has_value(); }));
  }
  EXPECT_EQ(inner->code(), ErrorCode::kFailedPrecondition);
}

TEST(QmpClientTest, ConnectToMissingSocketGivesUpAtTheDeadline) {
  Recorder rec;
  auto client = Connect("/tmp/chaoslab-no-such-dir/qmp.sock", rec.callbacks(), milliseconds(200));
  EXPECT_EQ(client.status().code(), ErrorCode::kUnavailable) << client.status().ToString();
  // It retried a missing socket (QEMU still starting) until the deadline, not just once.
  EXPECT_NE(client.status().message().find("gave up at the deadline"), std::string::npos)
      << client.status().ToString();
  EXPECT_TRUE(rec.closes.empty());
}

TEST(QmpClientTest, TooLongSocketPathIsInvalidArgument) {
  auto client = Connect("/tmp/" + std::string(200, 'x'), {}, milliseconds(100));
  EXPECT_EQ(client.status().code(), ErrorCode::kInvalidArgument);
}

TEST(QmpClientTest, GarbageGreetingIsCorruption) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Send("SSH-2.0-OpenSSH_9.2");
    c.ReadCommand();
  });
  auto client = Connect(server.path(), {}, milliseconds(5000));
  EXPECT_EQ(client.status().code(), ErrorCode::kCorruption) << client.status().ToString();
  EXPECT_NE(client.status().message().find("SSH-2.0"), std::string::npos);
}

TEST(QmpClientTest, SilentServerTimesOut) {
  FakeQmpServer server;
  server.Serve([](Conn& c) { c.ReadCommand(); });
  auto client = Connect(server.path(), {}, milliseconds(300));
  EXPECT_EQ(client.status().code(), ErrorCode::kTimeout) << client.status().ToString();
}

TEST(QmpClientTest, ServerClosingDuringNegotiationFailsConnectWithoutOnClosed) {
  FakeQmpServer server;
  server.Serve([](Conn& c) {
    c.Send(kGreeting);
    c.ReadCommand();
    c.Close();
  });
  Recorder rec;
  auto client = Connect(server.path(), rec.callbacks(), milliseconds(5000));
  EXPECT_EQ(client.status().code(), ErrorCode::kUnavailable) << client.status().ToString();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_TRUE(rec.closes.empty());
}

// --- A QEMU that misbehaves (issue 15): it costs its connection, never the lab ----------------

// Sends `bad` once the client's first command is in, then waits for the client to hang up.
// Returns the status of that command and the reason the connection ended.
struct Misbehaviour {
  Status command;
  Status closed;
  bool connected_after = true;
};
Misbehaviour AfterCommand(const std::string& bad, Callbacks extra = {}) {
  FakeQmpServer server;
  server.Serve([bad](Conn& c) {
    c.Handshake();
    c.ReadCommand();
    c.SendIgnoringHangUp(bad);
    c.ReadCommand();  // EOF once the client hangs up (or 5 s)
  });
  Recorder rec;
  Callbacks cbs = rec.callbacks();
  if (extra.on_event) {
    cbs.on_event = [&rec, inner = extra.on_event](const Event& e) {
      inner(e);
      rec.callbacks().on_event(e);
    };
  }
  Misbehaviour out;
  auto client = Connect(server.path(), cbs, milliseconds(5000));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  if (!client.ok()) return out;
  out.command = (*client)->Execute("query-status", nullptr, milliseconds(3000)).status();
  EXPECT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }, milliseconds(10000)))
      << "no on_closed after: " << bad.substr(0, 80);
  std::lock_guard<std::mutex> lock(rec.mu);
  if (!rec.closes.empty()) out.closed = rec.closes[0];
  out.connected_after = (*client)->connected();
  return out;
}

// Before: each of these threw nlohmann::json::type_error, in the reader thread (std::terminate) or
// in Execute.
TEST(QmpClientTest, EventWithTimestampOfTheWrongTypeIsCorruption) {
  Misbehaviour m = AfterCommand(
      R"({"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": "soon"}})");
  EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << m.closed.ToString();
  EXPECT_NE(m.closed.message().find("timestamp"), std::string::npos) << m.closed.ToString();
  EXPECT_FALSE(m.connected_after);
}

TEST(QmpClientTest, ErrorReplyThatIsNotAnObjectIsCorruption) {
  Misbehaviour m = AfterCommand(R"({"error": 5, "id": 2})");
  EXPECT_EQ(m.command.code(), ErrorCode::kCorruption) << m.command.ToString();
  EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << m.closed.ToString();
}

TEST(QmpClientTest, ErrorReplyWithANumericClassIsCorruption) {
  Misbehaviour m = AfterCommand(R"({"error": {"class": 7, "desc": ["x"]}, "id": 2})");
  EXPECT_EQ(m.command.code(), ErrorCode::kCorruption) << m.command.ToString();
}

TEST(QmpClientTest, EventWithANumberForItsNameIsCorruption) {
  Misbehaviour m = AfterCommand(R"({"event": 5})");
  EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << m.closed.ToString();
}

TEST(QmpClientTest, ReplyWithAnIdOfTheWrongTypeIsCorruption) {
  Misbehaviour m = AfterCommand(R"({"return": {}, "id": "2"})");
  EXPECT_EQ(m.command.code(), ErrorCode::kCorruption) << m.command.ToString();
  EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << m.closed.ToString();
}

TEST(QmpClientTest, MessageOfScalarsIsCorruption) {
  for (const char* bad : {"5", R"("RESET")", "null", R"([{"event": "RESET"}])"}) {
    Misbehaviour m = AfterCommand(bad);
    EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << bad << ": " << m.closed.ToString();
  }
}

TEST(QmpClientTest, LineLongerThanTheLimitIsCorruption) {
  Misbehaviour m = AfterCommand(std::string(17 << 20, 'x'));
  EXPECT_EQ(m.closed.code(), ErrorCode::kCorruption) << m.closed.ToString();
  EXPECT_FALSE(m.connected_after);
}

// A callback that throws ends the connection with the reason instead of the process.
TEST(QmpClientTest, CallbackThatThrowsEndsTheConnectionNotTheProcess) {
  Callbacks extra;
  extra.on_event = [](const Event&) { throw std::runtime_error("handler failed"); };
  Misbehaviour m = AfterCommand(R"({"event": "STOP"})", extra);
  EXPECT_EQ(m.closed.code(), ErrorCode::kInternal) << m.closed.ToString();
  EXPECT_NE(m.closed.message().find("handler failed"), std::string::npos) << m.closed.ToString();
}

// --- Against a real QEMU -----------------------------------------------------------------------

class RealQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = boost::process::search_path("qemu-system-x86_64");
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed (run `make setup`)";
    dir_ = MakeTempDir();
    socket_ = dir_ + "/qmp.sock";
  }
  void TearDown() override {
    if (child_.valid() && child_.running()) {
      child_.terminate();
    }
    if (child_.valid()) child_.wait();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void StartQemu(std::vector<std::string> machine) {
    std::vector<std::string> args = {"-nodefaults", "-no-user-config",
                                     "-display",    "none",
                                     "-qmp",        "unix:" + socket_ + ",server=on,wait=off"};
    args.insert(args.end(), machine.begin(), machine.end());
    child_ = boost::process::child(qemu_, boost::process::args(args),
                                   boost::process::std_out > boost::process::null,
                                   boost::process::std_err > dir_ + "/qemu.err");
  }

  boost::filesystem::path qemu_;
  std::string dir_;
  std::string socket_;
  boost::process::child child_;
};

TEST_F(RealQemuTest, StatusStopContResetQuit) {
  StartQemu({"-M", "none"});
  Recorder rec;
  auto client = Connect(socket_, rec.callbacks(), milliseconds(10000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Client& qmp = **client;

  auto status = qmp.Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ((*status)["status"], "running");

  ASSERT_TRUE(qmp.Execute("stop").ok());
  int stop = rec.WaitEvent("STOP");
  ASSERT_GE(stop, 0);
  EXPECT_EQ((*qmp.Execute("query-status"))["status"], "paused");
  ASSERT_TRUE(qmp.Execute("cont").ok());
  ASSERT_GE(rec.WaitEvent("RESUME", stop + 1), 0);

  ASSERT_TRUE(qmp.Execute("system_reset").ok());
  int reset = rec.WaitEvent("RESET");
  ASSERT_GE(reset, 0);
  EXPECT_EQ(rec.events[reset].data.value("guest", true), false);
  EXPECT_GT(rec.events[reset].qemu_timestamp, 1e9);

  auto bad = qmp.Execute("no-such-command");
  EXPECT_EQ(bad.status().code(), ErrorCode::kNotFound);

  auto quit = qmp.Execute("quit");
  EXPECT_TRUE(quit.ok() || quit.status().code() == ErrorCode::kUnavailable)
      << quit.status().ToString();
  ASSERT_GE(rec.WaitEvent("SHUTDOWN"), 0);
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }));
  EXPECT_EQ(rec.closes[0].code(), ErrorCode::kUnavailable);
  EXPECT_EQ(qmp.Execute("query-status").status().code(), ErrorCode::kUnavailable);
  child_.wait();
  EXPECT_EQ(child_.exit_code(), 0);
  client->reset();
  EXPECT_EQ(rec.closes.size(), 1u);
}

TEST_F(RealQemuTest, KilledQemuClosesTheConnection) {
  StartQemu({"-M", "none"});
  Recorder rec;
  auto client = Connect(socket_, rec.callbacks(), milliseconds(10000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_EQ(kill(child_.id(), SIGKILL), 0);
  ASSERT_TRUE(rec.WaitFor([&] { return !rec.closes.empty(); }));
  EXPECT_EQ(rec.closes[0].code(), ErrorCode::kUnavailable);
  EXPECT_EQ((*client)->Execute("query-status").status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace chaoslab::qmp
