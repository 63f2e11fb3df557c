#include "lab/libvirt/libvirt_backend.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "lab/backend/console_socket.h"
#include "lab/backend/run_dir.h"
#include "lab/backend/vm_backend.h"
#include "lab/backend/vm_host_spec.h"
#include "lab/common/identifier.h"
#include "lab/common/secret_file.h"
#include "lab/libvirt/domain_xml.h"
#include "lab/libvirt/libvirt_host.h"
#include "lab/libvirt/libvirt_internal.h"
#include "lab/libvirt/libvirt_uri.h"
#include "lab/vm/qemu_accel.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr milliseconds kReconnectEvery(1000);

}  // namespace

class LibvirtBackend : public VmBackend {
 public:
  LibvirtBackend(LibvirtOptions options, std::string run_dir, std::string accel)
      : VmBackend(accel),
        options_(std::move(options)),
        run_dir_(std::move(run_dir)),
        placer_(&options_.inventory) {
    std::error_code ec;
    if (!options_.bios_rom.empty() && !fs::exists(options_.bios_rom, ec)) options_.bios_rom.clear();
    run_.options = &options_;
    run_.accel = std::move(accel);
    run_.machine = MachineName();
    run_.owner_start = ProcessStartTime(getpid());
    run_.queue = &queue();
    run_.shortfall = &shortfall();
    run_.worker = &worker_;
    for (size_t i = 0; i < options_.inventory.hypervisors.size(); ++i) {
      auto hv = std::make_unique<Hypervisor>();
      hv->config = options_.inventory.hypervisors[i];
      hv->index = i;
      hv->backend = this;
      hvs_.push_back(std::move(hv));
    }
  }
  ~LibvirtBackend() override { Destroy(); }

  // From now on Destroy() removes the run folder: this backend made it.
  void OwnRunDir() { owns_run_dir_ = true; }

  Status Connect() {
    for (auto& hv : hvs_) RETURN_IF_ERROR(Open(hv.get()));
    reconnector_ = std::thread([this] { ReconnectLoop(); });
    return Status::Ok();
  }

  std::string_view name() const override { return "libvirt"; }
  Result<Host*> CreateHost(const HostSpec& spec) override;
  Status Destroy() override;

  LibvirtHost* FindByDomain(virDomainPtr dom) {
    const char* n = virDomainGetName(dom);
    if (!n) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(n);
    return it == by_name_.end() ? nullptr : it->second;
  }

  void Notice(const std::string& text) {
    if (options_.notice) options_.notice(text);
  }

  // Event-loop thread: the connection of `hv` closed.
  void OnClosed(Hypervisor* hv, int reason);

 private:
  // Opens `hv` (waiting up to kOpenTimeout) and attaches the connection.
  Status Open(Hypervisor* hv);
  // Keepalive and event callbacks on a fresh connection of `hv`, which it then owns.
  Status Attach(Hypervisor* hv, virConnectPtr conn);
  // Undoes Attach for `conn`, an old connection of `hv`, and closes it.
  static void Detach(Hypervisor* hv, virConnectPtr conn);
  void ReconnectLoop();
  // One round of ReconnectLoop for a hypervisor that is down.
  void TryReconnect(Hypervisor* hv);
  // Destroys the domains of this run on `conn` (listed with `flags`); how many it destroyed.
  int DestroyRunDomains(virConnectPtr conn, unsigned int flags);
  // Requires mu_. The hypervisor for a new host: a rescue VM goes where the disk it borrows is.
  Result<size_t> PlaceLocked(const HostSpec& spec, const std::vector<bool>& usable);
  std::vector<bool> Usable() {
    std::vector<bool> out;
    for (auto& hv : hvs_) {
      std::lock_guard<std::mutex> lock(hv->mu);
      out.push_back(hv->up);
    }
    return out;
  }

  LibvirtOptions options_;
  const std::string run_dir_;
  LibvirtRun run_;
  std::vector<std::unique_ptr<Hypervisor>> hvs_;

  std::mutex mu_;  // hosts_, by_name_, placer_
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<LibvirtHost>> hosts_;
  std::map<std::string, LibvirtHost*> by_name_;
  Placer placer_;
  std::thread reconnector_;
  bool destroyed_ = false;
  bool owns_run_dir_ = false;
  TaskThread worker_;
};

