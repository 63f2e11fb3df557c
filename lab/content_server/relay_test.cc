#include "lab/content_server/relay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "lab/content_server/content_server.h"
#include "lab/content_server/key_escrow.h"
#include "lab/content_server/test_socket.h"

extern char** environ;

namespace chaoslab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ParseHttpResponse;
using testing::ReadUntil;
using testing::ReadUntilClosed;
using testing::SendAll;
using testing::TestListener;

// The built chaoslab-relay, started with pipes on stdin/stdout/stderr. Killed (by its pid) if a
// test leaves it running.
class RelayProcess {
 public:
  explicit RelayProcess(const std::vector<std::string>& args) {
    signal(SIGPIPE, SIG_IGN);  // a relay that exits early must fail the test, not kill it
    int in[2], out[2], err[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> argv_storage = {CHAOSLAB_RELAY_BINARY};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, CHAOSLAB_RELAY_BINARY, &actions, nullptr, argv.data(), environ);
    EXPECT_EQ(rc, 0) << "cannot start " << CHAOSLAB_RELAY_BINARY;
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~RelayProcess() {
    CloseStdin();
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stdout_);
    close(stderr_);
  }

  int stdin_fd() const { return stdin_; }
  int stdout_fd() const { return stdout_; }
  void CloseStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  std::string Stderr() { return ReadUntilClosed(stderr_, 1s); }

  // The exit code, or -1 if it is still running after `timeout`.
  int WaitExit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

std::vector<std::string> PortArgs(int port) { return {"--port", std::to_string(port)}; }

TEST(RelayArgsTest, ParsesFlagsInBothForms) {
  auto options = ParseRelayArgs({"--port", "8080", "--delay-ms=250", "--jitter-ms", "40", "--seed",
                                 "7", "--host", "127.0.0.1", "--idle-timeout-ms=900"});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->port, 8080);
  EXPECT_EQ(options->delay_ms, 250);
  EXPECT_EQ(options->jitter_ms, 40);
  EXPECT_EQ(options->seed, 7u);
  EXPECT_EQ(options->idle_timeout_ms, 900);
  EXPECT_EQ(options->host, "127.0.0.1");
}

TEST(RelayArgsTest, RejectsBadArgumentsNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "--port"},
           {{"--port"}, "--port"},
           {{"--port", "0"}, "--port"},
           {{"--port", "65536"}, "--port"},
           {{"--port", "80x"}, "--port"},
           {{"--port", "80", "--delay-ms", "-1"}, "--delay-ms"},
           {{"--port", "80", "--jitter-ms", "lots"}, "--jitter-ms"},
           {{"--port", "80", "--seed", "-3"}, "--seed"},
           {{"--port", "80", "--bogus"}, "--bogus"},
           {{"--port", "80", "extra"}, "extra"},
       }) {
    auto options = ParseRelayArgs(c.args);
    ASSERT_FALSE(options.ok());
    EXPECT_EQ(options.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(options.status().message().find(c.mentions), std::string::npos)
        << options.status().message();
  }
}

TEST(RelayArgsTest, LossDropsTheGivenShareOfConnections) {
  auto parsed = ParseRelayArgs({"--port", "80", "--loss-percent", "30"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->loss_percent, 30);
  EXPECT_FALSE(ParseRelayArgs({"--port", "80", "--loss-percent", "101"}).ok());
  RelayOptions options = *parsed;
  int dropped = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    options.seed = seed;
    bool first = RelayDropsConnection(options);
    EXPECT_EQ(first, RelayDropsConnection(options));  // seeded: the same answer
    dropped += first;
  }
  EXPECT_NEAR(dropped / 2000.0, 0.30, 0.04);
  options.loss_percent = 0;
  EXPECT_FALSE(RelayDropsConnection(options));
  options.loss_percent = 100;
  EXPECT_TRUE(RelayDropsConnection(options));
}

TEST(RelayArgsTest, AcceptsOnlyLoopbackHosts) {
  for (const char* ok : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(ParseRelayArgs({"--port", "80", "--host", ok}).ok()) << ok;
  }
  for (const char* bad : {"8.8.8.8", "10.0.2.100", "0.0.0.0", "::", "example.com", "128.0.0.1"}) {
    auto options = ParseRelayArgs({"--port", "80", "--host", bad});
    ASSERT_FALSE(options.ok()) << bad;
    EXPECT_NE(options.status().message().find("loopback"), std::string::npos);
  }
}

