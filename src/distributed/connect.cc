// distributed::Connect: environment -> coordinator (maybe hosted) -> data-plane server ->
// rendezvous -> links -> communicator. Also the option parsers shared with the CLI.
#include "escala/distributed/connect.h"

#include <cstdlib>

#include <fmt/format.h>

#include "distributed/grpc_ring.h"
#include "distributed/torch_store.h"
#include "distributed/transport.h"
#include "escala/core/fault_injection.h"
#include "escala/core/logging.h"
#include "escala/distributed/coordinator.h"

namespace escala::distributed {
namespace {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

// Splits "30s" into 30 and "s".
bool SplitNumber(std::string_view text, double* value, std::string* unit) {
  const std::string t = Trim(text);
  std::size_t i = 0;
  while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) ++i;
  if (i == 0) return false;
  try {
    std::size_t used = 0;
    *value = std::stod(t.substr(0, i), &used);
    if (used != i) return false;
  } catch (const std::exception&) {
    return false;
  }
  *unit = Trim(std::string_view(t).substr(i));
  return true;
}

std::unique_ptr<Coordinator> HostCoordinator(const WorkerEnv& env, const ConnectOptions& options) {
  if (!env.run_coordinator) return nullptr;
  CoordinatorOptions co;
  co.listen_address = env.coordinator;
  co.job_id = env.job_id;
  co.job_token = env.job_token;
  co.world_size = env.world_size;
  co.heartbeat_interval = options.heartbeat_interval;
  co.heartbeat_timeout = options.heartbeat_timeout;
  co.tls = options.tls;
  return std::make_unique<Coordinator>(co);
}

// The address to register at: env.coordinator, or (torchrun's static rendezvous) the one rank 0
// publishes in torchrun's store: the hosted coordinator's own address on rank 0.
std::string CoordinatorAddress(const WorkerEnv& env, const Coordinator* hosted,
                               std::chrono::milliseconds timeout) {
  if (env.coordinator_store.empty()) return env.coordinator;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  internal::TorchStoreClient store(env.coordinator_store, deadline);
  if (hosted != nullptr) {
    store.Set(env.coordinator_key, hosted->address());
    return hosted->address();
  }
  const std::string address = store.Get(env.coordinator_key, deadline);
  ESCALA_LOG_DEBUG("rank {}: coordinator at {} (from torchrun's store {})", env.rank, address,
                   env.coordinator_store);
  return ParseHostPort(address, "coordinator address in torchrun's store").ToString();
}

}  // namespace

std::chrono::milliseconds ParseDuration(std::string_view text, std::string_view what) {
  double v = 0;
  std::string unit;
  ESCALA_CHECK(SplitNumber(text, &v, &unit), kInvalidArgument,
               "{} '{}' is not a duration (e.g. 500ms, 30s, 5m)", what, text);
  double ms;
  if (unit == "ms") {
    ms = v;
  } else if (unit.empty() || unit == "s") {
    ms = v * 1e3;
  } else if (unit == "m" || unit == "min") {
    ms = v * 60e3;
  } else if (unit == "h") {
    ms = v * 3600e3;
  } else {
    Throw(ErrorCode::kInvalidArgument, "{} '{}': unknown unit '{}' (ms, s, m, h)", what, text,
          unit);
  }
  ESCALA_CHECK(ms >= 1 && ms < 1e12, kInvalidArgument, "{} '{}' is out of range", what, text);
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::size_t ParseByteSize(std::string_view text, std::string_view what) {
  double v = 0;
  std::string unit;
  ESCALA_CHECK(SplitNumber(text, &v, &unit), kInvalidArgument,
               "{} '{}' is not a size (e.g. 65536, 64KiB, 4MiB)", what, text);
  double mult;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "k" || unit == "K" || unit == "KB" || unit == "KiB") {
    mult = 1024;
  } else if (unit == "m" || unit == "M" || unit == "MB" || unit == "MiB") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "G" || unit == "GB" || unit == "GiB") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    Throw(ErrorCode::kInvalidArgument, "{} '{}': unknown unit '{}' (KiB, MiB, GiB)", what, text,
          unit);
  }
  const double bytes = v * mult;
  ESCALA_CHECK(bytes >= 1 && bytes < 1e15, kInvalidArgument, "{} '{}' is out of range", what, text);
  return static_cast<std::size_t>(bytes);
}

