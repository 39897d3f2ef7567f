// escala's error model.
//
// Functions in escala's public API report failure by throwing escala::Error. An Error carries
// an ErrorCode (the kind of failure, stable and machine-readable: the serving layer maps it to
// a gRPC status code) and a message written for the person who has to fix the problem: it names
// the file, line and column, the request field, or the rank, peer and step involved.
//
// Where an exception cannot travel (across threads, through a gRPC handler, in the result of an
// asynchronous collective) the failure is carried as a Status value and rethrown with
// Status::ThrowIfError() on the caller's side. docs/errors.md describes the whole model.
//
// Thread-safety: Error and Status are values; const methods may be called concurrently.
#ifndef ESCALA_CORE_ERROR_H_
#define ESCALA_CORE_ERROR_H_

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace escala {

// The kinds of failure. Values follow the canonical gRPC codes where one exists, so that the
// mapping at the RPC edge is obvious; kIo is escala's own (an operating-system I/O failure).
enum class ErrorCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,   // bad input: a malformed file, request field, flag or config value
  kDeadlineExceeded = 4,  // a timeout: a collective, a rendezvous, a request
  kNotFound = 5,          // a file, column, model or version that does not exist
  kAlreadyExists = 6,
  kPermissionDenied = 7,    // e.g. a wrong job token
  kResourceExhausted = 8,   // a size limit: message, memory cap, queue
  kFailedPrecondition = 9,  // the object is in the wrong state (e.g. transform before fit)
  kAborted = 10,            // a peer failed and the operation was abandoned
  kOutOfRange = 11,
  kUnimplemented = 12,  // a feature this build lacks (e.g. CUDA in a CPU-only build)
  kInternal = 13,       // a bug in escala: an invariant did not hold
  kUnavailable = 14,    // not ready, shutting down, a peer that refuses connections
  kDataLoss = 15,       // corruption: checksum mismatch, truncated bundle or checkpoint
  kIo = 100,            // the operating system refused an I/O operation (open, read, write, fsync)
};

// "InvalidArgument", "NotFound", ...
std::string_view ErrorCodeName(ErrorCode code);

// The exception every escala API throws. what() is "<CodeName>: <message>".
class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message);

  ErrorCode code() const noexcept { return code_; }
  // The message without the code prefix.
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept override { return what_.c_str(); }

  // Returns a copy whose message is "<context>: <message>": callers add where they were
  // (e.g. "loading bundle m.bundle") while the code stays that of the root cause.
  Error WithContext(std::string_view context) const;

 private:
  ErrorCode code_;
  std::string message_;
  std::string what_;
};

// A failure carried as a value, for the places an exception cannot cross.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // Captures the exception currently being handled (call from a catch block). Non-escala
  // exceptions become kInternal (std::bad_alloc becomes kResourceExhausted).
  static Status FromCurrentException();
  static Status FromError(const Error& e) { return Status(e.code(), e.message()); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Throws the equivalent escala::Error when not OK.
  void ThrowIfError() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

namespace internal {
[[noreturn]] void ThrowError(ErrorCode code, std::string message);
[[noreturn]] void ThrowErrno(std::string message, int err);
}  // namespace internal

// Throws escala::Error(code, fmt::format(...)).
template <typename... Args>
[[noreturn]] void Throw(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  internal::ThrowError(code, fmt::format(format, std::forward<Args>(args)...));
}

// Throws a kIo error whose message ends with strerror(errno_value).
template <typename... Args>
[[noreturn]] void ThrowErrno(int errno_value, fmt::format_string<Args...> format, Args&&... args) {
  internal::ThrowErrno(fmt::format(format, std::forward<Args>(args)...), errno_value);
}

// "a, b, c, ... N in all": at most `most` items of a list, for messages.
std::string ShortList(const std::vector<std::string>& items, std::size_t most = 10);

}  // namespace escala

// ESCALA_CHECK(cond, code, fmt, args...): throws when cond is false. For conditions that depend
// on input; use ESCALA_DCHECK-style asserts for internal invariants.
#define ESCALA_CHECK(cond, code, ...)                          \
  do {                                                         \
    if (!(cond)) [[unlikely]] {                                \
      ::escala::Throw(::escala::ErrorCode::code, __VA_ARGS__); \
    }                                                          \
  } while (false)

// Internal invariant: a failure is a bug in escala and is reported as kInternal with the
// source location.
#define ESCALA_ASSERT(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) [[unlikely]] {                                                             \
      ::escala::Throw(::escala::ErrorCode::kInternal, "internal check failed at {}:{}: {}", \
                      __FILE__, __LINE__, #cond);                                           \
    }                                                                                       \
  } while (false)

#endif  // ESCALA_CORE_ERROR_H_
