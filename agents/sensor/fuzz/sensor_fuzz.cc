#include "agents/sensor/fuzz/sensor_fuzz.h"

#include <setjmp.h>
#include <signal.h>

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/template_types.h"

namespace chaoslab::content::fuzz {
namespace {

[[noreturn]] void Fail(std::string_view oracle, const std::string& detail) {
  std::fprintf(stderr, "sensor-fuzz: oracle '%.*s' violated: %s\n", static_cast<int>(oracle.size()),
               oracle.data(), detail.c_str());
  std::abort();
}

// One notification for the whole run: creating it maps two pages, too slow to do per input.
const IpcNotification& Notification() {
  static const IpcNotification* notification = [] {
    auto made = IpcNotification::Sample();
    if (!made.ok()) Fail("setup", made.status().ToString());
    return new IpcNotification(std::move(made).value());
  }();
  return *notification;
}

// Glob semantics as the textbook dynamic programme (row[j]: the glob so far matches text[0, j)),
// written independently of GlobMatch's backtracking so that one checks the other.
bool ReferenceGlob(std::string_view glob, std::string_view text) {
  std::vector<char> row(text.size() + 1, 0), next(text.size() + 1, 0);
  row[0] = 1;
  for (char g : glob) {
    next[0] = g == '*' && row[0];
    for (size_t j = 1; j <= text.size(); ++j) {
      next[j] = g == '*' ? (row[j] || next[j - 1]) : (row[j - 1] && g == text[j - 1]);
    }
    row.swap(next);
  }
  return row[text.size()];
}

// How many instances should match the notification, by ReferenceGlob. Only for content whose
// value criteria are all on supplied inputs.
size_t ExpectedMatches(const ChannelFile& file, const IpcNotification& notification) {
  size_t matched = 0;
  for (const TemplateInstance& instance : file.instances) {
    bool all = true;
    for (const Criterion& c : instance.criteria) {
      if (c.wildcard) continue;
      all = ReferenceGlob(c.value, notification.inputs()[c.field - 1].view()) && all;
    }
    matched += all;
  }
  return matched;
}

// ---- The specification of each sensor's validator, spelled out here ----

// The first criterion a validator with these rules objects to, and why; nullopt when none.
std::optional<std::string> FirstBadCriterion(const ChannelFile& file, uint16_t declared,
                                             uint16_t value_limit) {
  for (const TemplateInstance& instance : file.instances) {
    for (const Criterion& c : instance.criteria) {
      if (c.field > declared) return std::string("field-not-declared");
      if (!c.wildcard && c.field > value_limit) return std::string("criterion-on-unsupplied-field");
    }
  }
  return std::nullopt;
}

// The reason `target`'s sensor must reject `file` for (nullopt: it must accept it).
std::optional<std::string> ExpectedRejection(std::string_view sensor_name,
                                             const ChannelFile& file) {
  if (file.channel != kChannel291) return std::string("wrong-channel");
  if (sensor_name == "7.10" || file.template_type != kIpcTemplateTypeId) {
    return std::string("template-type-not-supported");
  }
  // 7.11 checks every criterion against the 21 declared fields only; 7.11-fixed also requires a
  // value criterion to be on one of the 20 supplied inputs (a wildcard is never read).
  const uint16_t value_limit = sensor_name == "7.11" ? kIpcDeclaredFields : kIpcSuppliedInputs;
  return FirstBadCriterion(file, kIpcDeclaredFields, value_limit);
}

// Returns whether the sensor accepted the file.
bool CheckValidator(const SensorVersion& sensor, const ChannelFile& file) {
  const std::optional<Rejection> got = CheckContent(sensor, file);
  const std::optional<std::string> want = ExpectedRejection(sensor.name, file);
  const std::string got_text = got ? got->reason + " (" + got->detail + ")" : "accepted";
  if (got.has_value() != want.has_value() || (got && got->reason != *want)) {
    Fail("validator", "sensor " + std::string(sensor.name) + " says " + got_text + ", expected " +
                          want.value_or("accepted"));
  }
  return !got.has_value();
}

// ---- Interpreter runs ----

struct InterpretCall {
  const SensorVersion* sensor = nullptr;
  const ChannelFile* file = nullptr;
  bool returned_ok = false;
  InterpretOutcome outcome;
  std::string error;
};

// Holds nothing with a destructor until Interpret returns, so a fault inside may siglongjmp out.
void RunInterpret(void* arg) {
  auto* call = static_cast<InterpretCall*>(arg);
  Result<InterpretOutcome> result = Interpret(*call->sensor, *call->file, Notification());
  call->returned_ok = result.ok();
  if (result.ok()) {
    call->outcome = *result;
  } else {
    call->error = result.status().ToString();
  }
}

void CheckCleanOutcome(const SensorVersion& sensor, const ChannelFile& file,
                       const InterpretCall& call) {
  const std::string who = "sensor " + std::string(sensor.name) + ": ";
  if (!call.returned_ok) Fail("interpreter", who + "refused content it must run: " + call.error);
  const size_t want_evaluated = sensor.Supports(file.template_type) ? file.instances.size() : 0;
  if (call.outcome.instances_evaluated != want_evaluated) {
    Fail("interpreter", who + "evaluated " + std::to_string(call.outcome.instances_evaluated) +
                            " instances of " + std::to_string(want_evaluated));
  }
  const size_t want_matched = want_evaluated == 0 ? 0 : ExpectedMatches(file, Notification());
  if (call.outcome.instances_matched != want_matched) {
    Fail("glob", who + std::to_string(call.outcome.instances_matched) +
                     " instances matched the sample notification, the reference glob says " +
                     std::to_string(want_matched));
  }
}

// 7.10 knows no IPC template type: it rejects every file and its interpreter evaluates nothing.
void Check710(const ChannelFile& file) {
  const SensorVersion& sensor = *FindSensorVersion("7.10");
  CheckValidator(sensor, file);
  InterpretCall call{&sensor, &file};
  RunInterpret(&call);
  CheckCleanOutcome(sensor, file, call);
}

// The bounds-checked interpreter runs on every decoded file, also ones the validator rejects (as
// if the validator had a bug): it must refuse exactly the 291 class, at the first value criterion
// on an unsupplied input, and never fault. No fault handler is installed: a fault is a crash.
void CheckFixedInterpreter(const SensorVersion& sensor, const ChannelFile& file, bool is_291,
                           FuzzStats& stats) {
  InterpretCall call{&sensor, &file};
  RunInterpret(&call);
  ++stats.interpreted;
  if (!is_291) return CheckCleanOutcome(sensor, file, call);
  if (call.returned_ok) Fail("bounds check", "a 291-class file ran without being refused");
  ++stats.interpreter_refused;
  for (const TemplateInstance& instance : file.instances) {
    for (const Criterion& c : instance.criteria) {
      if (c.wildcard || c.field <= sensor.ipc_inputs_supplied) continue;
      const std::string want =
          "instance " + std::to_string(instance.id) + " reads input " + std::to_string(c.field);
      if (call.error.find(want) == std::string::npos) {
        Fail("bounds check", "refused with '" + call.error + "', expected '" + want + " ...'");
      }
      return;
    }
  }
}

// The 7.11 interpreter runs only on content its validator accepted, as in csagent (on anything
// else the unchecked fetch would read wherever the field number points). It must fault on the
// guard page exactly when the content is of the 291 class, and otherwise agree with the reference.
void Check711Interpreter(const SensorVersion& sensor, const ChannelFile& file, bool is_291,
                         FuzzStats& stats) {
  InterpretCall call{&sensor, &file};
  const std::optional<uintptr_t> fault = RunCatchingFault(RunInterpret, &call);
  const uintptr_t guard = reinterpret_cast<uintptr_t>(Notification().guard());
  if (fault) {
    // Input 21 is the InputValue that starts at the guard page; its first field read faults.
    const bool on_guard = *fault >= guard && *fault < guard + sizeof(InputValue);
    char where[96];
    std::snprintf(where, sizeof where, "fault at 0x%" PRIxPTR ", guard page at 0x%" PRIxPTR, *fault,
                  guard);
    if (!is_291) {
      ++stats.faults_other;
      Fail("fault only on the 291 class",
           std::string("a file not of the 291 class faulted: ") + where);
    }
    if (!on_guard) {
      ++stats.faults_other;
      Fail("fault on the guard page", std::string("a 291-class file faulted elsewhere: ") + where);
    }
    ++stats.faults_291;
    return;
  }
  if (is_291) Fail("291 class faults", "a 291-class file ran through the 7.11 interpreter");
  ++stats.interpreted;
  CheckCleanOutcome(sensor, file, call);
}

// ---- Fault handler state (one input at a time) ----
sigjmp_buf g_fault_jump;
volatile uintptr_t g_fault_address = 0;
struct sigaction g_old_segv;
struct sigaction g_old_bus;

void OnFault(int, siginfo_t* info, void*) {
  g_fault_address = reinterpret_cast<uintptr_t>(info->si_addr);
  siglongjmp(g_fault_jump, 1);
}

void RestoreHandlers() {
  sigaction(SIGSEGV, &g_old_segv, nullptr);
  sigaction(SIGBUS, &g_old_bus, nullptr);
}

void PutU32(uint8_t* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>(v >> (8 * i));
}

// ---- Structure-aware mutation ----

// Around the edges that matter: 20 supplied inputs, 21 declared fields, and the far end.
constexpr uint16_t kInterestingFields[] = {1, 2, 19, 20, 21, 22, 255, 256, 4096, 65535};
constexpr std::string_view kInterestingValues[] = {
    "*", "", "x", "0", "**", "\\\\.\\pipe\\*", "C:\\Windows\\*", "*a*b*"};

class StructureMutator {
 public:
  StructureMutator(ChannelFile& file, std::minstd_rand& rng, ByteMutator mutate_bytes)
      : file_(file), rng_(rng), mutate_bytes_(mutate_bytes) {}

