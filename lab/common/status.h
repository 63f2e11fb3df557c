// The one error model of chaoslab (see docs/ERRORS.md).
//
// Runtime paths return Status or Result<T>; success is cheap (no allocation).
// Exceptions from third-party libraries (yaml-cpp, Boost, libvirt) are caught where those libraries
// are called and turned into a Status that says what failed and where. Impossible states abort.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace chaoslab {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad YAML, bad flag, bad file)
  kNotFound,            // a named thing does not exist (file, host, run, image)
  kIoError,             // the OS said no (open, read, write, socket)
  kCorruption,          // data is malformed (channel file, journal, protocol message)
  kTimeout,             // a deadline passed
  kUnavailable,         // a peer went away (QEMU died, socket closed, hypervisor gone)
  kFailedPrecondition,  // the call is not valid in the current state
  kCancelled,           // interrupted by the user (Ctrl-C, SIGTERM)
  kInternal,            // a bug or an unexpected failure of a dependency
};

std::string_view ErrorCodeName(ErrorCode code);

// Where in a user's file something is; printed as "file:line:column".
struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based; 0 = unknown
  std::string ToString() const;
};

class Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {ErrorCode::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {ErrorCode::kNotFound, std::move(msg)}; }
  static Status IoError(std::string msg) { return {ErrorCode::kIoError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {ErrorCode::kCorruption, std::move(msg)}; }
  static Status Timeout(std::string msg) { return {ErrorCode::kTimeout, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {ErrorCode::kUnavailable, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {ErrorCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Cancelled(std::string msg) { return {ErrorCode::kCancelled, std::move(msg)}; }
  static Status Internal(std::string msg) { return {ErrorCode::kInternal, std::move(msg)}; }
  // An error in a user's file: the message is prefixed with "file:line:column: ".
  static Status AtLocation(const SourceLocation& where, std::string msg);
  // errno-based I/O error: "<what>: <strerror(err)>".
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<CodeName>: <message>", or "OK".
  std::string ToString() const;
  // The same error with "<context>: " in front of the message. OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  Status(ErrorCode code, std::string msg) : code_(code), message_(std::move(msg)) {}
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or the error that prevented it.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) std::abort();                     // an OK Result must carry a value
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return Check(), *value_; }
  const T& value() const& { return Check(), *value_; }
  T&& value() && { return Check(), std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void Check() const {
    if (!value_) std::abort();  // reading the value of a failed Result is a bug
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace chaoslab

#define CHAOSLAB_CONCAT_INNER(a, b) a##b
#define CHAOSLAB_CONCAT(a, b) CHAOSLAB_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::chaoslab::Status chaoslab_status_ = (expr);        \
    if (!chaoslab_status_.ok()) return chaoslab_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CHAOSLAB_CONCAT(chaoslab_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