TEST(RelayArgsTest, DelaysAreSeededAndWithinTheJitter) {
  RelayOptions options;
  options.delay_ms = 100;
  options.jitter_ms = 30;
  options.seed = 42;
  auto first = RelayDelays(options);
  EXPECT_EQ(first, RelayDelays(options));
  for (uint64_t seed = 0; seed < 50; ++seed) {
    options.seed = seed;
    auto [up, down] = RelayDelays(options);
    EXPECT_GE(up, 70);
    EXPECT_LE(up, 130);
    EXPECT_GE(down, 70);
    EXPECT_LE(down, 130);
  }
  options.jitter_ms = 0;
  EXPECT_EQ(RelayDelays(options), std::make_pair(100, 100));
}

TEST(RelayArgsTest, BuildsTheGuestfwdCommand) {
  RelayOptions options;
  options.port = 4321;
  options.delay_ms = 80;
  options.seed = 9;
  auto argv = RelayCommand("/opt/lab/bin/chaoslab-relay", options);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(argv->front(), "/opt/lab/bin/chaoslab-relay");
  std::vector<std::string> flags(argv->begin() + 1, argv->end());
  auto parsed = ParseRelayArgs(flags);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->port, 4321);
  EXPECT_EQ(parsed->delay_ms, 80);
  EXPECT_EQ(parsed->seed, 9u);
  EXPECT_FALSE(RelayCommand("/path with space/relay", options).ok());
  EXPECT_FALSE(RelayCommand("/a,b/relay", options).ok());
  options.host = "8.8.8.8";
  EXPECT_FALSE(RelayCommand("/bin/relay", options).ok());
}

TEST(RelayProcessTest, RefusesANonLoopbackHostWithoutConnecting) {
  RelayProcess relay({"--port", "53", "--host", "8.8.8.8"});
  EXPECT_EQ(relay.WaitExit(5s), 2);
  std::string err = relay.Stderr();
  EXPECT_NE(err.find("8.8.8.8"), std::string::npos) << err;
  EXPECT_NE(err.find("non-loopback"), std::string::npos) << err;
}

TEST(RelayProcessTest, ReportsAServiceThatIsNotThere) {
  int port;
  {
    TestListener listener;
    port = listener.port();
  }  // closed: nothing listens there now
  RelayProcess relay(PortArgs(port));
  EXPECT_EQ(relay.WaitExit(5s), 1);
  EXPECT_NE(relay.Stderr().find("connect"), std::string::npos);
}

TEST(RelayProcessTest, CopiesBytesBothWaysAndExitsWhenTheServiceCloses) {
  TestListener listener;
  RelayProcess relay(PortArgs(listener.port()));
  int service = listener.Accept(5s);
  ASSERT_GE(service, 0);

  ASSERT_TRUE(SendAll(relay.stdin_fd(), "ping from guest"));
  EXPECT_EQ(ReadUntil(service, "guest", 3s), "ping from guest");
  ASSERT_TRUE(SendAll(service, "pong from service"));
  EXPECT_EQ(ReadUntil(relay.stdout_fd(), "service", 3s), "pong from service");

  // Large binary payloads both ways at once, exactly.
  std::string up(300000, '\0'), down(300000, '\0');
  for (size_t i = 0; i < up.size(); ++i) {
    up[i] = static_cast<char>(i * 31);
    down[i] = static_cast<char>(i * 17 + 5);
  }
  std::string got_up, got_down;
  std::thread writer([&] { SendAll(relay.stdin_fd(), up); });
  std::thread service_side([&] {
    std::thread sender([&] { SendAll(service, down); });
    got_up = testing::ReadAtLeast(service, up.size(), 10s);
    sender.join();
    shutdown(service, SHUT_WR);  // the service is done talking
  });
  bool closed = false;
  got_down = ReadUntilClosed(relay.stdout_fd(), 10s, &closed);
  writer.join();
  service_side.join();
  EXPECT_TRUE(got_up == up) << got_up.size();
  EXPECT_TRUE(got_down == down) << got_down.size();
  EXPECT_TRUE(closed) << "stdout should end when the service closes";
  EXPECT_EQ(relay.WaitExit(3s), 0);
  close(service);
}

