#include "lab/content_server/content_server.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "lab/content_server/host_credential.h"

namespace chaoslab {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kManifestPath = "/v1/manifest";
constexpr std::string_view kContentPrefix = "/v1/content/";
constexpr std::string_view kEscrowPath = "/v1/escrow/key";
constexpr std::string_view kPxePath = "/v1/pxe/boot";
constexpr std::string_view kServerName = "chaoslab-content";

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

// The value of `key` in a query string "a=1&host=x"; nullopt if absent.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

const PublishedFile* NewestContentPolicy::Select(std::string_view /*host_id*/,
                                                 std::span<const PublishedFile> published) const {
  return published.empty() ? nullptr : &published.back();
}

bool IsValidContentFileName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return IsNameChar(c) || c == '.'; });
}

bool IsValidHostId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), IsNameChar);
}

namespace {

// What the io thread and the public methods share. Outlives every session (they hold a shared_ptr).
struct Catalog {
  mutable std::mutex mu;
  std::map<int, std::vector<PublishedFile>> channels;  // ascending by version
  std::map<std::string, PublishedFile, std::less<>> by_name;
  std::shared_ptr<const ContentPolicy> policy = std::make_shared<NewestContentPolicy>();
  std::shared_ptr<const std::function<void(const ContentServer::Request&)>> observer;
  KeyEscrow* escrow = nullptr;  // not owned; see AttachEscrow
  std::string pxe_plan;         // empty: none
  // Hosts under the cloud remediation: their quarantine lines (Quarantine).
  std::map<std::string, std::string, std::less<>> quarantine;

  std::string Manifest(std::string_view host_id) const {
    std::lock_guard<std::mutex> lock(mu);
    std::string out;
    if (auto q = quarantine.find(host_id); !host_id.empty() && q != quarantine.end()) {
      out = q->second;
    }
    for (const auto& [channel, versions] : channels) {
      const PublishedFile* file = policy->Select(host_id, versions);
      if (file == nullptr) continue;
      out += std::to_string(channel) + " " + std::to_string(file->version) + " " + file->file_name +
             "\n";
    }
    return out;
  }

  std::shared_ptr<const std::string> Content(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second.bytes;
  }

  // The escrow is asked with the catalog lock held, so that AttachEscrow(nullptr) waits for a
  // lookup in flight (the escrow never calls back into the server: no lock-order problem).
  // Returns the HTTP status and fills `body`.
  // `link_host` is the host whose credential the connection presented (empty: none).
  http::status EscrowKey(const std::string& host_id, const std::string& link_host,
                         std::string* body) const {
    std::lock_guard<std::mutex> lock(mu);
    if (escrow == nullptr) {
      *body = "no key escrow\n";
      return http::status::service_unavailable;
    }
    if (link_host.empty()) {
      *body =
          "no host credential on this connection: the escrow gives a host its key only over "
          "that host's own link\n";
      return http::status::forbidden;
    }
    if (link_host != host_id) {
      *body = "this link is host " + link_host + "'s: it may not have host " + host_id + "'s key\n";
      return http::status::forbidden;
    }
    Result<std::string> key = escrow->Lookup(host_id);
    if (key.ok()) {
      *body = *key + "\n";
      return http::status::ok;
    }
    *body = key.status().message() + "\n";
    return key.status().code() == ErrorCode::kNotFound ? http::status::not_found
                                                       : http::status::service_unavailable;
  }

  // The host `credential` was issued to, by the attached escrow; nullopt if none.
  std::optional<std::string> HostOfCredential(std::string_view credential) const {
    std::lock_guard<std::mutex> lock(mu);
    if (escrow == nullptr) return std::nullopt;
    return escrow->HostOfCredential(credential);
  }

  std::string PxePlan() const {
    std::lock_guard<std::mutex> lock(mu);
    return pxe_plan;
  }

