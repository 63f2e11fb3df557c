#include "agents/bde/bde_image.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

namespace chaoslab::bde {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

// A file descriptor that closes itself.
class File {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  ~File() {
    if (fd_ >= 0) close(fd_);
  }
  File(File&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }
  Status Close(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return Status::FromErrno("close " + path, errno);
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

Result<File> OpenRead(const std::string& path, uint64_t* size) {
  File f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) return Status::FromErrno("open " + path, errno);
  struct stat st {};
  if (fstat(f.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  *size = static_cast<uint64_t>(st.st_size);
  return f;
}

Status ReadFull(int fd, uint8_t* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("read " + path, errno);
    if (r == 0) return Status::IoError("read " + path + ": unexpected end of file");
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const uint8_t* buf, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno("write " + path, errno);
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// An output written under a temporary name and renamed into place by Commit(); removed if the
// object goes away before that.
class Output {
 public:
  static Result<Output> Create(const std::string& path) {
    if (access(path.c_str(), F_OK) == 0) {
      return Status::InvalidArgument("'" + path + "' already exists");
    }
    Output o;
    o.path_ = path;
    o.tmp_ = path + ".XXXXXX";
    int fd = mkstemp(o.tmp_.data());
    if (fd < 0) return Status::FromErrno("create a temporary file next to " + path, errno);
    o.file_ = File(fd);
    return o;
  }
  Output() = default;
  Output(Output&& o) noexcept
      : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), file_(std::move(o.file_)) {
    o.tmp_.clear();
  }
  ~Output() {
    if (!tmp_.empty()) unlink(tmp_.c_str());
  }
  int fd() const { return file_.get(); }
  Status Commit() {
    if (fsync(file_.get()) != 0) return Status::FromErrno("fsync " + tmp_, errno);
    if (fchmod(file_.get(), 0644) != 0) return Status::FromErrno("chmod " + tmp_, errno);
    RETURN_IF_ERROR(file_.Close(tmp_));
    if (rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Status::FromErrno("rename " + tmp_ + " to " + path_, errno);
    }
    tmp_.clear();
    return Status::Ok();
  }

 private:
  std::string path_;
  std::string tmp_;
  File file_;
};

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

Status XtsSectors(const VolumeKey& key, uint64_t first_sector, std::span<uint8_t> data,
                  bool encrypt) {
  if (data.size() % kSectorBytes != 0) {
    return Status::InvalidArgument("XTS: " + std::to_string(data.size()) +
                                   " bytes is not a whole number of 512-byte sectors");
  }
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx ||
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_xts(), nullptr, key.data(), nullptr, encrypt) != 1) {
    return Status::Internal("OpenSSL: cannot set up aes-256-xts");
  }
  for (size_t off = 0; off < data.size(); off += kSectorBytes) {
    uint8_t iv[16] = {};
    uint64_t sector = first_sector + off / kSectorBytes;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(sector >> (8 * i));
    int out_len = 0;
    if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, iv, encrypt) != 1 ||
        EVP_CipherUpdate(ctx.get(), data.data() + off, &out_len, data.data() + off, kSectorBytes) !=
            1 ||
        out_len != static_cast<int>(kSectorBytes)) {
      return Status::Internal("OpenSSL: aes-256-xts failed on sector " + std::to_string(sector));
    }
  }
  return Status::Ok();
}

RandomSource SystemRandom() {
  return [](std::span<uint8_t> out) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
  };
}

Result<EncryptedImage> EncryptImage(const EncryptOptions& options) {
  if (options.in.empty() || options.out.empty()) {
    return Status::InvalidArgument("encrypt needs an input and an output image");
  }
  if (options.iterations == 0) return Status::InvalidArgument("iterations must be at least 1");
  uint64_t size = 0;
  ASSIGN_OR_RETURN(File in, OpenRead(options.in, &size));
  if (size == 0 || size % kSectorBytes != 0) {
    return Status::InvalidArgument(options.in + ": " + std::to_string(size) +
                                   " bytes is not a positive multiple of 512");
  }
  RandomSource random = options.seed ? SeededRandom(*options.seed) : SystemRandom();
  NewVolume volume = CreateVolume(size / kSectorBytes, options.iterations, random);

  ASSIGN_OR_RETURN(Output out, Output::Create(options.out));
  std::vector<uint8_t> region(kHeaderRegionBytes, 0);
  std::vector<uint8_t> header = SerializeHeader(volume.header);
  std::copy(header.begin(), header.end(), region.begin());
  RETURN_IF_ERROR(WriteFull(out.fd(), region.data(), region.size(), options.out));

  std::vector<uint8_t> chunk(kChunkBytes);
  for (uint64_t off = 0; off < size; off += kChunkBytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, size - off));
    RETURN_IF_ERROR(ReadFull(in.get(), chunk.data(), n, off, options.in));
    Status s = XtsSectors(volume.key, off / kSectorBytes, std::span<uint8_t>(chunk.data(), n),
                          /*encrypt=*/true);
    if (!s.ok()) {
      SecureWipe(volume.key);
      return s;
    }
    RETURN_IF_ERROR(WriteFull(out.fd(), chunk.data(), n, options.out));
  }
  SecureWipe(volume.key);
  RETURN_IF_ERROR(out.Commit());
  EncryptedImage result{volume.header, volume.RecoveryPassword(), ToHex(volume.tpm_secret)};
  SecureWipe(volume.recovery_key);
  SecureWipe(volume.tpm_secret);
  return result;
}

Result<VolumeHeader> ReadImageHeader(const std::string& path) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(File in, OpenRead(path, &size));
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(size, kHeaderBytes)));
  RETURN_IF_ERROR(ReadFull(in.get(), buf.data(), buf.size(), 0, path));
  Result<VolumeHeader> header = ParseHeader(buf);
  if (!header.ok()) return header.status().WithContext(path);
  uint64_t end = (header->data_offset_sectors + header->data_sectors) * kSectorBytes;
  if (end > size) {
    return Status::Corruption(path + ": the header describes " + std::to_string(end) +
                              " bytes but the image has " + std::to_string(size));
  }
  return header;
}

Status DecryptImage(const std::string& in_path, const std::string& out_path, const VolumeKey& key) {
  ASSIGN_OR_RETURN(VolumeHeader header, ReadImageHeader(in_path));
  uint64_t size = 0;
  ASSIGN_OR_RETURN(File in, OpenRead(in_path, &size));
  ASSIGN_OR_RETURN(Output out, Output::Create(out_path));
  uint64_t base = header.data_offset_sectors * kSectorBytes;
  uint64_t bytes = header.data_sectors * kSectorBytes;
  std::vector<uint8_t> chunk(kChunkBytes);
  for (uint64_t off = 0; off < bytes; off += kChunkBytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, bytes - off));
    RETURN_IF_ERROR(ReadFull(in.get(), chunk.data(), n, base + off, in_path));
    RETURN_IF_ERROR(XtsSectors(key, off / kSectorBytes, std::span<uint8_t>(chunk.data(), n),
                               /*encrypt=*/false));
    RETURN_IF_ERROR(WriteFull(out.fd(), chunk.data(), n, out_path));
  }
  SecureWipe(chunk);
  return out.Commit();
}

}  // namespace chaoslab::bde
