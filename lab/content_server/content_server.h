// The lab's content server: the "cloud" that guests fetch channel files from
// (docs/GUEST-PROTOCOL.md).
//
// HTTP/1.0 and 1.1 on a loopback address, served by one io thread of its own (Boost.Beast).
//   GET /v1/manifest?host=<id>              200 text/plain, "291 <version> <file-name>\n" per
//                                          channel, after "quarantine 291 <file-name>\n" lines
//                                          for a host under the cloud remediation (Quarantine)
//   GET /v1/content/<file-name>?host=<id>   200 application/octet-stream with the bytes, or
//   404
//   GET /v1/escrow/key?host=<id>           200 the host's BitLocker recovery password (one line),
//                                          only on a connection that host's relay opened
//                                          (host_credential.h), 403 on any other, 404 unknown
//                                          host, 503 escrow down or none attached, 400 without
//                                          host=
//   GET /v1/pxe/boot?host=<id>             200 the PXE repair plan (text), 404 if none is set
// Anything else is 404 (unknown path), 405 (method other than GET), 400 (malformed request),
// 431 (headers too large) or 413 (a body on a GET). Idle or slow connections are closed after
// Options::request_timeout.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"
#include "lab/content_server/key_escrow.h"

namespace chaoslab {

// One published channel file. Immutable once published.
struct PublishedFile {
  int channel = 0;
  uint32_t version = 0;
  std::string file_name;
  std::shared_ptr<const std::string> bytes;
};

// Decides which version of a channel a host sees in its manifest. This is where rollout rings,
// customer pinning (N-1) or a withdrawn release plug in; the default shows the newest version.
// Called on the server's io thread with the server's catalog lock held: it must be quick and must
// not call back into the ContentServer.
class ContentPolicy {
 public:
  virtual ~ContentPolicy() = default;
  // `published` holds every version of one channel, ascending by version, never empty.
  // Returns the entry `host_id` sees, or nullptr to leave the channel out of its manifest.
  // `host_id` is empty when the request named no host.
  virtual const PublishedFile* Select(std::string_view host_id,
                                      std::span<const PublishedFile> published) const = 0;
};

// Every host sees the newest published version of every channel.
class NewestContentPolicy : public ContentPolicy {
 public:
  const PublishedFile* Select(std::string_view host_id,
                              std::span<const PublishedFile> published) const override;
};

// The HTTP content server. Thread-safe: every method may be called from any thread, except that
// Stop() (and the destructor) must not be called from the observer or a policy (the io thread).
class ContentServer {
 public:
  struct Options {
    std::string bind = "127.0.0.1";  // must be a loopback address (127.0.0.0/8 or ::1)
    int port = 0;                    // 0 = an ephemeral port; see port()
    // A connection that does not complete a request (or accept a response) within this time is
    // closed; this also bounds how long an idle keep-alive connection stays open.
    std::chrono::milliseconds request_timeout{10000};
    uint32_t max_header_bytes = 8192;  // request line + headers; larger requests get 431
    int max_connections = 256;         // further connections are accepted and closed at once
  };

  // One answered (or refused) request, as the observer sees it.
  struct Request {
    std::string host_id;  // the ?host= value; empty if absent or the request was unparseable
    std::string method;   // "GET", ...; empty if the request was unparseable
    std::string path;     // the target without its query string
    int status = 0;       // HTTP status sent
    size_t bytes = 0;     // body bytes sent
    std::chrono::steady_clock::time_point at;  // when the response was queued
  };

  // Binds, listens and starts the io thread. InvalidArgument for a bad or non-loopback bind
  // address or port; IoError if the address cannot be bound.
  static Result<std::unique_ptr<ContentServer>> Start(Options options);

  // A server that does not listen (no socket, no io thread), for tests and lab/fuzz: Publish,
  // the policy, the escrow, the PXE plan and AnswerBytes work as on a started one. Fails like
  // Start on bad options.
  static Result<std::unique_ptr<ContentServer>> Unstarted(Options options);

  // Answers the requests in `bytes` as one connection that sent them would be answered (the
  // same parser, limits, routes and observer), without a socket: the responses as written, in
  // order. Stops where the connection would: after a response that closes it, or at a request
  // that is not complete (the connection would wait for the rest, then time out).
  std::string AnswerBytes(std::string_view bytes) const;

  ~ContentServer();
  ContentServer(const ContentServer&) = delete;
  ContentServer& operator=(const ContentServer&) = delete;

  // The TCP port the server listens on (the ephemeral one when Options::port was 0).
  int port() const;
  // The kernel thread id of the io thread that serves every request (lab_priority.h raises it);
  // 0 for an Unstarted server.
  pid_t io_thread_id() const;

  // Makes `bytes` the newest content of `channel` for every host (subject to the policy).
  // Older versions stay downloadable by name. InvalidArgument if channel <= 0, the file name is
  // not a plain name ([A-Za-z0-9._-], not starting with '.', at most 255 characters) or is already
  // published; FailedPrecondition if `version` is not greater than the channel's newest version.
  Status Publish(int channel, uint32_t version, std::string file_name, std::string bytes);

  // Replaces the policy (nullptr restores NewestContentPolicy). Takes effect for the next request.
  void SetPolicy(std::shared_ptr<const ContentPolicy> policy);

  // Called for every request, on the io thread, after the response is queued. Keep it short;
  // it must not call Stop(). nullptr removes it.
  void SetObserver(std::function<void(const Request&)> observer);

  // Answers /v1/escrow/key from `escrow`; nullptr detaches it (503 from then on). Not owned: it
  // must stay alive until it is detached or the server is stopped. A lookup in flight finishes
  // before this returns.
  void AttachEscrow(KeyEscrow* escrow);

  // The plan /v1/pxe/boot serves to every host (docs/GUEST-PROTOCOL.md: lines such as
  // "unlock escrow" and "delete C-00000291*.sys"). Empty = no plan (404).
  void SetPxePlan(std::string plan);

  // The vendor's cloud remediation: from now on the manifest of each of `hosts` begins with
  // "quarantine <channel> <file_name>" (docs/GUEST-PROTOCOL.md), which its sensor acts on before
  // anything else. Adds to earlier calls (a host named twice gets the line once). InvalidArgument
  // for a bad host id or file name; FailedPrecondition when `file_name` is not a published file of
  // `channel` (the cloud quarantines only what it once served).
  Status Quarantine(int channel, const std::string& file_name,
                    const std::vector<std::string>& hosts);

  // The manifest body `host_id` would receive now (what the policy shows it).
  std::string ManifestFor(std::string_view host_id) const;

  // Closes the listener and every connection and joins the io thread. Idempotent; the
  // destructor calls it. Publish/ManifestFor keep working afterwards (nothing is served).
  void Stop();

 private:
  struct Impl;
  explicit ContentServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True if `name` may be published and requested: [A-Za-z0-9._-]{1,255}, not starting with '.'.
bool IsValidContentFileName(std::string_view name);
// True if `id` is a host id per the guest protocol: [A-Za-z0-9_-]{1,128}.
bool IsValidHostId(std::string_view id);

}  // namespace chaoslab
