#include "lab/cli/lab_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace chaoslab {
namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

LabPaths LabPaths::Discover() {
  namespace fs = std::filesystem;
  LabPaths p;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  p.bin_dir = ec ? "." : exe.parent_path().string();
  p.source_dir = Env("CHAOSLAB_SOURCE_DIR", CHAOSLAB_BUILTIN_SOURCE_DIR);
  p.images_dir = Env("CHAOSLAB_IMAGES_DIR", p.source_dir + "/images");
  p.runtime_root = Env("CHAOSLAB_RUNTIME_DIR", "/tmp/chaoslab-" + std::to_string(getuid()));
  p.journal = Env("CHAOSLAB_JOURNAL", Env("HOME", "/root") + "/.local/state/chaoslab/journal.db");
  p.qemu = Env("CHAOSLAB_QEMU", "qemu-system-x86_64");
  p.dashboard_assets =
      Env("CHAOSLAB_DASHBOARD_ASSETS",
          (fs::path(p.bin_dir).parent_path() / "share/chaoslab/dashboard").string());
  return p;
}

}  // namespace chaoslab
