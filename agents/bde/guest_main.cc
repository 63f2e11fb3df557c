// bde: the winsim guest's BitLocker tool (static; runs from the initramfs). The console and init
// (images/winsim) call it; its exit codes are the interface:
//
//   bde probe DEV                         0 encrypted (prints "key-id=<8 hex>"), 1 not encrypted
//   bde unlock DEV NAME (--tpm HEX | --recovery-password PW)
//                                         0 /dev/mapper/NAME made (prints its path)
//   bde lock NAME                         0 mapping removed
//   bde http-get IP:PORT TARGET [--timeout-ms N]
//                                         0 = HTTP 200 (body on stdout), 3 = 404, 4 = 503,
//                                         5 = another status, 6 = no connection / no answer
// Other exit codes: 2 usage, 3 wrong key or password, 4 malformed password or secret,
// 5 not encrypted, 6 damaged header, 7 device or device-mapper failure. Messages go to stderr.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agents/bde/bde_format.h"
#include "agents/bde/dm_crypt.h"
#include "agents/sensor/cloud_client.h"

namespace chaoslab::bde {
namespace {

enum Exit {
  kOk = 0,
  kNo = 1,
  kUsage = 2,
  kWrongKey = 3,
  kMalformed = 4,
  kNotEncrypted = 5,
  kDamaged = 6,
  kDevice = 7,
};
enum HttpExit { kHttpOk = 0, kHttp404 = 3, kHttp503 = 4, kHttpOther = 5, kHttpNoAnswer = 6 };

int Usage() {
  std::fputs(
      "usage: bde probe DEV\n"
      "       bde unlock DEV NAME (--tpm HEX | --recovery-password PW)\n"
      "       bde lock NAME\n"
      "       bde http-get IP:PORT TARGET [--timeout-ms N]\n",
      stderr);
  return kUsage;
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "bde: %s\n", message.c_str());
  return code;
}

struct Device {
  VolumeHeader header;
  uint32_t major = 0;
  uint32_t minor = 0;
  uint64_t bytes = 0;
};

// Reads and parses the header of `path`. On failure returns the exit code through `code`.
Result<Device> OpenDevice(const std::string& path, int* code) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *code = kDevice;
    return Status::FromErrno("open " + path, errno);
  }
  struct stat st {};
  std::vector<uint8_t> buf(kHeaderBytes);
  ssize_t n = fstat(fd, &st) == 0 ? pread(fd, buf.data(), buf.size(), 0) : -1;
  int err = errno;
  Device d;
  if (S_ISBLK(st.st_mode)) {
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    if (ioctl(fd, BLKGETSIZE64, &d.bytes) != 0) d.bytes = 0;
  } else {
    d.bytes = static_cast<uint64_t>(st.st_size);
  }
  close(fd);
  if (n < 0) {
    *code = kDevice;
    return Status::FromErrno("read " + path, err);
  }
  buf.resize(static_cast<size_t>(n));
  Result<VolumeHeader> header = ParseHeader(buf);
  if (!header.ok()) {
    *code = header.status().code() == ErrorCode::kNotFound ? kNotEncrypted : kDamaged;
    return header.status().WithContext(path);
  }
  d.header = std::move(*header);
  uint64_t end = (d.header.data_offset_sectors + d.header.data_sectors) * kSectorBytes;
  if (d.bytes != 0 && end > d.bytes) {
    *code = kDamaged;
    return Status::Corruption(path + ": the header describes " + std::to_string(end) +
                              " bytes but the disk has " + std::to_string(d.bytes));
  }
  return d;
}

int Probe(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage();
  int code = kOk;
  Result<Device> d = OpenDevice(args[0], &code);
  if (!d.ok()) {
    if (code == kNotEncrypted) return kNo;
    return Fail(code, d.status().message());
  }
  std::printf("key-id=%s\n", d->header.KeyId().c_str());
  return kOk;
}

