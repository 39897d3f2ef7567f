#include "core/rpc/grpc_edge.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "escala/core/logging.h"

namespace escala::rpc {
namespace {

// The codes both sides share, one for one.
constexpr std::pair<ErrorCode, grpc::StatusCode> kSameCode[] = {
    {ErrorCode::kCancelled, grpc::StatusCode::CANCELLED},
    {ErrorCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
    {ErrorCode::kNotFound, grpc::StatusCode::NOT_FOUND},
    {ErrorCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
    {ErrorCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
    {ErrorCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
    {ErrorCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
    {ErrorCode::kAborted, grpc::StatusCode::ABORTED},
    {ErrorCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
    {ErrorCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
    {ErrorCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
};

std::optional<grpc::StatusCode> SharedCode(ErrorCode code) {
  for (const auto& [e, g] : kSameCode) {
    if (e == code) return g;
  }
  return std::nullopt;
}

ErrorCode FromGrpcCode(grpc::StatusCode code) {
  for (const auto& [e, g] : kSameCode) {
    if (g == code) return e;
  }
  switch (code) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return ErrorCode::kPermissionDenied;
    case grpc::StatusCode::DATA_LOSS:
      return ErrorCode::kDataLoss;
    case grpc::StatusCode::INTERNAL:
      return ErrorCode::kInternal;
    default:
      return ErrorCode::kUnknown;
  }
}

std::string ReadPem(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  ESCALA_CHECK(in.good(), kNotFound, "cannot read TLS {} file '{}'", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  ESCALA_CHECK(pem.find("-----BEGIN") != std::string::npos, kInvalidArgument,
               "TLS {} file '{}' is not PEM", what, path);
  return pem;
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  if (const auto code = SharedCode(status.code())) return grpc::Status(*code, status.message());
  ESCALA_LOG_ERROR("internal failure answered as INTERNAL: {}", status.ToString());
  return grpc::Status(grpc::StatusCode::INTERNAL, "internal error (see the server's log)");
}

Status FromGrpcStatus(const grpc::Status& status, std::string_view context) {
  if (status.ok()) return Status::Ok();
  const ErrorCode code = FromGrpcCode(status.error_code());
  if (context.empty()) return Status(code, status.error_message());
  return Status(code, fmt::format("{}: {}", context, status.error_message()));
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  tls.Validate(/*as_server=*/false);
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = ReadPem(tls.ca_file, "CA");
  if (tls.mutual) {
    opts.pem_cert_chain = ReadPem(tls.cert_file, "certificate");
    opts.pem_private_key = ReadPem(tls.key_file, "key");
  }
  return grpc::SslCredentials(opts);
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureServerCredentials();
  tls.Validate(/*as_server=*/true);
  grpc::SslServerCredentialsOptions opts(
      tls.mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!tls.ca_file.empty()) opts.pem_root_certs = ReadPem(tls.ca_file, "CA");
  opts.pem_key_cert_pairs.push_back(
      {ReadPem(tls.key_file, "key"), ReadPem(tls.cert_file, "certificate")});
  return grpc::SslServerCredentials(opts);
}

}  // namespace escala::rpc