// ---- libvirt's callbacks (event-loop thread) ----

static void QmpCallback(virConnectPtr, virDomainPtr dom, const char* event, long long, unsigned int,
                        const char* details, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  if (LibvirtHost* host = hv->backend->FindByDomain(dom)) host->OnQmp(event ? event : "", details);
}

static int LifecycleCallback(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  if (event != VIR_DOMAIN_EVENT_STOPPED) return 0;
  if (LibvirtHost* host = hv->backend->FindByDomain(dom)) host->OnStopped(detail);
  return 0;
}

static void CloseCallback(virConnectPtr, int reason, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  hv->backend->OnClosed(hv, reason);
}

// ---- backend ----

Status LibvirtBackend::Open(Hypervisor* hv) {
  Result<virConnectPtr> conn = OpenWithin(hv->config.uri, kOpenTimeout);
  if (!conn.ok()) {
    return Status::FailedPrecondition("hypervisor " + hv->config.name + " (" + hv->config.uri +
                                      "): cannot connect: " + conn.status().message());
  }
  return Attach(hv, *conn);
}

Status LibvirtBackend::Attach(Hypervisor* hv, virConnectPtr conn) {
  // A remote hypervisor that stops answering is noticed within ~10 s; a closed socket at once.
  virConnectSetKeepAlive(conn, 2, 5);
  int qmp =
      virConnectDomainQemuMonitorEventRegister(conn, nullptr, nullptr, QmpCallback, hv, nullptr, 0);
  int life =
      virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                       VIR_DOMAIN_EVENT_CALLBACK(LifecycleCallback), hv, nullptr);
  if (qmp < 0 || life < 0 ||
      virConnectRegisterCloseCallback(conn, CloseCallback, hv, nullptr) < 0) {
    std::string msg = LastError();
    virConnectClose(conn);
    return Status::FailedPrecondition("hypervisor " + hv->config.name + " (" + hv->config.uri +
                                      "): cannot subscribe to events: " + msg);
  }
  std::lock_guard<std::mutex> lock(hv->mu);
  hv->conn = conn;
  hv->up = true;
  hv->qmp_callback = qmp;
  hv->lifecycle_callback = life;
  return Status::Ok();
}

void LibvirtBackend::OnClosed(Hypervisor* hv, int reason) {
  {
    std::lock_guard<std::mutex> lock(hv->mu);
    if (!hv->up) return;
    hv->up = false;  // the reconnect thread closes the old connection and opens a new one
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
  }
  static const char* kReasons[] = {"error", "end of file", "keepalive timeout", "client closed"};
  const std::string why = "hypervisor " + hv->config.name + " (" + hv->config.uri +
                          ") went away: " + (reason >= 0 && reason < 4 ? kReasons[reason] : "?");
  std::vector<LibvirtHost*> on_it;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, host] : hosts_) {
      if (host->hypervisor() == hv) on_it.push_back(host.get());
    }
  }
  // Not here: libvirt calls this while it is closing the connection, and fails the calls still
  // waiting on it (an engine call holding a host's lock, say) only once this returns. Taking a
  // host's lock here would wait for that call forever.
  worker_.Post([this, why, on_it] {
    Notice(why + "; its hosts are lost");
    for (LibvirtHost* host : on_it) host->OnHypervisorLost(why);
  });
}

void LibvirtBackend::ReconnectLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, kReconnectEvery, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    for (auto& hv : hvs_) TryReconnect(hv.get());
    lock.lock();
  }
  for (auto& hv : hvs_) {
    if (hv->reopening) hv->reopening->Abandon();
    hv->reopening.reset();
  }
}

