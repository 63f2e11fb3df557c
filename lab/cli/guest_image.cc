#include "lab/cli/guest_image.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "lab/common/subprocess.h"
#include "lab/config/config_loader.h"
#include "lab/libvirt/windows_golden.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

constexpr char kExitNotBuilt = 3;  // build.sh --check: the image is not built

std::vector<std::string> ImageScriptArgs(const LabPaths& paths, const config::ImageConfig& image) {
  return {paths.images_dir + "/" + image.name + "/build.sh", "--csagent",
          paths.bin_dir + "/csagent", "--kernel", image.kernel};
}

Result<GuestImage> ImageFromFolder(const std::string& output) {
  std::string dir = output;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  size_t nl = dir.rfind('\n');
  if (nl != std::string::npos) dir = dir.substr(nl + 1);
  GuestImage img{dir, dir + "/vmlinux", dir + "/initramfs.cpio.gz"};
  std::ifstream mf(dir + "/manifest.json");
  if (mf) {
    try {
      auto m = nlohmann::json::parse(mf);
      if (m.contains("kernel")) img.kernel = dir + "/" + m["kernel"].get<std::string>();
      if (m.contains("initrd")) img.initrd = dir + "/" + m["initrd"].get<std::string>();
    } catch (const std::exception& e) {
      return Status::Corruption(dir + "/manifest.json: " + e.what());
    }
  }
  for (const auto& f : {img.kernel, img.initrd}) {
    if (!fs::exists(f)) return Status::NotFound("guest image file missing: " + f);
  }
  return img;
}

}  // namespace

Result<GuestImage> FindBuiltImage(const LabPaths& paths, const config::ImageConfig& image) {
  const std::string& name = image.name;
  if (image.kind == config::ImageKind::kWindows) {
    // No kernel or initrd: the golden image the user built from an ISO (windows_golden.h).
    ASSIGN_OR_RETURN(libvirt::WindowsGolden golden,
                     libvirt::FindWindowsGolden(libvirt::DefaultWindowsGoldenDir()));
    return GuestImage{golden.dir, "", ""};
  }
  if (!fs::exists(paths.bin_dir + "/csagent")) {
    return Status::FailedPrecondition("csagent not found next to chaoslab in " + paths.bin_dir +
                                      ": run `make build`");
  }
  std::vector<std::string> argv = ImageScriptArgs(paths, image);
  argv.push_back("--check");
  ASSIGN_OR_RETURN(ProcessOutput r, RunProcess(argv, std::chrono::seconds(120)));
  if (r.exit_code == kExitNotBuilt) {
    return Status::FailedPrecondition("guest image " + name + " is not built: run `make image`");
  }
  if (r.exit_code != 0) {
    return Status::FailedPrecondition("checking guest image " + name + " failed: " + r.err);
  }
  return ImageFromFolder(r.out);
}

Result<GuestImage> BuildImage(const LabPaths& paths, const std::string& name, std::ostream& err) {
  ASSIGN_OR_RETURN(config::ImageConfig image, config::LoadImage(paths.images_dir, name));
  // Cached by content hash: --check finds an image built from the same inputs without building.
  std::vector<std::string> check = ImageScriptArgs(paths, image);
  check.push_back("--check");
  ASSIGN_OR_RETURN(ProcessOutput cached, RunProcess(check, std::chrono::seconds(120)));
  if (cached.exit_code == 0) {
    ASSIGN_OR_RETURN(GuestImage img, ImageFromFolder(cached.out));
    err << "guest image " << name << " is cached: " << img.dir << "\n";
    return img;
  }
  err << "building guest image " << name << " with the " << image.kernel
      << " kernel (cached by content hash; a first kernel build takes ~8 min on 2 cores)...\n";
  ASSIGN_OR_RETURN(ProcessOutput r,
                   RunProcess(ImageScriptArgs(paths, image), std::chrono::seconds(3600)));
  if (r.exit_code != 0) return Status::Internal("building image " + name + " failed:\n" + r.err);
  return ImageFromFolder(r.out);
}

}  // namespace chaoslab