  void MutateOnce() {
    switch (Pick(9)) {
      case 0:
        if (Criterion* c = AnyCriterion()) c->field = NewField(c->field);
        break;
      case 1:
        if (Criterion* c = AnyCriterion()) {
          c->wildcard = !c->wildcard;
          c->value = c->wildcard ? "" : std::string(PickValue());
        }
        break;
      case 2:
        if (Criterion* c = AnyCriterion(); c != nullptr && !c->wildcard) MutateValue(c->value);
        break;
      case 3:
        if (!file_.instances.empty()) {
          const Criterion* existing = AnyCriterion();
          Criterion added = existing != nullptr && Pick(2) == 0
                                ? *existing
                                : Criterion::Match(NewField(1), std::string(PickValue()));
          auto& criteria = file_.instances[Pick(file_.instances.size())].criteria;
          if (criteria.size() < UINT16_MAX) {
            criteria.insert(criteria.begin() + Pick(criteria.size() + 1), std::move(added));
          }
        }
        break;
      case 4:
        if (!file_.instances.empty()) {
          auto& criteria = file_.instances[Pick(file_.instances.size())].criteria;
          if (!criteria.empty()) criteria.erase(criteria.begin() + Pick(criteria.size()));
        }
        break;
      case 5: {
        TemplateInstance added{static_cast<uint32_t>(rng_()), {}};
        if (!file_.instances.empty() && Pick(4) != 0) {
          added.criteria = file_.instances[Pick(file_.instances.size())].criteria;
        }
        file_.instances.insert(file_.instances.begin() + Pick(file_.instances.size() + 1),
                               std::move(added));
        break;
      }
      case 6:
        if (!file_.instances.empty()) {
          file_.instances.erase(file_.instances.begin() + Pick(file_.instances.size()));
        }
        break;
      case 7:
        if (file_.instances.size() >= 2) {
          std::swap(file_.instances[Pick(file_.instances.size())],
                    file_.instances[Pick(file_.instances.size())]);
        }
        break;
      case 8:
        switch (Pick(3)) {
          case 0:
            file_.channel = Pick(2) == 0 ? kChannel291 : static_cast<uint32_t>(rng_());
            break;
          case 1:
            file_.template_type = Pick(2) == 0 ? kIpcTemplateTypeId : static_cast<uint16_t>(rng_());
            break;
          default:
            file_.content_version = static_cast<uint32_t>(rng_());
            break;
        }
        break;
    }
  }

