// chaoslab-content-fixture: the real ContentServer with a key escrow and a PXE plan, for tests
// that boot guests (images/winsim/recovery_selftest.py) without the whole lab.
//
//   chaoslab-content-fixture [--escrow HOST=PASSWORD_FILE]... [--credential-out HOST=FILE]...
//                            [--pxe-plan FILE] [--escrow-down]
//
// --credential-out issues HOST's escrow credential and writes it to FILE (0600, new), for the
// chaoslab-relay that the test puts on the guest's link (host_credential.h).
// Prints "port <n>" once listening (127.0.0.1), logs each request to stderr as
// "<status> <path> host=<id>", and reads commands on stdin: "escrow up", "escrow down". Exits 0
// at the end of stdin, 2 on bad arguments, 1 if it cannot start.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "lab/common/secret_file.h"
#include "lab/content_server/content_server.h"
#include "lab/content_server/key_escrow.h"

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return true;
}

int Usage(const std::string& why) {
  std::cerr << "chaoslab-content-fixture: " << why
            << "\nusage: chaoslab-content-fixture [--escrow HOST=PASSWORD_FILE]... "
               "[--credential-out HOST=FILE]... [--pxe-plan FILE] [--escrow-down]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using chaoslab::ContentServer;
  std::vector<std::string> args(argv + 1, argv + argc);
  chaoslab::KeyEscrow escrow;
  std::string plan;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--escrow-down") {
      escrow.SetAvailable(false);
    } else if (a == "--credential-out" && i + 1 < args.size()) {
      // HOST=FILE: a credential for HOST, written to FILE (0600) for the test's relay.
      const std::string& v = args[++i];
      size_t eq = v.find('=');
      if (eq == std::string::npos)
        return Usage("--credential-out needs HOST=FILE, got '" + v + "'");
      const std::string path = v.substr(eq + 1);
      chaoslab::Status written =
          chaoslab::WriteSecretFile(path, escrow.IssueCredential(v.substr(0, eq)));
      if (!written.ok()) return Usage("credential file: " + written.ToString());
    } else if ((a == "--escrow" || a == "--pxe-plan") && i + 1 < args.size()) {
      const std::string& v = args[++i];
      if (a == "--pxe-plan") {
        if (!ReadFile(v, &plan)) return Usage("cannot read " + v);
        continue;
      }
      size_t eq = v.find('=');
      std::string password;
      if (eq == std::string::npos || !ReadFile(v.substr(eq + 1), &password)) {
        return Usage("--escrow needs HOST=PASSWORD_FILE, got '" + v + "'");
      }
      while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
        password.pop_back();
      }
      escrow.Store(v.substr(0, eq), password);
    } else {
      return Usage("unexpected argument '" + a + "'");
    }
  }
  auto server = ContentServer::Start({});
  if (!server.ok()) {
    std::cerr << "chaoslab-content-fixture: " << server.status().ToString() << "\n";
    return 1;
  }
  (*server)->AttachEscrow(&escrow);
  (*server)->SetPxePlan(plan);
  (*server)->SetObserver([](const ContentServer::Request& r) {
    std::fprintf(stderr, "%d %s host=%s\n", r.status, r.path.c_str(), r.host_id.c_str());
  });
  std::printf("port %d\n", (*server)->port());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "escrow up") escrow.SetAvailable(true);
    if (line == "escrow down") escrow.SetAvailable(false);
  }
  (*server)->Stop();
  (*server)->AttachEscrow(nullptr);
  return 0;
}
