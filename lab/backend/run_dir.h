// Ownership of what the lab creates on disk: the one rule both backends and `chaoslab gc` use.
//
// The runtime root (`$CHAOSLAB_RUNTIME_DIR`, default /tmp/chaoslab-<uid>) holds one run folder per
// run. The lab trusts a root only if it is a real directory (not a symlink), owned by the
// effective uid, and writable by nobody else (no group or other write bit): then no other user can
// put, rename or swap anything in it, and what gc finds there was put there by this user.
//
// Every folder the lab creates below the root (the run folder `<root>/<run_id>`, each host folder)
// holds a marker `chaoslab.owner`: one line `run <run_id> pid <pid> start <start>`, naming the run
// and its orchestrator (pid and its start time, /proc/<pid>/stat field 22, which tells a reused
// pid apart). The marker is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, right after the
// folder. A folder is the lab's only if it is a real directory owned by us and its marker is a
// regular file owned by us that names this folder's run. gc removes a run folder only if it is the
// lab's and its orchestrator is gone; a folder without a marker is never touched, however old.
//
// Thread-safety: plain functions, no shared state.
#pragma once

#include <sys/types.h>

#include <string>

#include "lab/common/status.h"

namespace chaoslab {

inline constexpr const char* kOwnerMarker = "chaoslab.owner";

// The runtime root when none is given, "/tmp/chaoslab-<uid>": short, so that the socket paths
// below it stay under the 107-byte limit (console_socket.h).
std::string DefaultRuntimeRoot();

// Who made a folder: the run and its orchestrator process.
struct RunOwner {
  std::string run_id;
  pid_t pid = 0;
  std::string start;  // /proc/<pid>/stat field 22 when the marker was written; empty = unknown

  bool operator==(const RunOwner&) const = default;
};

// This process as the orchestrator of `run_id`.
RunOwner ThisProcessOwns(const std::string& run_id);

// Checks that `root` can be trusted (see above); `owner_uid` is the uid it must belong to (tests
// pass another uid to play a foreign root). NotFound if it does not exist; FailedPrecondition
// naming the path and why for a symlink (however spelled: "link/", "link/." too), a '..'
// component, a non-directory, another owner or a group/world-writable folder.
Status CheckRuntimeRoot(const std::string& root, uid_t owner_uid);
Status CheckRuntimeRoot(const std::string& root);  // owner_uid = geteuid()

// Creates `root` if it is missing (mode 0700; missing parents with the default mode), then checks
// it as CheckRuntimeRoot does. Returns its absolute path.
Result<std::string> PrepareRuntimeRoot(const std::string& root);

// Creates the folder `dir` (mode 0700 whatever the umask) and its marker for `owner`.
// FailedPrecondition if `dir` exists already; the folder is removed again if the marker fails.
Status MakeOwnedDir(const std::string& dir, const RunOwner& owner);

// Reads and verifies the marker of `dir`: `dir` must be a real directory owned by us; the marker a
// regular file (not a symlink) owned by us, well formed, naming run `expected_run_id` (the
// folder's name for a run folder). NotFound if there is no marker; FailedPrecondition saying why
// otherwise.
Result<RunOwner> ReadOwnedDir(const std::string& dir, const std::string& expected_run_id);

// Whether the orchestrator of a run is gone: its pid is free, or now names a process that started
// at another time (the pid was reused).
bool OrchestratorGone(const RunOwner& owner);

// Whether `path` (as found in a libvirt domain's metadata) lies inside the run folder
// `<root>/<run_id>`: absolute, without "." or ".." components, and no component from the run folder
// down to the path's parent is a symlink (the last component itself may be one: removing it
// removes the link). Ok, or FailedPrecondition saying why not.
Status CheckInsideRunDir(const std::string& root, const std::string& run_id,
                         const std::string& path);

// /proc/<pid>/stat field 22 (start time in clock ticks since boot); empty if there is no such
// process.
std::string ProcessStartTime(pid_t pid);

}  // namespace chaoslab
