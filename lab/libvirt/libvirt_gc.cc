// `chaoslab gc` for the libvirt backend: domains of dead orchestrators, and the files their
// metadata lists, but only inside that run's folder below the runtime root (lab/backend/run_dir.h).
#include <libvirt/libvirt.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "lab/backend/run_dir.h"
#include "lab/libvirt/domain_xml.h"
#include "lab/libvirt/libvirt_backend.h"
#include "lab/libvirt/libvirt_internal.h"
#include "lab/libvirt/libvirt_uri.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;

bool OwnerAlive(const Ownership& o, const std::string& machine) {
  if (o.owner_machine != machine) return true;  // cannot judge another machine's processes
  if (o.owner_pid <= 0) return false;
  if (kill(o.owner_pid, 0) != 0 && errno != EPERM) return false;
  return o.owner_start.empty() || ProcessStartTime(o.owner_pid) == o.owner_start;
}

// Removes the files a dead run's domain lists, each only if it lies inside the run's folder under
// `root` and that folder carries the marker of the same run, whose orchestrator is gone. Metadata
// is written by whoever defined the domain: it proves nothing about a path by itself.
void RemoveDomainFiles(const Ownership& owner, const std::string& root, const std::string& where,
                       std::ostream& log) {
  if (owner.files.empty()) return;
  std::string why;
  if (root.empty()) {
    why = "no trusted runtime root";
  } else if (auto run = ReadOwnedDir(root + "/" + owner.run_id, owner.run_id); !run.ok()) {
    why = run.status().message();
  } else if (!OrchestratorGone(*run)) {
    why = "the run folder's orchestrator pid " + std::to_string(run->pid) + " is alive";
  }
  for (const auto& f : owner.files) {
    std::string refused = why;
    if (refused.empty()) {
      if (Status inside = CheckInsideRunDir(root, owner.run_id, f); !inside.ok()) {
        refused = inside.message();
      }
    }
    if (!refused.empty()) {
      log << "gc: " << where << ": refused to remove " << f << ": " << refused << "\n";
      continue;
    }
    std::error_code ec;
    fs::remove_all(f, ec);  // a symlink as the last component: the link goes, not its target
    if (ec) log << "gc: " << where << ": cannot remove " << f << ": " << ec.message() << "\n";
  }
}

}  // namespace

Status CollectLibvirtGarbage(const Inventory& inventory, const std::string& runtime_root,
                             std::ostream& log) {
  RETURN_IF_ERROR(CheckInventoryUris(inventory));
  EnsureEventLoop();
  const std::string machine = MachineName();
  std::string root;  // empty: no file is removed
  if (Status trusted = CheckRuntimeRoot(runtime_root); trusted.ok()) {
    root = fs::absolute(runtime_root).lexically_normal().string();
  } else if (trusted.code() != ErrorCode::kNotFound) {
    return trusted.WithContext("gc");
  }
  Status first;
  int removed = 0, kept = 0;
  for (const auto& hv : inventory.hypervisors) {
    Result<virConnectPtr> opened = OpenWithin(hv.uri, kOpenTimeout);
    if (!opened.ok()) {
      log << "gc: hypervisor " << hv.name << " (" << hv.uri
          << ") unreachable: " << opened.status().message() << "\n";
      if (first.ok()) first = Status::Unavailable("gc: hypervisor " + hv.name + " unreachable");
      continue;
    }
    virConnectPtr conn = *opened;
    virConnectSetKeepAlive(conn, 2, 5);  // a daemon that hangs now fails the calls below
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn, &doms, 0);
    for (int i = 0; i < n; ++i) {
      virDomainPtr d = doms[i];
      const std::string name = virDomainGetName(d) ? virDomainGetName(d) : "?";
      char* meta = virDomainGetMetadata(
          d, VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri,
          virDomainIsActive(d) == 1 ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG);
      Result<Ownership> owner = Status::NotFound("no chaoslab metadata");
      if (meta) {
        owner = ParseOwnershipXml(meta);
        free(meta);
      }
      if (!owner.ok()) {
        virDomainFree(d);
        continue;  // not the lab's: never touched
      }
      if (OwnerAlive(*owner, machine)) {
        log << "gc: " << hv.name << ": " << name << ": orchestrator " << owner->owner_machine
            << " pid " << owner->owner_pid << " is alive, left alone\n";
        ++kept;
        virDomainFree(d);
        continue;
      }
      bool ok = true;
      if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0) ok = false;
      if (ok && virDomainIsPersistent(d) == 1 && virDomainUndefine(d) < 0) ok = false;
      if (!ok) {
        log << "gc: " << hv.name << ": " << name << ": " << LastError() << "\n";
        if (first.ok()) first = Status::Internal("gc: cannot remove domain " + name);
      } else {
        RemoveDomainFiles(*owner, root, hv.name + ": " + name, log);
        log << "gc: " << hv.name << ": " << name << ": removed (run " << owner->run_id << ")\n";
        ++removed;
      }
      virDomainFree(d);
    }
    free(doms);
    virConnectClose(conn);
  }
  log << "gc: " << removed << " libvirt domain(s) removed, " << kept << " left alone\n";
  return first;
}

}  // namespace chaoslab::libvirt