  void Notify(const ContentServer::Request& request) const {
    std::shared_ptr<const std::function<void(const ContentServer::Request&)>> copy;
    {
      std::lock_guard<std::mutex> lock(mu);
      copy = observer;
    }
    if (copy && *copy) (*copy)(request);
  }
};

struct Limits {
  std::chrono::milliseconds request_timeout;
  uint32_t max_header_bytes;
};

// What one request gets: the response to send and what the observer sees.
struct Reply {
  http::status status = http::status::ok;
  unsigned version = 11;
  bool keep_alive = false;
  std::string_view content_type = "text/plain";
  std::shared_ptr<const std::string> body;
  ContentServer::Request seen;  // `at` is stamped when the response is queued
};

// A reply whose body is `why` and a newline (the routes then replace the body of a 200).
Reply TextReply(http::status status, unsigned version, bool keep_alive, std::string_view method,
                std::string_view path, std::string_view host_id, std::string_view why) {
  Reply reply;
  reply.status = status;
  reply.version = version;
  reply.keep_alive = keep_alive;
  reply.body = std::make_shared<const std::string>(std::string(why) + "\n");
  reply.seen.method = std::string(method);
  reply.seen.path = std::string(path);
  reply.seen.host_id = std::string(host_id);
  return reply;
}

// The answer to a request the parser refused with `ec` (once, then the connection closes: the
// stream cannot be resynchronised).
Reply ParseErrorReply(beast::error_code ec) {
  http::status status = http::status::bad_request;
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    status = http::status::request_header_fields_too_large;
  } else if (ec == http::error::body_limit) {
    status = http::status::payload_too_large;
  }
  return TextReply(status, /*version=*/11, /*keep_alive=*/false, {}, {}, {}, ec.message());
}

// What a connection has said so far that later requests depend on.
struct ConnectionState {
  int requests = 0;       // requests read on this connection
  std::string link_host;  // the host whose relay opened it (host_credential.h); empty: unknown
};

// Routes one parsed request against the catalog. Pure but for the catalog's lookups.
Reply Route(const Catalog& catalog, const std::string& link_host,
            const http::request<http::empty_body>& req) {
  std::string_view target = ToStd(req.target());
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string method(ToStd(req.method_string()));
  std::string host_id;
  if (auto host = QueryParam(query, "host")) {
    if (!IsValidHostId(*host)) {
      return TextReply(http::status::bad_request, req.version(), false, method, path, {},
                       "bad host id");
    }
    host_id = std::string(*host);
  }
  auto error = [&](http::status status, std::string_view why) {
    return TextReply(status, req.version(), req.keep_alive(), method, path, host_id, why);
  };
  bool is_manifest = path == kManifestPath;
  bool is_content = path.size() > kContentPrefix.size() && path.starts_with(kContentPrefix);
  bool is_escrow = path == kEscrowPath;
  bool is_pxe = path == kPxePath;
  if (!is_manifest && !is_content && !is_escrow && !is_pxe) {
    return error(http::status::not_found, "no such resource");
  }
  if (req.method() != http::verb::get) {
    return error(http::status::method_not_allowed, "only GET is allowed");
  }
  Reply reply =
      TextReply(http::status::ok, req.version(), req.keep_alive(), method, path, host_id, {});
  if (is_escrow) {
    if (host_id.empty()) return error(http::status::bad_request, "host= is required");
    std::string body;
    reply.status = catalog.EscrowKey(host_id, link_host, &body);
    reply.body = std::make_shared<const std::string>(std::move(body));
  } else if (is_pxe) {
    std::string plan = catalog.PxePlan();
    if (plan.empty()) return error(http::status::not_found, "no PXE boot plan");
    reply.body = std::make_shared<const std::string>(std::move(plan));
  } else if (is_manifest) {
    reply.body = std::make_shared<const std::string>(catalog.Manifest(host_id));
  } else {
    std::string_view name = path.substr(kContentPrefix.size());
    reply.body = IsValidContentFileName(name) ? catalog.Content(name) : nullptr;
    if (reply.body == nullptr) return error(http::status::not_found, "no such content file");
    reply.content_type = "application/octet-stream";
  }
  return reply;
}

