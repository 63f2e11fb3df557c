// The lab's libFuzzer harnesses (README.md here): what the lab parses, fed arbitrary bytes, with
// oracles beyond "does not crash". Each Check* function aborts (so libFuzzer keeps the input) when
// an oracle fails, after printing which one and why; otherwise it counts what it saw in `stats`.
// The same functions run in lab_fuzz_test (any compiler) over the seed corpora.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chaoslab::fuzz {

enum class Target {
  kQmp,            // lab/qmp: one line from QEMU → ParseMessage, ReplyResult, DecodeGuestPanicked
  kContentServer,  // lab/content_server: request bytes → ContentServer::AnswerBytes
  kYaml,           // scenario, setup, runbook, inventory, mix and calibration loaders
  kChannel,        // chaoslab-channel inspect (InspectBytes) and ParseChannelFileName
  kDashboard,  // lab/dashboard: request bytes → DashboardServer::AnswerBytes, WebSocket messages
  kGuestSignal,  // lab/engine: console bytes → ConsoleLineSplitter → ParseGuestSignal
};

// Counters by name, printed at exit as "lab-fuzz target=qmp name=value ...".
using Stats = std::map<std::string, int64_t>;

std::string_view TargetName(Target target);
std::optional<Target> TargetByName(std::string_view name);

// Runs `bytes` through `target`'s harness.
void CheckInput(Target target, std::string_view bytes, Stats& stats);
void PrintStats(Target target, const Stats& stats, FILE* out);

// Prints "lab-fuzz: ORACLE FAILED: <what>: <detail>" with the input's size and aborts.
[[noreturn]] void Fail(std::string_view what, std::string_view detail);

// The harnesses (one file each).
void CheckQmp(std::string_view bytes, Stats& stats);
void CheckContentServer(std::string_view bytes, Stats& stats);
void CheckYaml(std::string_view bytes, Stats& stats);
void CheckChannel(std::string_view bytes, Stats& stats);
void CheckDashboard(std::string_view bytes, Stats& stats);
void CheckGuestSignal(std::string_view bytes, Stats& stats);

// The source tree the harnesses read playbooks and images from: $CHAOSLAB_SOURCE_DIR, else the
// folder this was built from.
std::string SourceDir();

}  // namespace chaoslab::fuzz
