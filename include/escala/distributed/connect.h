// Joining a distributed job with one call: distributed::Connect(WorkerEnv::FromEnvironment())
// returns the Communicator a data-parallel component needs, whatever launched the process.
//
// For a world of one it returns the size-1 communicator (no network). Otherwise it starts the
// coordinator if this process is to host it (rank 0 by default), starts this worker's data-plane
// server, registers (rendezvous), connects the links of the gRPC ring and returns the "grpc-ring"
// communicator, which owns the job session (heartbeats, error relay) and, on rank 0, the hosted
// coordinator. Destroying the communicator says goodbye to its peers and the coordinator; on the
// hosting rank it then waits up to `linger_timeout` for the other workers to finish before
// stopping the coordinator. Destroy it before the process exits: a worker that vanishes without
// a goodbye is reported to the others as failed.
//
// The gRPC ring communicator: all-reduce is a ring reduce-scatter + all-gather, in chunks of
// chunk_bytes pipelined across steps, for messages above small_message_bytes, and recursive
// doubling below; broadcast is a binomial tree; all-gather(v) a ring; barrier a dissemination
// barrier. Payloads are sent straight from the caller's buffers. docs/distributed.md has the
// protocol, the algorithms and the fault model.
//
// Thread-safety: Connect may be called from several threads (each builds its own worker).
#ifndef ESCALA_DIST_CONNECT_H_
#define ESCALA_DIST_CONNECT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "escala/core/communicator.h"
#include "escala/core/tls.h"
#include "escala/distributed/job.h"
#include "escala/distributed/worker_env.h"

namespace escala::distributed {

struct RingOptions {
  // Largest payload of one message; all-reduce segments are split into chunks of this size so
  // that chunk k+1 travels while chunk k is reduced.
  std::size_t chunk_bytes = std::size_t{1} << 20;
  // All-reduces of at most this many bytes use recursive doubling (latency) instead of the ring.
  std::size_t small_message_bytes = std::size_t{64} << 10;
  // gRPC message size limit of the data plane; must exceed chunk_bytes.
  std::size_t max_message_bytes = std::size_t{64} << 20;
  // How long building the links may take once the rendezvous completed.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(60)};
};

struct ConnectOptions {
  RingOptions ring;
  // Default timeout of every collective (Communicator::default_timeout()).
  std::chrono::milliseconds collective_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds rendezvous_timeout{std::chrono::minutes(5)};
  // Used when this process hosts the coordinator (workers follow the coordinator's values).
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{15000};
  // How long the process hosting the coordinator waits, when its communicator is destroyed, for
  // the other workers to finish.
  std::chrono::milliseconds linger_timeout{std::chrono::seconds(60)};
  TlsOptions tls;
  // Host the data-plane server binds; empty: 127.0.0.1 when the coordinator is on a loopback
  // address, 0.0.0.0 otherwise.
  std::string bind_host;
  // Host peers dial to reach this worker; empty: the address the coordinator sees.
  std::string advertise_host;

  // Defaults overridden by ESCALA_CHUNK_BYTES, ESCALA_SMALL_MESSAGE_BYTES,
  // ESCALA_MAX_MESSAGE_BYTES, ESCALA_COLLECTIVE_TIMEOUT, ESCALA_RENDEZVOUS_TIMEOUT,
  // ESCALA_CONNECT_TIMEOUT, ESCALA_HEARTBEAT_INTERVAL, ESCALA_HEARTBEAT_TIMEOUT,
  // ESCALA_LINGER_TIMEOUT (durations such as "500ms", "30s", "5m"), ESCALA_BIND_HOST,
  // ESCALA_ADVERTISE_HOST and TlsOptions::FromEnvironment(). Throws kInvalidArgument.
  static ConnectOptions FromEnvironment();
};

// Joins the job described by `env`. Throws what JobSession::Join throws, kUnavailable when a
// peer's address kept failing connections until connect_timeout (failed attempts are retried
// meanwhile; a peer that died is reported sooner by the coordinator, kAborted),
// kDeadlineExceeded when the links are otherwise not up within connect_timeout,
// kInvalidArgument for inconsistent options. Changes nothing process-wide: a program that wants the
// data plane's process settings (gRPC's poll engine, malloc thresholds) calls
// TuneProcessForDataPlane() (escala/distributed/process_tuning.h) first.
std::unique_ptr<Communicator> Connect(const WorkerEnv& env, const ConnectOptions& options = {});

// The job session of a communicator returned by Connect (null for any other communicator, e.g.
// the size-1 one): its key-value store and failure relay serve other transports of the same job,
// such as the NCCL communicator's bootstrap (escala/gpu/nccl.h). Shared: it stays valid after
// the communicator is gone, but says goodbye when the communicator is destroyed.
std::shared_ptr<JobSession> JobSessionOf(const Communicator& comm);

// Parses "250ms", "30s", "5m", "1h" (a bare number is seconds). Throws kInvalidArgument naming
// `what`.
std::chrono::milliseconds ParseDuration(std::string_view text, std::string_view what = "duration");
// Parses "65536", "64KiB", "4MiB", "1GiB" (also k/K/KB, m/M/MB, g/G/GB as powers of 1024).
std::size_t ParseByteSize(std::string_view text, std::string_view what = "size");

}  // namespace escala::distributed

#endif  // ESCALA_DIST_CONNECT_H_
