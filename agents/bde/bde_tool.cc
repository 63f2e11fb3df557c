#include "agents/bde/bde_tool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "agents/bde/bde_image.h"

namespace chaoslab::bde {
namespace {

const char kUsage[] =
    "usage: chaoslab-bde encrypt --in PLAIN.img --out ENC.img --recovery-password-out FILE\n"
    "                            --tpm-secret-out FILE [--seed TEXT] [--iterations N]\n"
    "       chaoslab-bde inspect IMG\n"
    "       chaoslab-bde check IMG KEY\n"
    "       chaoslab-bde decrypt --in ENC.img --out PLAIN.img KEY\n"
    "KEY: --recovery-password PW | --recovery-password-file FILE | --tpm-secret HEX |\n"
    "     --tpm-secret-file FILE\n";

// "--flag value" pairs and plain words. Every flag takes a value.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> words;
};

Result<Args> Split(const std::vector<std::string>& args, const std::vector<std::string>& known) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.starts_with("--")) {
      if (std::find(known.begin(), known.end(), a) == known.end()) {
        return Status::InvalidArgument("unknown option " + a);
      }
      if (i + 1 >= args.size()) return Status::InvalidArgument(a + " needs a value");
      if (!out.flags.emplace(a, args[i + 1]).second) {
        return Status::InvalidArgument(a + " given twice");
      }
      ++i;
    } else {
      out.words.push_back(a);
    }
  }
  return out;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::IoError("cannot read " + path);
  std::string line;
  std::getline(f, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

Status WriteSecretFile(const std::string& path, const std::string& secret) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + path, errno);
  std::string line = secret + "\n";
  bool ok = fchmod(fd, 0600) == 0 &&
            write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  int err = errno;
  if (close(fd) != 0 && ok) return Status::FromErrno("close " + path, errno);
  if (!ok) return Status::FromErrno("write " + path, err);
  return Status::Ok();
}

const std::vector<std::string> kKeyFlags = {"--recovery-password", "--recovery-password-file",
                                            "--tpm-secret", "--tpm-secret-file"};

// The volume key from exactly one KEY option. `code` gets the exit code on failure.
Result<VolumeKey> KeyFrom(const Args& a, const VolumeHeader& header, int* code) {
  *code = kToolExitUsage;
  std::optional<std::string> password, tpm;
  int given = 0;
  for (const std::string& f : kKeyFlags) given += static_cast<int>(a.flags.count(f));
  if (given != 1) return Status::InvalidArgument("give exactly one KEY option");
  if (auto it = a.flags.find("--recovery-password"); it != a.flags.end()) password = it->second;
  if (auto it = a.flags.find("--tpm-secret"); it != a.flags.end()) tpm = it->second;
  if (auto it = a.flags.find("--recovery-password-file"); it != a.flags.end()) {
    *code = kToolExitError;
    ASSIGN_OR_RETURN(password, ReadSecretFile(it->second));
  }
  if (auto it = a.flags.find("--tpm-secret-file"); it != a.flags.end()) {
    *code = kToolExitError;
    ASSIGN_OR_RETURN(tpm, ReadSecretFile(it->second));
  }
  *code = kToolExitError;
  return password ? UnlockWithRecoveryPassword(header, *password)
                  : UnlockWithTpmSecret(header, *tpm);
}

int Error(std::ostream& err, const Status& s, int code) {
  err << "chaoslab-bde: " << s.message() << "\n";
  return code;
}

int UsageError(std::ostream& err, const std::string& why) {
  err << "chaoslab-bde: " << why << "\n" << kUsage;
  return kToolExitUsage;
}

int Encrypt(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Result<Args> a = Split(args, {"--in", "--out", "--recovery-password-out", "--tpm-secret-out",
                                "--seed", "--iterations"});
  if (!a.ok()) return UsageError(err, a.status().message());
  if (!a->words.empty()) return UsageError(err, "unexpected argument '" + a->words[0] + "'");
  for (const char* required : {"--in", "--out", "--recovery-password-out", "--tpm-secret-out"}) {
    if (!a->flags.count(required)) return UsageError(err, std::string(required) + " is required");
  }
  EncryptOptions o;
  o.in = a->flags["--in"];
  o.out = a->flags["--out"];
  if (a->flags.count("--seed")) o.seed = a->flags["--seed"];
  if (a->flags.count("--iterations")) {
    const std::string& v = a->flags["--iterations"];
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), o.iterations);
    if (ec != std::errc() || p != v.data() + v.size() || o.iterations == 0) {
      return UsageError(err, "--iterations must be a positive number, got '" + v + "'");
    }
  }
  Result<EncryptedImage> r = EncryptImage(o);
  if (!r.ok()) {
    return Error(
        err, r.status(),
        r.status().code() == ErrorCode::kInvalidArgument ? kToolExitUsage : kToolExitError);
  }
  Status s = WriteSecretFile(a->flags["--recovery-password-out"], r->recovery_password);
  if (s.ok()) s = WriteSecretFile(a->flags["--tpm-secret-out"], r->tpm_secret_hex);
  if (!s.ok()) {
    unlink(o.out.c_str());  // an image nobody can unlock is of no use
    return Error(err, s, kToolExitError);
  }
  out << "encrypted " << o.in << " -> " << o.out << " (key id " << r->header.KeyId() << ", "
      << r->header.data_sectors << " sectors, aes-xts-plain64)\n";
  return 0;
}

int Inspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() != 1) return UsageError(err, "inspect takes one image");
  Result<VolumeHeader> h = ReadImageHeader(args[0]);
  if (!h.ok()) {
    return Error(
        err, h.status(),
        h.status().code() == ErrorCode::kNotFound ? kToolExitNotEncrypted : kToolExitError);
  }
  out << "format: chaoslab-bde " << h->version << "\n"
      << "key-id: " << h->KeyId() << "\n"
      << "volume-id: " << ToHex(h->volume_id) << "\n"
      << "cipher: " << h->cipher << " (" << h->key_bytes * 8 << "-bit key, " << h->sector_bytes
      << "-byte sectors)\n"
      << "data-offset-sectors: " << h->data_offset_sectors << "\n"
      << "data-sectors: " << h->data_sectors << "\n"
      << "pbkdf2-iterations: " << h->pbkdf2_iterations << "\n"
      << "protectors:";
  for (const Protector& p : h->protectors) out << " " << ProtectorTypeName(p.type);
  out << "\n";
  return 0;
}

int Check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Result<Args> a = Split(args, kKeyFlags);
  if (!a.ok()) return UsageError(err, a.status().message());
  if (a->words.size() != 1) return UsageError(err, "check takes one image and one KEY");
  Result<VolumeHeader> h = ReadImageHeader(a->words[0]);
  if (!h.ok()) {
    return Error(
        err, h.status(),
        h.status().code() == ErrorCode::kNotFound ? kToolExitNotEncrypted : kToolExitError);
  }
  int code = 0;
  Result<VolumeKey> key = KeyFrom(*a, *h, &code);
  if (!key.ok()) {
    if (code == kToolExitUsage) return UsageError(err, key.status().message());
    return Error(err, key.status(), code);
  }
  SecureWipe(*key);
  out << "the key unlocks " << a->words[0] << "\n";
  return 0;
}

int Decrypt(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> known = kKeyFlags;
  known.push_back("--in");
  known.push_back("--out");
  Result<Args> a = Split(args, known);
  if (!a.ok()) return UsageError(err, a.status().message());
  if (!a->words.empty() || !a->flags.count("--in") || !a->flags.count("--out")) {
    return UsageError(err, "decrypt needs --in, --out and one KEY");
  }
  Result<VolumeHeader> h = ReadImageHeader(a->flags["--in"]);
  if (!h.ok()) {
    return Error(
        err, h.status(),
        h.status().code() == ErrorCode::kNotFound ? kToolExitNotEncrypted : kToolExitError);
  }
  int code = 0;
  Result<VolumeKey> key = KeyFrom(*a, *h, &code);
  if (!key.ok()) {
    if (code == kToolExitUsage) return UsageError(err, key.status().message());
    return Error(err, key.status(), code);
  }
  Status s = DecryptImage(a->flags["--in"], a->flags["--out"], *key);
  SecureWipe(*key);
  if (!s.ok()) return Error(err, s, kToolExitError);
  out << "decrypted " << a->flags["--in"] << " -> " << a->flags["--out"] << "\n";
  return 0;
}

}  // namespace

int BdeToolMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) return UsageError(err, "no command");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  const std::string& cmd = args[0];
  if (cmd == "encrypt") return Encrypt(rest, out, err);
  if (cmd == "inspect") return Inspect(rest, out, err);
  if (cmd == "check") return Check(rest, out, err);
  if (cmd == "decrypt") return Decrypt(rest, out, err);
  if (cmd == "-h" || cmd == "--help") {
    out << kUsage;
    return 0;
  }
  return UsageError(err, "unknown command '" + cmd + "'");
}

}  // namespace chaoslab::bde