TEST(RelayProcessTest, HalfCloseFromTheGuestIsPassedOnAndTheRelayLeaves) {
  TestListener listener;
  RelayProcess relay({"--port", std::to_string(listener.port()), "--idle-timeout-ms", "400"});
  int service = listener.Accept(5s);
  ASSERT_GE(service, 0);
  ASSERT_TRUE(SendAll(relay.stdin_fd(), "request"));
  relay.CloseStdin();
  bool closed = false;
  EXPECT_EQ(ReadUntilClosed(service, 3s, &closed), "request");
  EXPECT_TRUE(closed) << "the service should see end-of-stream";
  ASSERT_TRUE(SendAll(service, "late answer"));
  EXPECT_EQ(ReadUntil(relay.stdout_fd(), "answer", 3s), "late answer");
  // The service never closes: the relay still leaves once things go quiet (exit 0, not the idle
  // timeout's 1), within the 5 s this waits.
  EXPECT_EQ(relay.WaitExit(5s), 0);
  close(service);
}

TEST(RelayProcessTest, ExitsAfterTheIdleTimeout) {
  TestListener listener;
  RelayProcess relay({"--port", std::to_string(listener.port()), "--idle-timeout-ms", "300"});
  int service = listener.Accept(5s);
  ASSERT_GE(service, 0);
  EXPECT_EQ(relay.WaitExit(5s), 1);
  EXPECT_NE(relay.Stderr().find("nothing moved for 300 ms"), std::string::npos) << relay.Stderr();
  close(service);
}

// The delay rule itself, on made-up instants: no clock, so no load can change the answer.
TEST(FirstByteDelayTest, HoldsUntilTheDelayAfterTheFirstByteAndNeverAgain) {
  using namespace std::chrono;
  const FirstByteDelay::Clock::time_point t0{seconds(1000)};
  FirstByteDelay gate(500ms);
  EXPECT_FALSE(gate.Released(t0)) << "nothing arrived yet";
  gate.OnBytes(t0);
  EXPECT_FALSE(gate.Released(t0 + 499ms));
  EXPECT_TRUE(gate.Released(t0 + 500ms));
  gate.OnBytes(t0 + 2s);  // later bytes: not held back by another whole delay
  EXPECT_TRUE(gate.Released(t0 + 2s));
  EXPECT_EQ(gate.release_at(), t0 + 500ms);
  FirstByteDelay none(0ms);
  none.OnBytes(t0);
  EXPECT_TRUE(none.Released(t0));
}

// With a delay, the bytes of both directions still arrive, whole and in order (the delay's length
// is the unit test's above; its wall-clock figures belong to `make bench`).
TEST(RelayProcessTest, DelayedDirectionsStillCarryEveryByte) {
  TestListener listener;
  RelayProcess relay({"--port", std::to_string(listener.port()), "--delay-ms", "500"});
  int service = listener.Accept(5s);
  ASSERT_GE(service, 0);
  ASSERT_TRUE(SendAll(relay.stdin_fd(), "up"));
  EXPECT_EQ(ReadUntil(service, "up", 10s), "up");
  ASSERT_TRUE(SendAll(service, "down"));
  EXPECT_EQ(ReadUntil(relay.stdout_fd(), "down", 10s), "down");
  ASSERT_TRUE(SendAll(service, "again"));
  EXPECT_EQ(ReadUntil(relay.stdout_fd(), "again", 10s), "again");
  close(service);
  EXPECT_EQ(relay.WaitExit(10s), 0);
}

TEST(RelayProcessTest, CarriesAnHttpExchangeWithTheContentServer) {
  auto server = ContentServer::Start({});
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Publish(291, 3, "C-00000291-00000000-00000003.sys", "fixed").ok());
  std::string seen_host;
  (*server)->SetObserver([&](const ContentServer::Request& r) { seen_host = r.host_id; });

  RelayProcess relay(PortArgs((*server)->port()));
  ASSERT_TRUE(
      SendAll(relay.stdin_fd(),
              "GET /v1/content/C-00000291-00000000-00000003.sys?host=ws-9 HTTP/1.0\r\n\r\n"));
  bool closed = false;
  std::string reply = ReadUntilClosed(relay.stdout_fd(), 5s, &closed);
  EXPECT_TRUE(closed);
  auto response = ParseHttpResponse(reply);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "fixed");
  EXPECT_EQ(relay.WaitExit(3s), 0);
  (*server)->Stop();
  EXPECT_EQ(seen_host, "ws-9");
}