ConnectOptions ConnectOptions::FromEnvironment() {
  ConnectOptions o;
  auto duration = [](const char* name, std::chrono::milliseconds& out) {
    if (auto v = Env(name)) out = ParseDuration(*v, name);
  };
  auto size = [](const char* name, std::size_t& out) {
    if (auto v = Env(name)) out = ParseByteSize(*v, name);
  };
  size("ESCALA_CHUNK_BYTES", o.ring.chunk_bytes);
  size("ESCALA_SMALL_MESSAGE_BYTES", o.ring.small_message_bytes);
  size("ESCALA_MAX_MESSAGE_BYTES", o.ring.max_message_bytes);
  duration("ESCALA_CONNECT_TIMEOUT", o.ring.connect_timeout);
  duration("ESCALA_COLLECTIVE_TIMEOUT", o.collective_timeout);
  duration("ESCALA_RENDEZVOUS_TIMEOUT", o.rendezvous_timeout);
  duration("ESCALA_HEARTBEAT_INTERVAL", o.heartbeat_interval);
  duration("ESCALA_HEARTBEAT_TIMEOUT", o.heartbeat_timeout);
  duration("ESCALA_LINGER_TIMEOUT", o.linger_timeout);
  o.bind_host = Env("ESCALA_BIND_HOST").value_or("");
  o.advertise_host = Env("ESCALA_ADVERTISE_HOST").value_or("");
  o.tls = TlsOptions::FromEnvironment();
  return o;
}

std::unique_ptr<Communicator> Connect(const WorkerEnv& env, const ConnectOptions& options) {
  ESCALA_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, kInvalidArgument,
               "rank {} is out of range for world size {}", env.rank, env.world_size);
  if (env.world_size == 1) {
    auto comm = MakeSelfCommunicator();
    comm->set_default_timeout(options.collective_timeout);
    return comm;
  }
  const RingOptions& ring = options.ring;
  ESCALA_CHECK(ring.chunk_bytes >= 1024 && ring.chunk_bytes + 4096 <= ring.max_message_bytes,
               kInvalidArgument,
               "chunk size {} must be at least 1 KiB and below the message size limit {}",
               ring.chunk_bytes, ring.max_message_bytes);
  const HostPort coordinator = ParseHostPort(env.coordinator, "coordinator address");
  options.tls.Validate(/*as_server=*/true);
  options.tls.Validate(/*as_server=*/false);

  std::unique_ptr<Coordinator> hosted = HostCoordinator(env, options);
  const std::string coordinator_address =
      CoordinatorAddress(env, hosted.get(), options.rendezvous_timeout);

  internal::TransportOptions to;
  to.job_id = env.job_id;
  to.job_token = env.job_token;
  const std::string bind_host = !options.bind_host.empty()     ? options.bind_host
                                : IsLoopback(coordinator.host) ? "127.0.0.1"
                                                               : "0.0.0.0";
  to.bind_address = HostPort{bind_host, 0}.ToString();
  to.max_message_bytes = ring.max_message_bytes;
  to.inbox_limit_bytes = std::max<std::size_t>(ring.chunk_bytes * 8, std::size_t{16} << 20);
  to.tls = options.tls;
  auto transport = std::make_unique<internal::Transport>(to);

  JobOptions jo;
  jo.coordinator = coordinator_address;
  jo.job_id = env.job_id;
  jo.job_token = env.job_token;
  jo.rendezvous_timeout = options.rendezvous_timeout;
  jo.tls = options.tls;
  Registration reg;
  reg.world_size = env.world_size;
  reg.requested_rank = env.rank;
  reg.host = options.advertise_host;
  reg.port = transport->port();
  reg.local_rank = env.local_rank;
  std::shared_ptr<JobSession> session = JobSession::Join(jo, reg);
  FaultPoint("rendezvous");  // tests of crash safety: joined, the data plane not yet connected
  const Membership& m = session->membership();
  // A worker that dies between rendezvous and its links would otherwise leave the peers waiting
  // for its inbound link until connect_timeout: the coordinator's word ends the wait.
  internal::Transport* t = transport.get();
  const int handler = session->AddFailureHandler([t](const Status& s) { t->Interrupt(s); });
  try {
    std::vector<std::string> addresses;
    for (const PeerInfo& p : m.peers) addresses.push_back(p.address);
    transport->Connect(m.rank, m.world_size, m.round, internal::LinkedPeers(m.rank, m.world_size),
                       addresses, std::chrono::steady_clock::now() + ring.connect_timeout);
  } catch (...) {
    session->RemoveFailureHandler(handler);
    // Tell the others at once instead of letting them wait for their connect timeout.
    session->ReportFailure(Status::FromCurrentException());
    throw;
  }
  session->RemoveFailureHandler(handler);
  const char* engine = std::getenv("GRPC_POLL_STRATEGY");
  ESCALA_LOG_DEBUG("rank {}/{} connected (round {}, data plane on port {}, gRPC engine {})", m.rank,
                   m.world_size, m.round, transport->port(),
                   engine != nullptr ? engine : "default");
  auto comm = internal::MakeGrpcRing(std::move(transport), std::move(session), std::move(hosted),
                                     ring, options.linger_timeout);
  comm->set_default_timeout(options.collective_timeout);
  return comm;
}

}  // namespace escala::distributed
