// The coordinator of a distributed job: rendezvous (rank assignment and the peer list), a
// key-value store for bootstrap data, barriers, heartbeats and error relay. Wire contract:
// proto/escala/distributed/v1/coordinator.proto.
//
// Workers register with the job id, job token and world size; when world_size workers have
// registered the coordinator assigns ranks (requested ranks are honoured; the others fill the
// free ranks in order of host, local rank and port, so the assignment is deterministic) and
// answers every worker with its rank and the peer list. Each worker then keeps a session open:
// heartbeats go both ways; when a worker reports a failure, ends its session without saying
// goodbye (it crashed or was killed) or stays silent for heartbeat_timeout, the coordinator tells
// every other worker, whose communicators abort.
//
// A job runs in rounds: a registration that arrives after the current round failed (or finished)
// opens a new round with an empty key-value store. That is how `escala launch --max-restarts`
// re-forms a job without restarting the coordinator.
//
// The coordinator runs inside rank 0 (distributed::Connect does that), inside `escala launch`, or
// on its own (`escala coordinator`).
//
// Thread-safety: all methods may be called from any thread. gRPC handlers run on gRPC's threads.
#ifndef ESCALA_DIST_COORDINATOR_H_
#define ESCALA_DIST_COORDINATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "escala/core/tls.h"

namespace escala::distributed {

struct CoordinatorOptions {
  // host:port to listen on; port 0 picks a free port (see Coordinator::port()).
  std::string listen_address = "127.0.0.1:0";
  std::string job_id = "escala";
  // Workers must present this token; empty accepts any token.
  std::string job_token;
  // 0: taken from the first registration of each round.
  int world_size = 0;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{15000};
  // Largest request the coordinator accepts (key-value values travel in requests).
  std::size_t max_message_bytes = 4 << 20;
  TlsOptions tls;
};

// Counters for logs and tests.
struct CoordinatorStats {
  std::uint64_t round = 0;  // the current round (1 after the first registration)
  int registered = 0;       // workers registered in the current round
  int finished = 0;         // workers of the current round that said goodbye
  std::uint64_t failed_rounds = 0;
  bool round_complete = false;  // every rank assigned
  bool round_failed = false;
  bool round_finished = false;  // every worker said goodbye
};

class Coordinator {
 public:
  // Starts serving. Throws kUnavailable if the address cannot be bound, kInvalidArgument for bad
  // options (incomplete TLS configuration, a negative world size).
  explicit Coordinator(CoordinatorOptions options);
  ~Coordinator();  // Shutdown()
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  int port() const;
  // "host:port" as bound (with the actual port).
  std::string address() const;

  CoordinatorStats stats() const;
  // Blocks until the current round finished (every worker said goodbye) or failed, or until
  // `timeout`; returns true if it finished.
  bool WaitUntilFinished(std::chrono::milliseconds timeout);
  // Blocks until a round has failed or finished or `timeout`; true if one did.
  bool WaitUntilRoundEnds(std::chrono::milliseconds timeout);

  // Stops serving; open sessions end with UNAVAILABLE. Idempotent.
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::distributed

#endif  // ESCALA_DIST_COORDINATOR_H_
