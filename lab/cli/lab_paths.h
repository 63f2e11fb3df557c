// Where the lab finds its parts and keeps its state. Every default can be overridden by an
// environment variable, so tests and CI can run side by side.
#pragma once

#include <string>

namespace chaoslab {

struct LabPaths {
  std::string bin_dir;  // folder of the running chaoslab binary (csagent, chaoslab-relay beside it)
  std::string source_dir;  // the repository (images/, playbooks/): $CHAOSLAB_SOURCE_DIR or built-in
  std::string images_dir;  // $CHAOSLAB_IMAGES_DIR or <source>/images
  std::string runtime_root;  // $CHAOSLAB_RUNTIME_DIR or /tmp/chaoslab-<uid> (sockets, overlays)
  std::string journal;       // $CHAOSLAB_JOURNAL or $HOME/.local/state/chaoslab/journal.db
  std::string qemu;          // $CHAOSLAB_QEMU or qemu-system-x86_64 (from PATH)
  // The dashboard's built page: $CHAOSLAB_DASHBOARD_ASSETS or <bin>/../share/chaoslab/dashboard
  std::string dashboard_assets;

  static LabPaths Discover();
};

}  // namespace chaoslab
