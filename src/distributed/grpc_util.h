// The distributed module's edge to gRPC: status conversion (the one place it happens), credentials
// and channel arguments from escala's options. Private to src/distributed.
#ifndef ESCALA_SRC_DIST_GRPC_UTIL_H_
#define ESCALA_SRC_DIST_GRPC_UTIL_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "escala/core/error.h"
#include "escala/distributed/tls.h"

namespace escala::distributed::internal {

// escala -> gRPC, for answers to remote callers. Internal and I/O failures are replaced by a
// generic message (the full one is logged) so that no local detail leaks.
grpc::Status ToGrpcStatus(const Status& status);
// gRPC -> escala; `context` says what was being done ("coordinator 10.0.0.1:29500: Register").
Status FromGrpcStatus(const grpc::Status& status, std::string_view context);

// Credentials from TlsOptions (insecure when TLS is off). Throw kInvalidArgument/kNotFound for an
// incomplete configuration or unreadable files.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const TlsOptions& tls);
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& tls);

// Channel arguments: message size limits, TLS name override, and (data_plane) the flow-control
// and framing settings tuned for bulk transfer.
grpc::ChannelArguments MakeChannelArguments(const TlsOptions& tls, std::size_t max_message_bytes,
                                            bool data_plane);
// The same settings for a server, which also owns its port exclusively (no SO_REUSEPORT).
void ConfigureServerBuilder(grpc::ServerBuilder& builder, std::size_t max_message_bytes,
                            bool data_plane);

// "ipv4:10.0.0.2:4711" / "ipv6:[::1]:4711" -> "10.0.0.2" / "::1" (empty if unparseable).
std::string HostFromPeer(const std::string& grpc_peer);

// Steady-clock deadline -> what gRPC accepts.
std::chrono::system_clock::time_point ToSystemDeadline(std::chrono::steady_clock::time_point t);

// Constant-time comparison for secrets.
bool SecretEquals(std::string_view a, std::string_view b);

}  // namespace escala::distributed::internal

#endif  // ESCALA_SRC_DIST_GRPC_UTIL_H_
