// The content server: any bytes a guest could send down its connection, answered without a socket.
#include <boost/beast/http.hpp>
#include <exception>
#include <memory>
#include <set>
#include <vector>

#include "lab/content_server/content_server.h"
#include "lab/content_server/key_escrow.h"
#include "lab/fuzz/lab_fuzz.h"

namespace chaoslab::fuzz {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kKey = "111111-222222-333333-444444-555555-666666-777777-888888";
// h1's link credential (host_credential.h): only a connection that presents it first gets h1's key.
constexpr std::string_view kCredential = "c0ffee00c0ffee00c0ffee00c0ffee00";
const std::map<std::string, std::string> kFiles = {
    {"C-00000291-00000000-00000001.sys", "good v1"},
    {"C-00000291-00000000-00000002.sys", std::string("bad\0v2", 6)},
    {"C-00000007-00000000-00000001.sys", "other channel"}};

struct Fixture {
  KeyEscrow escrow;
  std::unique_ptr<ContentServer> server;
  std::vector<ContentServer::Request> seen;  // what the observer got for the current input

  Fixture() {
    auto made = ContentServer::Unstarted({});
    if (!made.ok()) Fail("content fixture", made.status().ToString());
    server = std::move(*made);
    uint32_t version = 0;
    for (const auto& [name, bytes] : kFiles) {
      int channel = name.starts_with("C-00000291") ? 291 : 7;
      Status published = server->Publish(channel, ++version, name, bytes);
      if (!published.ok()) Fail("content fixture", published.ToString());
    }
    escrow.Store("h1", std::string(kKey));
    escrow.StoreCredential("h1", std::string(kCredential));
    server->AttachEscrow(&escrow);
    server->SetPxePlan("unlock escrow\ndelete C-00000291*.sys\n");
    server->SetObserver([this](const ContentServer::Request& r) { seen.push_back(r); });
  }
};

Fixture& TheFixture() {
  static Fixture* fixture = new Fixture();  // never destroyed: the fuzzer exits with it in use
  return *fixture;
}

const std::set<int> kStatuses = {200, 400, 403, 404, 405, 413, 431, 503};
const std::set<std::string_view> kPaths = {"/v1/manifest", "/v1/escrow/key", "/v1/pxe/boot"};

// One answered request: its response (parsed back from the wire) against what the observer saw.
void CheckExchange(const http::response<http::string_body>& response,
                   const ContentServer::Request& seen, bool escrow_up, bool has_credential,
                   Stats& stats) {
  int status = static_cast<int>(response.result_int());
  ++stats["status_" + std::to_string(status)];
  if (status != seen.status) Fail("content", "the wire and the observer disagree on the status");
  if (!kStatuses.contains(status)) Fail("content", "unexpected status " + std::to_string(status));
  if (response.body().size() != seen.bytes) Fail("content", "body size differs from the observer");
  if (!seen.host_id.empty() && !IsValidHostId(seen.host_id)) Fail("content", "bad host id seen");
  if (status != 200) return;
  if (seen.method != "GET") Fail("content", "200 for method " + seen.method);
  if (seen.path.starts_with("/v1/content/")) {
    auto file = kFiles.find(seen.path.substr(12));
    if (file == kFiles.end() || file->second != response.body()) {
      Fail("content", "200 with other bytes than published for " + seen.path);
    }
  } else if (!kPaths.contains(seen.path)) {
    Fail("content", "200 for path " + seen.path);
  } else if (seen.path == "/v1/escrow/key" &&
             (!escrow_up || !has_credential || seen.host_id != "h1" ||
              response.body() != std::string(kKey) + "\n")) {
    Fail("content", "escrow answered 200 for host '" + seen.host_id + "'");
  }
}

}  // namespace

void CheckContentServer(std::string_view bytes, Stats& stats) {
  Fixture& fixture = TheFixture();
  fixture.seen.clear();
  // The escrow is down for one input in seven (its servers crashed): 503, never the key.
  const bool escrow_up = bytes.size() % 7 != 0;
  fixture.escrow.SetAvailable(escrow_up);
  std::string wire;
  try {
    wire = fixture.server->AnswerBytes(bytes);
  } catch (const std::exception& e) {
    Fail("content threw", e.what());
  }
  // The wire holds exactly one well-formed response per request the observer saw.
  size_t answered = 0;
  std::string_view rest = wire;
  while (!rest.empty()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec || !parser.is_done()) Fail("content", "a response does not parse: " + ec.message());
    rest.remove_prefix(used);
    if (answered >= fixture.seen.size()) Fail("content", "more responses than requests seen");
    CheckExchange(parser.get(), fixture.seen[answered++], escrow_up,
                  bytes.find(kCredential) != std::string_view::npos, stats);
  }
  if (answered != fixture.seen.size()) Fail("content", "a request seen got no response");
  stats["responses"] += static_cast<int64_t>(answered);
}

}  // namespace chaoslab::fuzz
