// The one escala::Status <-> grpc::Status mapping (core/rpc/grpc_edge.h) that serving and
// distributed share, and TLS credentials from TlsOptions.
#include "core/rpc/grpc_edge.h"

#include <gtest/gtest.h>

#include "test_util/temp_dir.h"

namespace escala::rpc {
namespace {

TEST(GrpcStatus, CanonicalCodesKeepTheirMessageBothWays) {
  const std::pair<ErrorCode, grpc::StatusCode> cases[] = {
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
      {ErrorCode::kUnavailable, grpc::StatusCode::UNAVAILABLE}};
  for (const auto& [code, grpc_code] : cases) {
    const grpc::Status g = ToGrpcStatus(Status(code, "inputs[0] ('x'): bad"));
    EXPECT_EQ(g.error_code(), grpc_code) << ErrorCodeName(code);
    EXPECT_EQ(g.error_message(), "inputs[0] ('x'): bad");
    const Status back = FromGrpcStatus(g);
    EXPECT_EQ(back.code(), code);
    EXPECT_EQ(back.message(), "inputs[0] ('x'): bad");
  }
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "ctx").ok());
}

TEST(GrpcStatus, InternalFailuresReachRemoteCallersWithoutDetails) {
  for (ErrorCode code :
       {ErrorCode::kInternal, ErrorCode::kIo, ErrorCode::kDataLoss, ErrorCode::kUnknown}) {
    const grpc::Status g = ToGrpcStatus(Status(code, "/secret/path: checksum mismatch"));
    EXPECT_EQ(g.error_code(), grpc::StatusCode::INTERNAL) << ErrorCodeName(code);
    EXPECT_EQ(g.error_message().find("/secret"), std::string::npos);
  }
}

TEST(GrpcStatus, AnswersFromServersGetTheirContext) {
  const Status s =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no"), "coordinator a:1");
  EXPECT_EQ(s.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "coordinator a:1: no");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DATA_LOSS, "x")).code(),
            ErrorCode::kDataLoss);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "x")).code(),
            ErrorCode::kInternal);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNKNOWN, "x")).code(),
            ErrorCode::kUnknown);
}

TEST(TlsCredentials, IncompleteOrUnreadableConfigurationsNameWhatIsMissing) {
  TlsOptions off;
  EXPECT_NE(MakeServerCredentials(off), nullptr);
  EXPECT_NE(MakeChannelCredentials(off), nullptr);
  TlsOptions server;
  server.enabled = true;
  server.cert_file = "c.pem";
  try {
    MakeServerCredentials(server);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(e.message().find("--tls-key"), std::string::npos) << e.what();
  }
  testing::TempDir dir;
  testing::WriteFile(dir.File("ca.pem"), "not a certificate");
  TlsOptions client;
  client.enabled = true;
  client.ca_file = dir.File("ca.pem");
  try {
    MakeChannelCredentials(client);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(e.message().find("is not PEM"), std::string::npos) << e.what();
  }
  client.ca_file = dir.File("absent.pem");
  EXPECT_THROW(MakeChannelCredentials(client), Error);
}

}  // namespace
}  // namespace escala::rpc
