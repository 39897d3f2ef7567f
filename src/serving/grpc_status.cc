#include "serving/grpc_status.h"

#include "escala/core/logging.h"

namespace escala::serving::internal {

grpc::Status ToGrpcStatus(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  switch (s.code()) {
    case ErrorCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
    case ErrorCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, s.message()};
    case ErrorCode::kAlreadyExists:
      return {grpc::StatusCode::ALREADY_EXISTS, s.message()};
    case ErrorCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, s.message()};
    case ErrorCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, s.message()};
    case ErrorCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, s.message()};
    case ErrorCode::kOutOfRange:
      return {grpc::StatusCode::OUT_OF_RANGE, s.message()};
    case ErrorCode::kDeadlineExceeded:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, s.message()};
    case ErrorCode::kAborted:
      return {grpc::StatusCode::ABORTED, s.message()};
    case ErrorCode::kCancelled:
      return {grpc::StatusCode::CANCELLED, s.message()};
    case ErrorCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, s.message()};
    case ErrorCode::kUnimplemented:
      return {grpc::StatusCode::UNIMPLEMENTED, s.message()};
    default:
      ESCALA_LOG_ERROR("internal error while serving a request: {}", s.ToString());
      return {grpc::StatusCode::INTERNAL, "internal error (see the server log)"};
  }
}

Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return Status::Ok();
  ErrorCode code = ErrorCode::kUnknown;
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      code = ErrorCode::kInvalidArgument;
      break;
    case grpc::StatusCode::NOT_FOUND:
      code = ErrorCode::kNotFound;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      code = ErrorCode::kAlreadyExists;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      code = ErrorCode::kPermissionDenied;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      code = ErrorCode::kResourceExhausted;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      code = ErrorCode::kFailedPrecondition;
      break;
    case grpc::StatusCode::OUT_OF_RANGE:
      code = ErrorCode::kOutOfRange;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      code = ErrorCode::kDeadlineExceeded;
      break;
    case grpc::StatusCode::ABORTED:
      code = ErrorCode::kAborted;
      break;
    case grpc::StatusCode::CANCELLED:
      code = ErrorCode::kCancelled;
      break;
    case grpc::StatusCode::UNAVAILABLE:
      code = ErrorCode::kUnavailable;
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      code = ErrorCode::kUnimplemented;
      break;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
      code = ErrorCode::kInternal;
      break;
    default:
      break;
  }
  return Status(code, s.error_message());
}

}  // namespace escala::serving::internal
