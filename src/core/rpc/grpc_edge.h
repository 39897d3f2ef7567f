// escala's edge to gRPC, shared by the modules that speak it (serving, distributed) and linked by
// no other: the one mapping between escala::Status and grpc::Status, and credentials from
// TlsOptions. Private (library escala_rpc): public headers never carry gRPC types.
#ifndef ESCALA_SRC_CORE_RPC_GRPC_EDGE_H_
#define ESCALA_SRC_CORE_RPC_GRPC_EDGE_H_

#include <memory>
#include <string_view>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/status.h>

#include "escala/core/error.h"
#include "escala/core/tls.h"

namespace escala::rpc {

// escala -> gRPC, for answers to remote callers. Codes with a canonical gRPC equivalent keep
// their message (kInvalidArgument -> INVALID_ARGUMENT, ...). kInternal, kIo, kDataLoss and
// kUnknown become INTERNAL with a generic message, the full status being logged, so that no
// local paths or internal details reach a remote caller (docs/errors.md).
grpc::Status ToGrpcStatus(const Status& status);

// gRPC -> escala, for the status a server answered. UNAUTHENTICATED becomes kPermissionDenied and
// codes escala lacks kUnknown. The message is the server's, after "<context>: " when `context`
// ("coordinator 10.0.0.1:29500: Register") is not empty.
Status FromGrpcStatus(const grpc::Status& status, std::string_view context = {});

// Credentials from TlsOptions (insecure when TLS is off). Throw kInvalidArgument for an
// incomplete configuration or a file that is not PEM, kNotFound for an unreadable file, naming
// the file.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const TlsOptions& tls);
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& tls);

}  // namespace escala::rpc

#endif  // ESCALA_SRC_CORE_RPC_GRPC_EDGE_H_