void LibvirtBackend::TryReconnect(Hypervisor* hv) {
  virConnectPtr old = nullptr;
  {
    std::lock_guard<std::mutex> hl(hv->mu);
    if (hv->up) return;
    old = hv->conn;
    hv->conn = nullptr;
  }
  if (old) Detach(hv, old);
  // A daemon that hangs never answers an open: it runs on a thread of its own, looked at once a
  // round, so that neither the reconnect loop nor Destroy() ever waits for it.
  if (!hv->reopening) hv->reopening = PendingOpen::Start(hv->config.uri);
  if (!hv->reopening->Wait(milliseconds(0))) return;
  virConnectPtr conn = hv->reopening->Take();
  hv->reopening.reset();
  if (!conn || !Attach(hv, conn).ok()) return;
  // Back: the run's domains there belong to lost hosts; nothing may keep running.
  ConnRef c{hv->Ref()};
  const int destroyed = c.conn ? DestroyRunDomains(c.conn, 0) : 0;
  Notice("hypervisor " + hv->config.name + " (" + hv->config.uri + ") reconnected; " +
         std::to_string(destroyed) + " domain(s) of lost hosts destroyed");
}

void LibvirtBackend::Detach(Hypervisor* hv, virConnectPtr conn) {
  virConnectDomainQemuMonitorEventDeregister(conn, hv->qmp_callback);
  virConnectDomainEventDeregisterAny(conn, hv->lifecycle_callback);
  virConnectUnregisterCloseCallback(conn, CloseCallback);
  virConnectClose(conn);
}

int LibvirtBackend::DestroyRunDomains(virConnectPtr conn, unsigned int flags) {
  int destroyed = 0;
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(conn, &doms, flags);
  for (int i = 0; i < n; ++i) {
    char* meta = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri,
                                      VIR_DOMAIN_AFFECT_LIVE);
    if (meta) {
      auto owner = ParseOwnershipXml(meta);
      if (owner.ok() && owner->run_id == options_.run_id && virDomainDestroy(doms[i]) == 0) {
        ++destroyed;
      }
      free(meta);
    }
    virDomainFree(doms[i]);
  }
  free(doms);
  return destroyed;
}

Result<Host*> LibvirtBackend::CreateHost(const HostSpec& spec) {
  if (destroyed_) return Status::FailedPrecondition("libvirt backend: CreateHost after Destroy");
  VmSpecRules rules;
  rules.boots_kernel = !options_.windows;  // UEFI boots the disk
  rules.relay = options_.relay;
  rules.relay_option = "LibvirtOptions.relay";
  RETURN_IF_ERROR(CheckVmHostSpec(spec, rules));
  HostSpec absolute = WithAbsolutePaths(spec);
  // Placement counts what the domain gets (a Windows domain has at least 2 GiB).
  if (options_.windows) {
    absolute.memory_mib = std::max(absolute.memory_mib, options_.windows_memory_mib);
  }
  const std::string dir = run_dir_ + "/" + spec.id;
  RETURN_IF_ERROR(CheckSocketPath(dir + "/console.sock"));
  std::vector<bool> usable = Usable();
  std::lock_guard<std::mutex> lock(mu_);
  if (hosts_.count(spec.id))
    return Status::InvalidArgument("host '" + spec.id + "' exists already");
  ASSIGN_OR_RETURN(size_t placed, PlaceLocked(absolute, usable));
  Hypervisor* hv = hvs_[placed].get();
  const int memory_mib = absolute.memory_mib;
  if (Status made = MakeOwnedDir(dir, ThisProcessOwns(options_.run_id)); !made.ok()) {
    placer_.Release(placed, memory_mib);
    return made.WithContext("create host folder");
  }
  auto host = std::make_unique<LibvirtHost>(&run_, hv, std::move(absolute), dir,
                                            DomainName(options_.run_id, spec.id));
  Status made = host->MakeDisk();
  if (made.ok() && !host->files().tpm_secret.empty())
    made = WriteSecretFile(host->files().tpm_secret, host->spec().tpm_secret);
  if (!made.ok()) {
    placer_.Release(placed, memory_mib);
    return made;
  }
  LibvirtHost* raw = host.get();
  by_name_[raw->name()] = raw;
  Notice("placed " + spec.id + " on hypervisor " + hv->config.name);
  hosts_.emplace(spec.id, std::move(host));
  return static_cast<Host*>(raw);
}

