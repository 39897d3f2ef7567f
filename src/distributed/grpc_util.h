// The distributed module's gRPC settings: channel and server arguments, peer addresses, deadlines.
// Status conversion and credentials are shared with serving (core/rpc/grpc_edge.h). Private to
// src/distributed.
#ifndef ESCALA_SRC_DIST_GRPC_UTIL_H_
#define ESCALA_SRC_DIST_GRPC_UTIL_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "escala/core/tls.h"

namespace escala::distributed::internal {

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