// One request of a connection: nullopt for the relay's identify request, which binds the
// connection to a host and is answered with nothing (host_credential.h). It counts only as a
// connection's first request (400 and close otherwise). A credential nobody issued, or no escrow
// to ask, leaves the connection anonymous: manifests and content still flow, the escrow answers
// 403 (or 503 without an escrow).
std::optional<Reply> Answer(const Catalog& catalog, ConnectionState* connection,
                            const http::request<http::empty_body>& req) {
  ++connection->requests;
  if (ToStd(req.method_string()) != kRelayIdentifyMethod) {
    return Route(catalog, connection->link_host, req);
  }
  std::string method(ToStd(req.method_string()));
  if (connection->requests > 1) {
    return TextReply(http::status::bad_request, req.version(), false, method, "/", {},
                     "CHAOSLAB-RELAY is only a connection's first request");
  }
  auto credential =
      req.find(beast::string_view(kRelayCredentialHeader.data(), kRelayCredentialHeader.size()));
  std::optional<std::string> host;
  if (credential != req.end()) host = catalog.HostOfCredential(ToStd(credential->value()));
  connection->link_host = host.value_or("");
  return std::nullopt;
}

// The response `reply` describes, its body referring to `reply.body` (keep that alive).
http::response<http::span_body<const char>> MakeResponse(const Reply& reply) {
  http::response<http::span_body<const char>> response(reply.status, reply.version);
  response.set(http::field::server, beast::string_view(kServerName.data(), kServerName.size()));
  response.set(http::field::content_type,
               beast::string_view(reply.content_type.data(), reply.content_type.size()));
  if (reply.status == http::status::method_not_allowed) response.set(http::field::allow, "GET");
  response.body() = http::span_body<const char>::value_type(reply.body->data(), reply.body->size());
  response.keep_alive(reply.keep_alive);
  response.prepare_payload();
  return response;
}

void NewParser(std::optional<http::request_parser<http::empty_body>>* parser,
               uint32_t header_limit) {
  parser->emplace();
  (*parser)->header_limit(header_limit);
  (*parser)->body_limit(0);  // GET requests carry no body
}

// One client connection: read a request, answer it, repeat while keep-alive. Lives on the io
// thread only; kept alive by the shared_ptr captured in its pending handler.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const Catalog> catalog, Limits limits,
          std::shared_ptr<std::atomic<int>> open_connections)
      : stream_(std::move(socket)),
        catalog_(std::move(catalog)),
        limits_(limits),
        open_connections_(std::move(open_connections)) {
    ++*open_connections_;
  }
  ~Session() { --*open_connections_; }

  void Run() { ReadRequest(); }

 private:
  using Response = http::response<http::span_body<const char>>;

  void ReadRequest() {
    NewParser(&parser_, limits_.max_header_bytes);
    stream_.expires_after(limits_.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();  // the client left or said nothing in time: no one to answer
    }
    if (ec) return Send(ParseErrorReply(ec));
    std::optional<Reply> reply = Answer(*catalog_, &connection_, parser_->get());
    if (!reply) return ReadRequest();  // the relay's identify request: nothing to answer
    Send(std::move(*reply));
  }

  void Send(Reply reply) {
    body_ = reply.body;
    response_.emplace(MakeResponse(reply));
    reply.seen.status = static_cast<int>(reply.status);
    reply.seen.bytes = body_->size();
    reply.seen.at = std::chrono::steady_clock::now();
    try {
      catalog_->Notify(reply.seen);
    } catch (...) {
      // An observer's exception must not take the server down; the response still goes out.
    }

    stream_.expires_after(limits_.request_timeout);
    http::async_write(
        stream_, *response_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec || !response_->keep_alive()) return Close();
    response_.reset();
    body_.reset();
    ReadRequest();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<const Catalog> catalog_;
  Limits limits_;
  std::shared_ptr<std::atomic<int>> open_connections_;
  ConnectionState connection_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::shared_ptr<const std::string> body_;  // the response body, kept alive during the write
  std::optional<Response> response_;
};

}  // namespace

struct ContentServer::Impl {
  Options options;
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  std::shared_ptr<std::atomic<int>> open_connections = std::make_shared<std::atomic<int>>(0);
  // Declared before the acceptor and timer so that it is destroyed after them.
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> retry_timer;
  int port = 0;
  std::thread thread;
  pid_t io_tid = 0;  // the io thread's kernel thread id
  std::mutex stop_mu;
  bool stopped = false;

