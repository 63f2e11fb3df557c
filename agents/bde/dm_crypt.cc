#include "agents/bde/dm_crypt.h"

#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agents/bde/bde_format.h"
#include "agents/bde/sha256.h"

namespace chaoslab::bde {
namespace {

bool IsValidMappingName(const std::string& name) {
  if (name.empty() || name.size() >= DM_NAME_LEN) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

dm_ioctl Header(const std::string& name, size_t data_size) {
  dm_ioctl io;
  std::memset(&io, 0, sizeof io);
  io.version[0] = DM_VERSION_MAJOR;  // minor 0: any kernel with the v4 interface will do
  io.data_size = static_cast<uint32_t>(data_size);
  io.data_start = sizeof(dm_ioctl);
  std::memcpy(io.name, name.data(), std::min(name.size(), sizeof io.name - 1));
  return io;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status Ioctl(int fd, unsigned long request, void* arg, const char* what) {
  if (ioctl(fd, request, arg) != 0)
    return Status::FromErrno(std::string("device-mapper ") + what, errno);
  return Status::Ok();
}

}  // namespace

std::string CryptTableParams(const CryptTarget& t) {
  return t.cipher + " " + ToHex(t.key) + " 0 " + std::to_string(t.backing_major) + ":" +
         std::to_string(t.backing_minor) + " " + std::to_string(t.offset_sectors);
}

std::vector<uint8_t> BuildTableLoad(const CryptTarget& t) {
  std::string params = CryptTableParams(t);
  size_t params_bytes = (params.size() + 1 + 7) & ~size_t{7};
  size_t total = sizeof(dm_ioctl) + sizeof(dm_target_spec) + params_bytes;
  std::vector<uint8_t> buf(total, 0);
  dm_ioctl io = Header(t.name, total);
  io.target_count = 1;
  io.flags = DM_SECURE_DATA_FLAG;  // the kernel wipes its copy of the buffer (it holds the key)
  std::memcpy(buf.data(), &io, sizeof io);
  dm_target_spec spec;
  std::memset(&spec, 0, sizeof spec);
  spec.sector_start = 0;
  spec.length = t.sectors;
  spec.next = static_cast<uint32_t>(sizeof(dm_target_spec) + params_bytes);
  std::memcpy(spec.target_type, "crypt", 6);
  std::memcpy(buf.data() + sizeof io, &spec, sizeof spec);
  std::memcpy(buf.data() + sizeof io + sizeof spec, params.data(), params.size());
  SecureWipe(std::span<uint8_t>(reinterpret_cast<uint8_t*>(params.data()), params.size()));
  return buf;
}

Result<std::string> ActivateCryptMapping(const CryptTarget& target, const std::string& dev_dir) {
  if (!IsValidMappingName(target.name)) {
    return Status::InvalidArgument("bad device-mapper name '" + target.name + "'");
  }
  std::string control = dev_dir + "/mapper/control";
  Fd fd(open(control.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status::FromErrno("open " + control + " (is device-mapper in the kernel?)", errno);
  }

  dm_ioctl create = Header(target.name, sizeof(dm_ioctl));
  RETURN_IF_ERROR(Ioctl(fd.get(), DM_DEV_CREATE, &create, "DM_DEV_CREATE"));
  auto remove = [&] {
    dm_ioctl rm = Header(target.name, sizeof(dm_ioctl));
    (void)ioctl(fd.get(), DM_DEV_REMOVE, &rm);
  };

  std::vector<uint8_t> load = BuildTableLoad(target);
  Status loaded = Ioctl(fd.get(), DM_TABLE_LOAD, load.data(), "DM_TABLE_LOAD");
  SecureWipe(load);
  if (!loaded.ok()) {
    remove();
    return loaded.WithContext("crypt table for " + std::to_string(target.backing_major) + ":" +
                              std::to_string(target.backing_minor));
  }
  // "Suspend" without DM_SUSPEND_FLAG resumes the device, which makes the loaded table live.
  dm_ioctl resume = Header(target.name, sizeof(dm_ioctl));
  Status resumed = Ioctl(fd.get(), DM_DEV_SUSPEND, &resume, "DM_DEV_SUSPEND (resume)");
  if (!resumed.ok()) {
    remove();
    return resumed;
  }

  // No udev: make /dev/mapper/<name> ourselves (devtmpfs only makes /dev/dm-<n>).
  std::string node = dev_dir + "/mapper/" + target.name;
  dev_t dev = makedev(major(resume.dev), minor(resume.dev));
  unlink(node.c_str());
  if (mknod(node.c_str(), S_IFBLK | 0600, dev) != 0) {
    Status s = Status::FromErrno("mknod " + node, errno);
    remove();
    return s;
  }
  return node;
}

Status RemoveMapping(const std::string& name, const std::string& dev_dir) {
  if (!IsValidMappingName(name))
    return Status::InvalidArgument("bad device-mapper name '" + name + "'");
  std::string control = dev_dir + "/mapper/control";
  Fd fd(open(control.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno("open " + control, errno);
  dm_ioctl rm = Header(name, sizeof(dm_ioctl));
  if (ioctl(fd.get(), DM_DEV_REMOVE, &rm) != 0) {
    int err = errno;
    if (err == ENXIO) return Status::NotFound("no device-mapper device '" + name + "'");
    return Status::FromErrno("device-mapper DM_DEV_REMOVE " + name, err);
  }
  std::string node = dev_dir + "/mapper/" + name;
  unlink(node.c_str());
  return Status::Ok();
}

}  // namespace chaoslab::bde
