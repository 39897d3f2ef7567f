#include "distributed/grpc_util.h"

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <grpc/grpc.h>

#include "distributed/transport.h"
#include "escala/core/logging.h"

namespace escala::distributed::internal {
namespace {

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
  const int code = static_cast<int>(status.code());
  if (status.code() == ErrorCode::kInternal || status.code() == ErrorCode::kIo ||
      code > static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    ESCALA_LOG_ERROR("distributed: internal failure answered as INTERNAL: {}", status.ToString());
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error (see the server's log)");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), status.message());
}

Status FromGrpcStatus(const grpc::Status& status, std::string_view context) {
  if (status.ok()) return Status::Ok();
  ErrorCode code;
  switch (status.error_code()) {
    case grpc::StatusCode::CANCELLED:
      code = ErrorCode::kCancelled;
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      code = ErrorCode::kInvalidArgument;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      code = ErrorCode::kDeadlineExceeded;
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
    case grpc::StatusCode::ABORTED:
      code = ErrorCode::kAborted;
      break;
    case grpc::StatusCode::OUT_OF_RANGE:
      code = ErrorCode::kOutOfRange;
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      code = ErrorCode::kUnimplemented;
      break;
    case grpc::StatusCode::UNAVAILABLE:
      code = ErrorCode::kUnavailable;
      break;
    case grpc::StatusCode::DATA_LOSS:
      code = ErrorCode::kDataLoss;
      break;
    case grpc::StatusCode::INTERNAL:
      code = ErrorCode::kInternal;
      break;
    default:
      code = ErrorCode::kUnknown;
      break;
  }
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
