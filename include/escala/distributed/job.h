// A worker's membership in a distributed job: registration at the coordinator (rendezvous), the
// session that carries heartbeats and failure relay, a key-value store and barriers.
//
// distributed::Connect() builds one of these and hands it to the gRPC ring communicator; use
// JobSession directly for other transports (the NCCL backend exchanges its unique id through
// Set/Get).
//
// Failure relay: once StartSession() ran, a failure of any other worker (reported by it, or
// noticed by the coordinator because its session broke or fell silent), and the loss of the
// coordinator itself, are delivered to the failure handlers, at most once, on a session thread.
//
// Thread-safety: all methods may be called from any thread.
#ifndef ESCALA_DIST_JOB_H_
#define ESCALA_DIST_JOB_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "escala/core/error.h"
#include "escala/core/tls.h"

namespace escala::distributed {

struct PeerInfo {
  int rank = 0;
  std::string address;  // data-plane host:port (empty if the peer serves none)
  std::string hostname;
  std::int64_t pid = 0;
};

struct Membership {
  int rank = 0;
  int world_size = 1;
  std::uint64_t round = 0;
  std::vector<PeerInfo> peers;  // indexed by rank
  std::string observed_host;    // this worker's address as the coordinator saw it
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{15000};
};

struct JobOptions {
  std::string coordinator;  // host:port
  std::string job_id = "escala";
  std::string job_token;
  // How long Register waits for the coordinator to come up and the world to complete.
  std::chrono::milliseconds rendezvous_timeout{std::chrono::minutes(5)};
  // Default wait of Get and Barrier.
  std::chrono::milliseconds rpc_timeout{std::chrono::minutes(5)};
  std::size_t max_message_bytes = 4 << 20;
  TlsOptions tls;
};

// What this worker tells the coordinator about itself.
struct Registration {
  int world_size = 1;
  int requested_rank = -1;  // -1: let the coordinator choose
  std::string host;         // data-plane host; empty: the address the coordinator sees
  int port = 0;             // data-plane port; 0: none
  int local_rank = 0;
};

class JobSession {
 public:
  // Registers and blocks until the world is complete (or rendezvous_timeout: kDeadlineExceeded
  // naming how many workers came). Throws kPermissionDenied (wrong token), kInvalidArgument
  // (job id or world size disagree with the job, rank out of range), kAlreadyExists (the
  // requested rank is taken), kAborted (another worker left during rendezvous), kUnavailable
  // (no coordinator reachable).
  static std::unique_ptr<JobSession> Join(const JobOptions& options,
                                          const Registration& registration);
  ~JobSession();  // says goodbye (a clean exit) unless a failure was reported
  JobSession(const JobSession&) = delete;
  JobSession& operator=(const JobSession&) = delete;

  const Membership& membership() const;
  int rank() const { return membership().rank; }
  int world_size() const { return membership().world_size; }

  // Opens the session: heartbeats start, and failures of the job are delivered to the handlers
  // added with OnFailure. Join() calls it.
  void StartSession();

  // Adds a handler called once with the first failure the session learns of: another worker's
  // failure (kAborted, or kInvalidArgument for a mismatched collective) or the loss of the
  // coordinator (kUnavailable). Returns an id for RemoveFailureHandler. A handler added after the
  // failure is called at once.
  int AddFailureHandler(std::function<void(const Status&)> handler);
  // After this returns the handler is not running and will not run.
  void RemoveFailureHandler(int id);
  // The first failure relayed so far (OK if none).
  Status failure() const;

  // Tells the coordinator this worker failed; every other worker is told. Idempotent.
  void ReportFailure(const Status& status);
  // Tells the coordinator this worker finished cleanly and closes the session. Idempotent.
  void Goodbye();

  // Progress reporting: how many collectives this worker has started (sent with heartbeats), and
  // every rank's count as the coordinator last relayed it (empty until the first heartbeat).
  // Used to name the ranks that never reached a collective that timed out.
  void SetCollectivesStarted(std::uint64_t n);
  std::vector<std::uint64_t> PeerCollectivesStarted() const;

  // Key-value store of the current round. Values up to max_message_bytes.
  void Set(const std::string& key, const std::string& value);
  // Waits up to `timeout` (0: rpc_timeout) for the key; throws kNotFound when it stays unset.
  std::string Get(const std::string& key, std::chrono::milliseconds timeout = {});
  // Returns when every worker of the round entered the barrier `name`; kDeadlineExceeded after
  // `timeout` (0: rpc_timeout).
  void Barrier(const std::string& name, std::chrono::milliseconds timeout = {});

 private:
  class Impl;
  explicit JobSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::distributed

#endif  // ESCALA_DIST_JOB_H_
