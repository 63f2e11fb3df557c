#include "lab/qmp/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "lab/qmp/qmp_message.h"

namespace chaoslab::qmp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A line longer than this without a newline is not QMP.
constexpr size_t kMaxLineBytes = 16 << 20;

std::string Excerpt(std::string_view text) {
  constexpr size_t kMax = 200;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax)) + "...";
}

Result<int> ConnectUnix(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("QMP socket path '" + path + "' is empty or longer than " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  while (true) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno("QMP socket()", errno);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    int err = errno;
    close(fd);
    // The socket may not exist yet (QEMU still starting): retry until the deadline.
    bool retryable = err == ENOENT || err == ECONNREFUSED || err == EAGAIN || err == EINTR;
    if (!retryable) return Status::FromErrno("QMP connect to " + path, err);
    if (Clock::now() >= deadline) {
      return Status::Unavailable("QMP connect to " + path + ": " + std::strerror(err) +
                                 " (gave up at the deadline)");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// Reads one '\n'-terminated line into `line` (without "\r\n"), keeping extra bytes in `buffer`.
Status ReadLineBefore(int fd, Clock::time_point deadline, std::string* buffer, std::string* line) {
  while (true) {
    size_t nl = buffer->find('\n');
    if (nl != std::string::npos) {
      *line = buffer->substr(0, nl);
      buffer->erase(0, nl + 1);
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return Status::Ok();
    }
    if (buffer->size() > kMaxLineBytes) return Status::Corruption("QMP line too long");
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::Timeout("no QMP greeting before the deadline");
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return Status::FromErrno("QMP poll", errno);
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("QMP read", errno);
    if (n == 0) return Status::Unavailable("QMP socket closed before the greeting");
    buffer->append(chunk, static_cast<size_t>(n));
  }
}

// Everything the reader thread and the callers share. Owned jointly so that a Client destroyed from
// inside one of its own callbacks never pulls the state from under the reader thread.
struct Shared {
  explicit Shared(int fd_in, Callbacks cbs) : fd(fd_in), callbacks(std::move(cbs)) {}
  ~Shared() { close(fd); }

  struct Pending {
    bool done = false;
    nlohmann::json reply;
    Status status;
  };

  const int fd;
  const Callbacks callbacks;
  std::thread::id reader_id;

  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;           // the reader has ended; no more replies will come
  bool close_requested = false;  // Close() was called
  bool established = false;      // Connect() returned it; only then is on_closed called
  Status close_reason;
  int64_t next_id = 1;
  std::map<int64_t, std::shared_ptr<Pending>> pending;

  std::mutex write_mu;  // one command on the wire at a time
};

class ClientImpl : public Client {
 public:
  ClientImpl(int fd, Callbacks callbacks, std::string leftover)
      : shared_(std::make_shared<Shared>(fd, std::move(callbacks))) {
    reader_ = std::thread([s = shared_, buf = std::move(leftover)]() mutable {
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->reader_id = std::this_thread::get_id();
      }
      ReaderLoop(s, std::move(buf));
    });
  }

  ~ClientImpl() override {
    Close();
    if (reader_.joinable()) {
      if (reader_.get_id() == std::this_thread::get_id()) {
        reader_.detach();  // destroyed from a callback: the reader finishes on its own
      } else {
        reader_.join();
      }
    }
  }

  Result<nlohmann::json> Execute(const std::string& command, const nlohmann::json& arguments,
                                 milliseconds timeout) override {
    Shared& s = *shared_;
    auto pending = std::make_shared<Shared::Pending>();
    int64_t id;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (std::this_thread::get_id() == s.reader_id) {
        return Status::FailedPrecondition("QMP " + command +
                                          ": Execute() from a QMP callback would deadlock");
      }
      if (s.closed || s.close_requested) {
        std::string why = s.closed ? s.close_reason.message() : "closed by the client";
        return Status::Unavailable("QMP " + command + ": connection closed (" + why + ")");
      }
      id = s.next_id++;
      s.pending[id] = pending;
    }
    nlohmann::json msg = {{"execute", command}, {"id", id}};
    if (!arguments.is_null()) msg["arguments"] = arguments;
    std::string wire = msg.dump() + "\n";
    Status written = WriteAll(wire);
    std::unique_lock<std::mutex> lock(s.mu);
    if (!written.ok()) {
      s.pending.erase(id);
      return written.WithContext("QMP " + command);
    }
    bool done = s.cv.wait_for(lock, timeout, [&] { return pending->done; });
    s.pending.erase(id);
    if (!done) {
      return Status::Timeout("QMP " + command + ": no reply within " +
                             std::to_string(timeout.count()) + " ms");
    }
    if (!pending->status.ok()) return pending->status.WithContext("QMP " + command);
    return ReplyResult(command, pending->reply);
  }

  bool connected() const override {
    std::lock_guard<std::mutex> lock(shared_->mu);
    return !shared_->closed && !shared_->close_requested;
  }

  void Close() override {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->close_requested || shared_->closed) return;
    shared_->close_requested = true;
    // Wakes the reader's blocking read (it sees EOF) without freeing the descriptor under it.
    shutdown(shared_->fd, SHUT_RDWR);
  }

  // Marks the connection as handed out to the caller; false if it already ended.
  bool Establish() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->closed) return false;
    shared_->established = true;
    return true;
  }

 private:
  Status WriteAll(const std::string& data) {
    std::lock_guard<std::mutex> lock(shared_->write_mu);
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(shared_->fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Unavailable(std::string("write: ") + std::strerror(errno));
      off += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  static void ReaderLoop(std::shared_ptr<Shared> s, std::string buffer) {
    Status end;
    try {
      end = ReadMessages(*s, &buffer);
    } catch (const std::exception& e) {
      // A callback (or a bug) threw on this thread: it ends this connection, not the process.
      shutdown(s->fd, SHUT_RDWR);
      end = Status::Internal(std::string("QMP reader: ") + e.what());
    }
    bool notify;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->close_requested) end = Status::Ok();
      s->closed = true;
      s->close_reason = end.ok() ? Status::Unavailable("closed by the client") : end;
      Status for_pending = end.ok() ? Status::Unavailable("connection closed by the client")
                           : end.code() == ErrorCode::kCorruption
                               ? end
                               : Status::Unavailable(end.message());
      for (auto& [id, p] : s->pending) {
        p->done = true;
        p->status = for_pending;
      }
      notify = s->established;
    }
    s->cv.notify_all();
    if (notify && s->callbacks.on_closed) s->callbacks.on_closed(end);
  }

  // Returns why the connection ended: OK only if it was closed locally.
  static Status ReadMessages(Shared& s, std::string* buffer) {
    char chunk[8192];
    size_t scanned = 0;  // bytes of `buffer` known to hold no newline: a long line is read once
    while (true) {
      size_t nl;
      while ((nl = buffer->find('\n', scanned)) != std::string::npos) {
        std::string line = buffer->substr(0, nl);
        buffer->erase(0, nl + 1);
        scanned = 0;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        RETURN_IF_ERROR(HandleLine(s, line));
      }
      scanned = buffer->size();
      if (buffer->size() > kMaxLineBytes) {
        shutdown(s.fd, SHUT_RDWR);
        return Status::Corruption("QMP message longer than 16 MiB without a newline");
      }
      ssize_t n = read(s.fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Unavailable(std::string("QMP read: ") + std::strerror(errno));
      if (n == 0) {
        std::lock_guard<std::mutex> lock(s.mu);
        if (s.close_requested) return Status::Ok();
        return Status::Unavailable("QMP socket closed by the peer (QEMU exited?)");
      }
      buffer->append(chunk, static_cast<size_t>(n));
    }
  }

  static Status HandleLine(Shared& s, const std::string& line) {
    Result<Message> msg = ParseMessage(line);
    if (!msg.ok()) {
      shutdown(s.fd, SHUT_RDWR);
      return msg.status();
    }
    if (msg->kind == Message::Kind::kEvent) {
      msg->event.received = Clock::now();
      if (s.callbacks.on_event) s.callbacks.on_event(msg->event);
      return Status::Ok();
    }
    // Replies without our numeric id (e.g. QEMU's answer to unparsable input) match nothing.
    if (msg->kind != Message::Kind::kReply || !msg->id) return Status::Ok();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      auto it = s.pending.find(*msg->id);
      if (it == s.pending.end()) return Status::Ok();  // its caller timed out already
      it->second->done = true;
      it->second->reply = std::move(msg->reply);
    }
    s.cv.notify_all();
    return Status::Ok();
  }

  std::shared_ptr<Shared> shared_;
  std::thread reader_;
};

}  // namespace

Result<std::unique_ptr<Client>> Connect(const std::string& socket_path, Callbacks callbacks,
                                        milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  ASSIGN_OR_RETURN(int fd, ConnectUnix(socket_path, deadline));
  std::string buffer, greeting;
  Status got = ReadLineBefore(fd, deadline, &buffer, &greeting);
  if (!got.ok()) {
    close(fd);
    return got.WithContext("QMP " + socket_path);
  }
  nlohmann::json hello = nlohmann::json::parse(greeting, nullptr, /*allow_exceptions=*/false);
  if (hello.is_discarded() || !hello.is_object() || !hello.contains("QMP")) {
    close(fd);
    return Status::Corruption("QMP " + socket_path +
                              ": expected a greeting, got: " + Excerpt(greeting));
  }
  auto client = std::make_unique<ClientImpl>(fd, std::move(callbacks), std::move(buffer));
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  auto caps = client->Execute("qmp_capabilities", nullptr, std::max(left, milliseconds(1)));
  if (!caps.ok()) return caps.status().WithContext(socket_path);
  if (!client->Establish()) {
    return Status::Unavailable("QMP " + socket_path + ": closed during negotiation");
  }
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace chaoslab::qmp