int Unlock(const std::vector<std::string>& args) {
  if (args.size() != 4) return Usage();
  const std::string& path = args[0];
  const std::string& name = args[1];
  const std::string& how = args[2];
  const std::string& secret = args[3];
  if (how != "--tpm" && how != "--recovery-password") return Usage();
  int code = kOk;
  Result<Device> d = OpenDevice(path, &code);
  if (!d.ok()) return Fail(code, d.status().message());

  // A malformed password or secret is refused before the (slow) key derivation; a well-formed
  // wrong one fails the wrapped key's tag.
  ProtectorType type = how == "--tpm" ? ProtectorType::kTpm : ProtectorType::kRecoveryPassword;
  const Protector* protector = d->header.Find(type);
  if (protector == nullptr) {
    return Fail(kWrongKey,
                "the volume has no " + std::string(ProtectorTypeName(type)) + " protector");
  }
  Kek kek{};
  if (type == ProtectorType::kTpm) {
    Result<TpmSecret> s = ParseTpmSecret(secret);
    if (!s.ok()) return Fail(kMalformed, s.status().message());
    kek = KekFromTpmSecret(*s, d->header);
    SecureWipe(*s);
  } else {
    Result<RecoveryKey> k = ParseRecoveryPassword(secret);
    if (!k.ok()) return Fail(kMalformed, k.status().message());
    kek = KekFromRecoveryKey(*k, d->header);
    SecureWipe(*k);
  }
  Result<VolumeKey> key = UnwrapKey(d->header, *protector, kek);
  SecureWipe(kek);
  if (!key.ok()) return Fail(kWrongKey, key.status().message());
  CryptTarget target;
  target.name = name;
  target.backing_major = d->major;
  target.backing_minor = d->minor;
  target.offset_sectors = d->header.data_offset_sectors;
  target.sectors = d->header.data_sectors;
  target.cipher = d->header.cipher;
  target.key = *key;
  Result<std::string> node = ActivateCryptMapping(target);
  SecureWipe(*key);
  if (!node.ok()) return Fail(kDevice, node.status().message());
  std::printf("%s\n", node->c_str());
  return kOk;
}

int Lock(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage();
  Status s = RemoveMapping(args[0]);
  if (!s.ok()) return Fail(s.code() == ErrorCode::kNotFound ? kNo : kDevice, s.message());
  return kOk;
}

int HttpGet(const std::vector<std::string>& args) {
  if (args.size() != 2 && args.size() != 4) return Usage();
  long timeout_ms = 5000;
  if (args.size() == 4) {
    if (args[2] != "--timeout-ms") return Usage();
    char* end = nullptr;
    timeout_ms = std::strtol(args[3].c_str(), &end, 10);
    if (*end != '\0' || timeout_ms <= 0) return Usage();
  }
  Result<content::Endpoint> server = content::ParseEndpoint(args[0]);
  if (!server.ok()) return Fail(kUsage, server.status().message());
  if (args[1].empty() || args[1][0] != '/') return Fail(kUsage, "the target must start with '/'");
  Result<content::HttpResponse> r =
      content::HttpGet(*server, args[1], std::chrono::milliseconds(timeout_ms));
  if (!r.ok()) return Fail(kHttpNoAnswer, "GET " + args[1] + ": " + r.status().message());
  if (r->status != 200) {
    std::fprintf(stderr, "bde: GET %s: HTTP %d\n", args[1].c_str(), r->status);
    if (r->status == 404) return kHttp404;
    if (r->status == 503) return kHttp503;
    return kHttpOther;
  }
  std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  return kHttpOk;
}

}  // namespace
}  // namespace chaoslab::bde

int main(int argc, char** argv) {
  using namespace chaoslab::bde;
  if (argc < 2) return Usage();
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "probe") return Probe(args);
  if (command == "unlock") return Unlock(args);
  if (command == "lock") return Lock(args);
  if (command == "http-get") return HttpGet(args);
  return Usage();
}