 private:
  size_t Pick(size_t n) { return static_cast<size_t>(rng_() % n); }
  std::string_view PickValue() { return kInterestingValues[Pick(std::size(kInterestingValues))]; }

  uint16_t NewField(uint16_t field) {
    switch (Pick(3)) {
      case 0:
        return kInterestingFields[Pick(std::size(kInterestingFields))];
      case 1:
        return Pick(2) == 0 ? static_cast<uint16_t>(std::min<int>(field + 1, UINT16_MAX))
                            : static_cast<uint16_t>(std::max<int>(field - 1, 1));
      default:
        return static_cast<uint16_t>(1 + Pick(UINT16_MAX));
    }
  }

  Criterion* AnyCriterion() {
    size_t total = 0;
    for (const auto& instance : file_.instances) total += instance.criteria.size();
    if (total == 0) return nullptr;
    size_t k = Pick(total);
    for (auto& instance : file_.instances) {
      if (k < instance.criteria.size()) return &instance.criteria[k];
      k -= instance.criteria.size();
    }
    return nullptr;
  }

  void MutateValue(std::string& value) {
    if (value.empty()) value = "*";
    std::string buffer = value;
    buffer.resize(std::max<size_t>(2 * value.size(), 64));
    const size_t size =
        mutate_bytes_(reinterpret_cast<uint8_t*>(buffer.data()), value.size(), buffer.size());
    buffer.resize(std::min(size, size_t{UINT16_MAX}));
    value = std::move(buffer);
  }