  void Accept() {
    acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (ec) {
        // Usually out of file descriptors: back off instead of spinning.
        retry_timer->expires_after(std::chrono::milliseconds(50));
        retry_timer->async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      if (open_connections->load() >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio opens without SOCK_CLOEXEC
        std::make_shared<Session>(std::move(socket), catalog,
                                  Limits{options.request_timeout, options.max_header_bytes},
                                  open_connections)
            ->Run();
      }
      Accept();
    });
  }
};

ContentServer::ContentServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ContentServer::~ContentServer() { Stop(); }

namespace {

// The options' own checks, shared by Start and Unstarted; the address it binds on success.
Result<asio::ip::address> CheckOptions(const ContentServer::Options& options) {
  if (options.port < 0 || options.port > 65535) {
    return Status::InvalidArgument("content server: port " + std::to_string(options.port) +
                                   " is out of range 0..65535");
  }
  if (options.request_timeout.count() <= 0 || options.max_header_bytes < 256 ||
      options.max_connections <= 0) {
    return Status::InvalidArgument(
        "content server: request_timeout, max_connections must be positive and "
        "max_header_bytes at least 256");
  }
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(options.bind, ec);
  if (ec) {
    return Status::InvalidArgument("content server: bind address '" + options.bind +
                                   "' is not an IP address");
  }
  if (!address.is_loopback()) {
    return Status::InvalidArgument("content server: refusing to bind to '" + options.bind +
                                   "': only loopback addresses (127.0.0.0/8, ::1) are allowed");
  }
  return address;
}

}  // namespace

Result<std::unique_ptr<ContentServer>> ContentServer::Unstarted(Options options) {
  RETURN_IF_ERROR(CheckOptions(options).status());
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  return std::unique_ptr<ContentServer>(new ContentServer(std::move(impl)));
}

std::string ContentServer::AnswerBytes(std::string_view bytes) const {
  std::string out;
  std::optional<http::request_parser<http::empty_body>> parser;
  ConnectionState connection;
  while (true) {
    NewParser(&parser, impl_->options.max_header_bytes);
    beast::error_code ec;
    size_t used = 0;
    // put() takes what it can from the front; loop as async_read does until done or an error.
    while (!parser->is_done() && !ec) {
      size_t n = parser->put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (ec == http::error::need_more) {
        if (n == 0 || used == bytes.size()) return out;  // incomplete: the connection would wait
        ec = {};
      }
    }
    bytes.remove_prefix(used);
    std::optional<Reply> answer =
        ec ? ParseErrorReply(ec) : Answer(*impl_->catalog, &connection, parser->get());
    if (!answer) continue;  // the relay's identify request: nothing to answer
    Reply reply = std::move(*answer);
    reply.seen.status = static_cast<int>(reply.status);
    reply.seen.bytes = reply.body->size();
    reply.seen.at = std::chrono::steady_clock::now();
    try {
      impl_->catalog->Notify(reply.seen);
    } catch (...) {
      // As on a connection: the observer's exception does not stop the response.
    }
    std::ostringstream wire;
    wire << MakeResponse(reply);
    out += wire.str();
    if (ec || !reply.keep_alive) return out;
  }
}

