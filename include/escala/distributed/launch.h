// `escala launch`: starts the local workers of a distributed job, like torchrun. Each worker
// runs any command with the ESCALA_* environment that distributed::WorkerEnv reads (rank, world
// size, local rank, node rank, coordinator, job id and token); its output is prefixed with its
// rank. When a worker fails (non-zero exit or a signal) the launcher stops the others (SIGTERM,
// then SIGKILL after the grace period) and, while restarts remain, starts the whole local group
// again; the coordinator opens a new round for it. The launcher on node 0 hosts the coordinator.
//
// Thread-safety: RunLaunch() is meant to own the process (it installs SIGINT/SIGTERM handlers
// while it runs and restores them afterwards); call it from one thread.
#ifndef ESCALA_DIST_LAUNCH_H_
#define ESCALA_DIST_LAUNCH_H_

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/tls.h"

namespace escala::distributed {

struct LaunchOptions {
  int nproc = 1;      // workers on this node
  int nnodes = 1;     // nodes in the job
  int node_rank = 0;  // this node; its workers get ranks node_rank * nproc + local rank
  // host:port of the coordinator. Required with nnodes > 1 (node 0 listens there); with one node
  // the launcher listens on 127.0.0.1 at a free port.
  std::string coordinator;
  int max_restarts = 0;
  // Between SIGTERM and SIGKILL when the other workers are stopped.
  std::chrono::milliseconds grace_period{std::chrono::seconds(5)};
  std::string job_id;     // empty: a random id on one node, "escala" on several
  std::string job_token;  // empty: a random token (single node) or none (several nodes)
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{15000};
  TlsOptions tls;  // for the hosted coordinator; also exported to the workers as ESCALA_TLS_*
  // Extra environment for the workers (e.g. ESCALA_COLLECTIVE_TIMEOUT).
  std::map<std::string, std::string> env;
  bool prefix_output = true;
  std::vector<std::string> command;
  // Where prefixed worker output and the launcher's own messages go (default: stdout/stderr).
  std::function<void(std::string_view)> out;
  std::function<void(std::string_view)> err;
};

// Runs the job; returns the exit status for the launcher: 0 when every worker succeeded,
// otherwise the status of the first failed worker of the last attempt (128 + signal for a
// signal), 130/143 when the launcher was interrupted. Throws kInvalidArgument for bad options,
// kNotFound when the command does not exist.
int RunLaunch(const LaunchOptions& options);

}  // namespace escala::distributed

#endif  // ESCALA_DIST_LAUNCH_H_