  ChannelFile& file_;
  std::minstd_rand& rng_;
  ByteMutator mutate_bytes_;
};

}  // namespace

bool Is291Class(const SensorVersion& sensor, const ChannelFile& file) {
  if (!sensor.Supports(file.template_type)) return false;  // content the sensor never interprets
  for (const TemplateInstance& instance : file.instances) {
    for (const Criterion& c : instance.criteria) {
      if (!c.wildcard && c.field > sensor.ipc_inputs_supplied) return true;
    }
  }
  return false;
}

std::optional<uintptr_t> RunCatchingFault(void (*fn)(void*), void* arg) {
  // sigsetjmp saves the signal mask, so returning here by siglongjmp unblocks SIGSEGV again.
  if (sigsetjmp(g_fault_jump, 1) != 0) {
    RestoreHandlers();
    return g_fault_address;
  }
  struct sigaction action {};
  action.sa_sigaction = OnFault;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &g_old_segv);
  sigaction(SIGBUS, &action, &g_old_bus);
  fn(arg);
  RestoreHandlers();
  return std::nullopt;
}

size_t MutateChannelFile(uint8_t* data, size_t size, size_t max_size, unsigned seed,
                         ByteMutator mutate_bytes) {
  std::minstd_rand rng(seed);
  if (rng() % 4 != 0) {
    auto file = DecodeChannelFile(std::string_view(reinterpret_cast<const char*>(data), size));
    if (file.ok()) {
      StructureMutator mutator(*file, rng, mutate_bytes);
      for (int i = 1 + static_cast<int>(rng() % 3); i > 0; --i) mutator.MutateOnce();
      auto bytes = EncodeChannelFile(*file);
      if (bytes.ok() && bytes->size() <= max_size) {
        std::memcpy(data, bytes->data(), bytes->size());
        return bytes->size();
      }
    }
  }
  size = mutate_bytes(data, size, max_size);
  if (rng() % 8 != 0) FixLengthAndCrc(data, size);
  return size;
}