Result<size_t> LibvirtBackend::PlaceLocked(const HostSpec& spec, const std::vector<bool>& usable) {
  // A rescue VM borrows another host's disk: put it where that disk's machine is.
  Result<size_t> placed = Status::NotFound("");
  for (const auto& disk : spec.extra_disks) {
    for (auto& [id, other] : hosts_) {
      if (other->SystemDisk().path != disk.path) continue;
      std::vector<bool> only(hvs_.size(), false);
      only[other->hypervisor()->index] = usable[other->hypervisor()->index];
      placed = placer_.Place({spec.id, spec.group, spec.memory_mib}, only);
    }
  }
  if (!placed.ok()) placed = placer_.Place({spec.id, spec.group, spec.memory_mib}, usable);
  return placed;
}

Status LibvirtBackend::Destroy() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (destroyed_) return Status::Ok();
    destroyed_ = true;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (reconnector_.joinable()) reconnector_.join();
  Status first;
  std::vector<LibvirtHost*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, host] : hosts_) all.push_back(host.get());
  }
  for (LibvirtHost* host : all) {
    Status s = host->PowerOff();
    if (!s.ok() && first.ok()) first = s;
  }
  worker_.Stop();  // after the power-offs: pending relaunches have ended (as powered off)
  // Lost hosts on a hypervisor that is back: their domains carry this run's id.
  for (auto& hv : hvs_) {
    ConnRef c{hv->Ref()};
    if (c.conn) DestroyRunDomains(c.conn, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_name_.clear();
  }
  // Hosts go before the connections: their domain handles reference them.
  std::map<std::string, std::unique_ptr<LibvirtHost>> hosts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosts.swap(hosts_);
  }
  hosts.clear();
  for (auto& hv : hvs_) {
    virConnectPtr conn;
    {
      std::lock_guard<std::mutex> lock(hv->mu);
      conn = hv->conn;
      hv->conn = nullptr;
      hv->up = false;
    }
    if (conn) Detach(hv.get(), conn);
  }
  std::error_code ec;
  if (owns_run_dir_) fs::remove_all(run_dir_, ec);
  if (ec && first.ok())
    first = Status::IoError("remove run folder " + run_dir_ + ": " + ec.message());
  return first;
}

std::string DomainName(const std::string& run_id, const std::string& host_id) {
  return "chaoslab-" + run_id + "-" + host_id;
}

Status CheckReachable(const Inventory& inventory) {
  RETURN_IF_ERROR(CheckInventoryUris(inventory));
  EnsureEventLoop();
  for (const auto& hv : inventory.hypervisors) {
    Result<virConnectPtr> conn = OpenWithin(hv.uri, kOpenTimeout);
    if (!conn.ok()) {
      return Status::FailedPrecondition("inventory " + inventory.path + ": hypervisor " + hv.name +
                                        " (" + hv.uri +
                                        ") is unreachable: " + conn.status().message());
    }
    virConnectClose(*conn);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Backend>> MakeLibvirtBackend(LibvirtOptions options) {
  EnsureEventLoop();
  RETURN_IF_ERROR(CheckIdentifier("run id", options.run_id));
  RETURN_IF_ERROR(CheckInventoryUris(options.inventory));
  if (options.inventory.hypervisors.empty()) {
    return Status::InvalidArgument("libvirt backend: the inventory lists no hypervisor");
  }
  ASSIGN_OR_RETURN(std::string accel, vm::ResolveAccel(options.emulator, options.accel));
  if (options.runtime_root.empty()) options.runtime_root = DefaultRuntimeRoot();
  ASSIGN_OR_RETURN(std::string root, PrepareRuntimeRoot(options.runtime_root));
  const std::string run_dir = root + "/" + options.run_id;
  auto backend = std::make_unique<LibvirtBackend>(options, run_dir, accel);
  // Connect before creating anything: an unreachable hypervisor is bad input.
  if (Status s = backend->Connect(); !s.ok()) {
    (void)backend->Destroy();
    return s;
  }
  if (Status made = MakeOwnedDir(run_dir, ThisProcessOwns(options.run_id)); !made.ok()) {
    (void)backend->Destroy();  // the folder is not ours: Destroy leaves it
    return made.WithContext("run folder");
  }
  backend->OwnRunDir();
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace chaoslab::libvirt