Result<std::unique_ptr<ContentServer>> ContentServer::Start(Options options) {
  ASSIGN_OR_RETURN(asio::ip::address address, CheckOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::string where = options.bind + ":" + std::to_string(options.port);
  try {
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
    impl->acceptor = std::make_unique<tcp::acceptor>(*impl->io);
    impl->acceptor->open(endpoint.protocol());
    fcntl(impl->acceptor->native_handle(), F_SETFD, FD_CLOEXEC);  // no SOCK_CLOEXEC from Asio
    impl->acceptor->set_option(asio::socket_base::reuse_address(true));
    impl->acceptor->bind(endpoint);
    impl->acceptor->listen(asio::socket_base::max_listen_connections);
    impl->port = impl->acceptor->local_endpoint().port();
    impl->retry_timer = std::make_unique<asio::steady_timer>(*impl->io);
  } catch (const std::exception& e) {
    return Status::IoError("content server: cannot listen on " + where + ": " + e.what());
  }
  impl->Accept();
  Impl* raw = impl.get();
  std::promise<pid_t> tid;
  std::future<pid_t> tid_known = tid.get_future();
  impl->thread = std::thread([raw, &tid] {
    tid.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
    for (;;) {
      try {
        raw->io->run();
        return;
      } catch (...) {
        // A handler threw (it should not): keep serving the other connections.
      }
    }
  });
  impl->io_tid = tid_known.get();
  return std::unique_ptr<ContentServer>(new ContentServer(std::move(impl)));
}

int ContentServer::port() const { return impl_->port; }

pid_t ContentServer::io_thread_id() const { return impl_->io_tid; }

Status ContentServer::Publish(int channel, uint32_t version, std::string file_name,
                              std::string bytes) {
  if (channel <= 0) {
    return Status::InvalidArgument("publish: channel must be positive, got " +
                                   std::to_string(channel));
  }
  if (!IsValidContentFileName(file_name)) {
    return Status::InvalidArgument("publish: '" + file_name +
                                   "' is not a plain file name ([A-Za-z0-9._-], not starting "
                                   "with '.', at most 255 characters)");
  }
  Catalog& catalog = *impl_->catalog;
  std::lock_guard<std::mutex> lock(catalog.mu);
  if (catalog.by_name.count(file_name) != 0) {
    return Status::InvalidArgument("publish: file name '" + file_name + "' is already published");
  }
  std::vector<PublishedFile>& versions = catalog.channels[channel];
  if (!versions.empty() && version <= versions.back().version) {
    return Status::FailedPrecondition(
        "publish: channel " + std::to_string(channel) + " version " + std::to_string(version) +
        " is not newer than the published version " + std::to_string(versions.back().version));
  }
  PublishedFile file{channel, version, file_name,
                     std::make_shared<const std::string>(std::move(bytes))};
  catalog.by_name.emplace(file_name, file);
  versions.push_back(std::move(file));
  return Status::Ok();
}

void ContentServer::SetPolicy(std::shared_ptr<const ContentPolicy> policy) {
  if (!policy) policy = std::make_shared<NewestContentPolicy>();
  std::lock_guard<std::mutex> lock(impl_->catalog->mu);
  impl_->catalog->policy = std::move(policy);
}

void ContentServer::SetObserver(std::function<void(const Request&)> observer) {
  auto shared =
      observer ? std::make_shared<const std::function<void(const Request&)>>(std::move(observer))
               : nullptr;
  std::lock_guard<std::mutex> lock(impl_->catalog->mu);
  impl_->catalog->observer = std::move(shared);
}

void ContentServer::AttachEscrow(KeyEscrow* escrow) {
  std::lock_guard<std::mutex> lock(impl_->catalog->mu);
  impl_->catalog->escrow = escrow;
}

void ContentServer::SetPxePlan(std::string plan) {
  std::lock_guard<std::mutex> lock(impl_->catalog->mu);
  impl_->catalog->pxe_plan = std::move(plan);
}

Status ContentServer::Quarantine(int channel, const std::string& file_name,
                                 const std::vector<std::string>& hosts) {
  if (!IsValidContentFileName(file_name)) {
    return Status::InvalidArgument("quarantine: '" + file_name + "' is not a plain file name");
  }
  for (const std::string& host : hosts) {
    if (!IsValidHostId(host))
      return Status::InvalidArgument("quarantine: bad host id '" + host + "'");
  }
  Catalog& catalog = *impl_->catalog;
  std::lock_guard<std::mutex> lock(catalog.mu);
  auto file = catalog.by_name.find(file_name);
  if (file == catalog.by_name.end() || file->second.channel != channel) {
    return Status::FailedPrecondition("quarantine: '" + file_name +
                                      "' is not a published file of channel " +
                                      std::to_string(channel));
  }
  const std::string line = "quarantine " + std::to_string(channel) + " " + file_name + "\n";
  for (const std::string& host : hosts) {
    std::string& lines = catalog.quarantine[host];
    if (lines.find(line) == std::string::npos) lines += line;
  }
  return Status::Ok();
}

std::string ContentServer::ManifestFor(std::string_view host_id) const {
  return impl_->catalog->Manifest(host_id);
}

void ContentServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->io->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Destroying the io_context destroys the pending handlers, and with them every session and
  // its socket; the acceptor and timer go first because they refer to the io_context.
  impl_->retry_timer.reset();
  impl_->acceptor.reset();
  impl_->io.reset();
}

}  // namespace chaoslab