void FixLengthAndCrc(uint8_t* data, size_t size) {
  if (size < kChannelHeaderSize) return;
  PutU32(data + 20, static_cast<uint32_t>(size - kChannelHeaderSize));
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  PutU32(data + 24, Crc32(bytes.substr(kChannelHeaderSize), Crc32(bytes.substr(0, 24))));
}

const SensorVersion& SensorOf(FuzzSensor sensor) {
  const SensorVersion* version =
      FindSensorVersion(sensor == FuzzSensor::k711 ? "7.11" : "7.11-fixed");
  if (version == nullptr) Fail("setup", "sensor version missing");
  return *version;
}

void CheckInput(FuzzSensor target, std::string_view bytes, FuzzStats& stats) {
  ++stats.inputs;
  // The file-name parser: whatever it accepts must be exactly what ChannelFileName writes.
  auto id = ParseChannelFileName(bytes);
  if (id.ok()) {
    ++stats.names_parsed;
    if (ChannelFileName(id->content_version, id->channel) != bytes) {
      Fail("name", "'" + std::string(bytes) + "' parses but is not the canonical name");
    }
  } else if (id.status().code() != ErrorCode::kInvalidArgument) {
    Fail("name", "unexpected error " + id.status().ToString());
  }

  // The decoder: Corruption naming a byte inside the input, or a file that encodes back to the
  // very same bytes (the format has one encoding per file).
  auto decoded = DecodeChannelFile(bytes);
  if (!decoded.ok()) {
    const Status& s = decoded.status();
    const size_t at = s.message().find("at byte ");
    if (s.code() != ErrorCode::kCorruption || at == std::string::npos ||
        std::strtoull(s.message().c_str() + at + 8, nullptr, 10) > bytes.size()) {
      Fail("decoder error",
           s.ToString() + " (input of " + std::to_string(bytes.size()) + " bytes)");
    }
    return;
  }
  ++stats.decoded;
  const ChannelFile& file = *decoded;
  auto encoded = EncodeChannelFile(file);
  if (!encoded.ok() || *encoded != bytes) {
    Fail("round trip", encoded.ok() ? "re-encoding gives different bytes"
                                    : "re-encoding fails: " + encoded.status().ToString());
  }

  Check710(file);
  const SensorVersion& sensor = SensorOf(target);
  const bool is_291 = Is291Class(sensor, file);
  stats.class_291 += is_291;
  const bool accepted = CheckValidator(sensor, file);
  stats.accepted += accepted;
  if (accepted && is_291 && target == FuzzSensor::k711Fixed) {
    Fail("validator fix", "7.11-fixed accepted a 291-class file");
  }
  switch (target) {
    case FuzzSensor::k711Fixed:
      CheckFixedInterpreter(sensor, file, is_291, stats);
      break;
    case FuzzSensor::k711:
      if (accepted) Check711Interpreter(sensor, file, is_291, stats);
      break;
  }
}

void PrintStats(FuzzSensor sensor, const FuzzStats& s, std::FILE* out) {
  std::fprintf(out,
               "sensor-fuzz sensor=%.*s inputs=%" PRIu64 " names=%" PRIu64 " decoded=%" PRIu64
               " class291=%" PRIu64 " accepted=%" PRIu64 " interpreted=%" PRIu64 " refused=%" PRIu64
               " faults291=%" PRIu64 " faults_other=%" PRIu64 "\n",
               static_cast<int>(SensorOf(sensor).name.size()), SensorOf(sensor).name.data(),
               s.inputs, s.names_parsed, s.decoded, s.class_291, s.accepted, s.interpreted,
               s.interpreter_refused, s.faults_291, s.faults_other);
}

}  // namespace chaoslab::content::fuzz
