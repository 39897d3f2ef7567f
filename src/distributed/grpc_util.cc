#include "distributed/grpc_util.h"

#include <cstdlib>
#include <mutex>

#include <fmt/format.h>
#include <grpc/grpc.h>

#include "distributed/transport.h"
#include "escala/core/logging.h"

namespace escala::distributed::internal {
namespace {
int ClampInt(std::size_t v) {
  return v > static_cast<std::size_t>(INT32_MAX) ? INT32_MAX : static_cast<int>(v);
}
}  // namespace

grpc::ChannelArguments MakeChannelArguments(const TlsOptions& tls, std::size_t max_message_bytes,
                                            bool data_plane) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(ClampInt(max_message_bytes));
  args.SetMaxSendMessageSize(ClampInt(max_message_bytes));
  if (tls.enabled && !tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  // A channel of its own per link: never share a TCP connection with another channel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Give up on an unreachable address quickly; the caller's deadline bounds the rest.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (data_plane) {
    // Bulk transfer: a large initial stream window (no slow start of HTTP/2 flow control) and
    // large socket reads. HTTP/2 frames stay at gRPC's default size: larger ones measured no
    // faster, sometimes slower.
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_TCP_READ_CHUNK_SIZE, 1 << 20);
    args.SetInt(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 64 << 10);
    args.SetInt(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 4 << 20);
    args.SetInt(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 8 << 20);
  }
  return args;
}

void ConfigureServerBuilder(grpc::ServerBuilder& builder, std::size_t max_message_bytes,
                            bool data_plane) {
  // Own the port: with SO_REUSEPORT (gRPC's default on Linux) a second job's server would bind the
  // same port and the kernel would split the connections between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(ClampInt(max_message_bytes));
  builder.SetMaxSendMessageSize(ClampInt(max_message_bytes));
  if (data_plane) {
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_TCP_READ_CHUNK_SIZE, 1 << 20);
    builder.AddChannelArgument(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 64 << 10);
    builder.AddChannelArgument(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 4 << 20);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 8 << 20);
  }
}

std::string HostFromPeer(const std::string& peer) {
  std::string_view p = peer;
  if (p.starts_with("ipv4:")) {
    p.remove_prefix(5);
    const auto colon = p.rfind(':');
    return std::string(colon == std::string_view::npos ? p : p.substr(0, colon));
  }
  if (p.starts_with("ipv6:")) {
    p.remove_prefix(5);
    if (p.starts_with('[')) {
      const auto close = p.find(']');
      if (close != std::string_view::npos) {
        std::string_view host = p.substr(1, close - 1);
        // An IPv4 client of a dual-stack server: peers should dial the IPv4 address.
        if (host.starts_with("::ffff:") && host.find('.') != std::string_view::npos) {
          host.remove_prefix(7);
        }
        return std::string(host);
      }
    }
    return {};
  }
  return {};
}

std::chrono::system_clock::time_point ToSystemDeadline(std::chrono::steady_clock::time_point t) {
  const auto now = std::chrono::steady_clock::now();
  const auto left = t > now ? t - now : std::chrono::steady_clock::duration::zero();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

std::string PreferPollEngine() {
  static std::once_flag once;
  static std::string engine;
  std::call_once(once, [] {
    if (const char* v = std::getenv("GRPC_POLL_STRATEGY"); v != nullptr && *v != '\0') {
      engine = v;
    } else if (grpc_is_initialized() != 0) {
      engine = "default";
    } else {
      setenv("GRPC_POLL_STRATEGY", "poll", 0);
      engine = "poll";
    }
  });
  return engine;
}

bool SecretEquals(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace escala::distributed::internal
