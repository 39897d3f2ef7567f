#include "escala/core/error.h"

#include <cstring>
#include <new>

namespace escala {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kCancelled:
      return "Cancelled";
    case ErrorCode::kUnknown:
      return "Unknown";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kAlreadyExists:
      return "AlreadyExists";
    case ErrorCode::kPermissionDenied:
      return "PermissionDenied";
    case ErrorCode::kResourceExhausted:
      return "ResourceExhausted";
    case ErrorCode::kFailedPrecondition:
      return "FailedPrecondition";
    case ErrorCode::kAborted:
      return "Aborted";
    case ErrorCode::kOutOfRange:
      return "OutOfRange";
    case ErrorCode::kUnimplemented:
      return "Unimplemented";
    case ErrorCode::kInternal:
      return "Internal";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kDataLoss:
      return "DataLoss";
    case ErrorCode::kIo:
      return "IoError";
  }
  return "Unknown";
}

Error::Error(ErrorCode code, std::string message)
    : code_(code),
      message_(std::move(message)),
      what_(fmt::format("{}: {}", ErrorCodeName(code_), message_)) {}

Error Error::WithContext(std::string_view context) const {
  return Error(code_, fmt::format("{}: {}", context, message_));
}

Status Status::FromCurrentException() {
  try {
    throw;
  } catch (const Error& e) {
    return FromError(e);
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, e.what());
  } catch (...) {
    return Status(ErrorCode::kInternal, "unknown exception");
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return fmt::format("{}: {}", ErrorCodeName(code_), message_);
}

void Status::ThrowIfError() const {
  if (!ok()) throw Error(code_, message_);
}

namespace internal {

void ThrowError(ErrorCode code, std::string message) {
  throw Error(code, std::move(message));
}

void ThrowErrno(std::string message, int err) {
  throw Error(ErrorCode::kIo, fmt::format("{}: {}", message, std::strerror(err)));
}

}  // namespace internal
}  // namespace escala

namespace escala {

std::string ShortList(const std::vector<std::string>& items, std::size_t most) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < most; ++i) {
    out += (i ? ", " : "") + items[i];
  }
  if (items.size() > most) out += fmt::format(", ... {} in all", items.size());
  return out;
}

}  // namespace escala