// A credential file as the lab writes it: mode 0600 (or `mode` to test refusals).
std::string WriteCredential(const std::string& dir, const std::string& credential, mode_t mode) {
  std::string path = dir + "/credential";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, credential.data(), credential.size()), ssize_t(credential.size()));
  close(fd);
  chmod(path.c_str(), mode);
  return path;
}

struct TempFolder {
  std::string path;
  TempFolder() {
    char tmpl[] = "/tmp/relay_test.XXXXXX";
    path = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempFolder() { std::filesystem::remove_all(path); }
};

// The guest's own key through its relay: the relay presents the host's credential first, so the
// escrow knows which host is asking (and would refuse any other host's key).
TEST(RelayProcessTest, PresentsTheHostsCredentialSoTheEscrowAnswersThatHost) {
  auto server = ContentServer::Start({});
  ASSERT_TRUE(server.ok());
  KeyEscrow escrow;
  escrow.Store("ws-9", "password of ws-9");
  escrow.Store("ws-8", "password of ws-8");
  (*server)->AttachEscrow(&escrow);
  TempFolder dir;
  const std::string file = WriteCredential(dir.path, escrow.IssueCredential("ws-9") + "\n", 0600);
  for (const std::string host : {"ws-9", "ws-8"}) {
    RelayProcess relay({"--port", std::to_string((*server)->port()), "--credential-file", file});
    ASSERT_TRUE(SendAll(relay.stdin_fd(), "GET /v1/escrow/key?host=" + host + " HTTP/1.0\r\n\r\n"));
    bool closed = false;
    auto response = ParseHttpResponse(ReadUntilClosed(relay.stdout_fd(), 10s, &closed));
    EXPECT_TRUE(closed);
    if (host == "ws-9") {
      EXPECT_EQ(response.status, 200);
      EXPECT_EQ(response.body, "password of ws-9\n");
    } else {
      EXPECT_EQ(response.status, 403) << "another host's key through ws-9's link";
      EXPECT_EQ(response.body.find("password of"), std::string::npos);
    }
    EXPECT_EQ(relay.WaitExit(10s), 0);
  }
  (*server)->AttachEscrow(nullptr);
}

TEST(RelayProcessTest, RefusesACredentialFileOthersCanRead) {
  TestListener listener;
  TempFolder dir;
  const std::string file = WriteCredential(dir.path, "00ff", 0644);
  RelayProcess relay({"--port", std::to_string(listener.port()), "--credential-file", file});
  EXPECT_NE(relay.WaitExit(10s), 0);
  EXPECT_NE(relay.Stderr().find("may be read by others"), std::string::npos) << relay.Stderr();
  EXPECT_LT(listener.Accept(std::chrono::milliseconds(0)), 0) << "it connected anyway";
  EXPECT_EQ(ReadCredentialFile(WriteCredential(dir.path, "not hex", 0600)).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadCredentialFile(dir.path + "/missing").status().code(), ErrorCode::kNotFound);
}

// QEMU's slirp starts the helper with stdin, stdout and stderr all on one end of a socketpair.
TEST(RelayProcessTest, WorksOnOneSocketLikeQemuGuestfwd) {
  auto server = ContentServer::Start({});
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Publish(291, 1, "C-00000291-00000000-00000001.sys", "bad file").ok());
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_adddup2(&actions, sp[1], fd);
  std::string binary = CHAOSLAB_RELAY_BINARY, port_flag = "--port",
              port = std::to_string((*server)->port());
  char* argv[] = {binary.data(), port_flag.data(), port.data(), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(sp[1]);

  // A keep-alive request followed by the guest's half-close: the answer still arrives and the
  // relay leaves once the server has closed.
  ASSERT_TRUE(SendAll(sp[0], "GET /v1/manifest?host=ws-1 HTTP/1.1\r\nHost: 10.0.2.100\r\n\r\n"));
  shutdown(sp[0], SHUT_WR);
  bool closed = false;
  std::string reply = ReadUntilClosed(sp[0], 5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(ParseHttpResponse(reply).body, "291 1 C-00000291-00000000-00000001.sys\n") << reply;
  int status = -1;
  for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) != pid; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  if (!WIFEXITED(status)) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << "the relay did not exit";
  } else {
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  close(sp[0]);
}

}  // namespace
}  // namespace chaoslab
