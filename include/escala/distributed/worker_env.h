// Where this process stands in a distributed job: its rank, the world size, the coordinator to
// rendezvous at, and the job's identity. Read from the environment that launchers already set, so
// that the same binary runs under `escala launch`, torchrun, Slurm, mpirun or a Kubernetes
// indexed Job without flags.
//
// Discovery order (the first family that defines both a rank and a world size wins; within it,
// missing optional values fall back to defaults):
//   1. escala:   ESCALA_RANK, ESCALA_WORLD_SIZE, ESCALA_LOCAL_RANK, ESCALA_LOCAL_WORLD_SIZE,
//                ESCALA_NODE_RANK
//   2. torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK
//   3. Slurm:    SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID, SLURM_JOB_NODELIST
//   4. Open MPI: OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK,
//                OMPI_COMM_WORLD_LOCAL_SIZE
//   none of them: a single process (rank 0 of 1).
// The coordinator address is ESCALA_COORDINATOR (host:port), else MASTER_ADDR:MASTER_PORT, else
// (Slurm) the first host of SLURM_JOB_NODELIST with ESCALA_COORDINATOR_PORT or MASTER_PORT or
// 29500. Under torchrun's static rendezvous (TORCHELASTIC_USE_AGENT_STORE=True) torchrun's agent
// listens on MASTER_PORT itself: the coordinator then takes a free port and its address travels
// through the agent's store (coordinator_store, coordinator_key).
// The job id is ESCALA_JOB_ID, else the launcher's (the rank's own launcher first):
// TORCHELASTIC_RUN_ID, SLURM_JOB_ID[.SLURM_STEP_ID], Open MPI's OMPI_MCA_ess_base_jobid (or
// OMPI_MCA_orte_ess_jobid, PMIX_NAMESPACE); else random for a single process and "escala" for
// processes started by hand (set ESCALA_JOB_ID: they cannot agree on a random one). The job token
// is ESCALA_JOB_TOKEN (empty: no token).
//
// Thread-safety: WorkerEnv is a value. FromEnvironment() reads the process environment, which
// must not be modified concurrently.
#ifndef ESCALA_DIST_WORKER_ENV_H_
#define ESCALA_DIST_WORKER_ENV_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace escala::distributed {

struct WorkerEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  int node_rank = 0;
  // host:port of the coordinator; empty for a single process. With coordinator_store set, the
  // host to bind with port 0 (rank 0 listens on a free port).
  std::string coordinator;
  // torchrun's static rendezvous: host:port of the agent's c10d TCPStore (MASTER_ADDR:MASTER_PORT)
  // and the key under which rank 0 publishes the coordinator's address
  // ("/worker/attempt_<TORCHELASTIC_RESTART_COUNT>/escala/coordinator"). Empty otherwise.
  std::string coordinator_store;
  std::string coordinator_key;
  std::string job_id = "escala";
  std::string job_token;
  // Whether this process starts the coordinator (bound to `coordinator`) before rendezvous. True
  // for rank 0 unless ESCALA_RUN_COORDINATOR=0 (set by `escala launch`, which hosts it itself).
  bool run_coordinator = false;
  // Which family the rank came from: "escala", "torchrun", "slurm", "openmpi" or "default".
  std::string source = "default";
  // Slurm: the expanded node list (empty otherwise).
  std::vector<std::string> nodes;

  // Reads the process environment. Throws kInvalidArgument naming the variable when a value is
  // malformed (not an integer, rank out of range, world size below 1, a bad node list, a
  // multi-process job without any coordinator address, ESCALA_RUN_COORDINATOR=0 on rank 0 under
  // torchrun's static rendezvous).
  static WorkerEnv FromEnvironment();
  // The same, with `lookup` standing in for getenv (tests, and embedding in other launchers).
  using Lookup = std::function<std::optional<std::string>(std::string_view name)>;
  static WorkerEnv FromLookup(const Lookup& lookup);

  // "rank 2/8 (local 0/4, node 1) via slurm, coordinator node01:29500, job 1234".
  std::string Describe() const;
};

// Expands a Slurm host list: "node[01-03,07],login" -> node01 node02 node03 node07 login.
// Zero padding follows the range's first bound; several bracket groups in one name expand to
// their product. Throws kInvalidArgument on malformed input (unbalanced brackets, a reversed
// range) or an expansion of more than one million hosts.
std::vector<std::string> ExpandHostList(std::string_view list);

// Splits "host:port" or "[v6::addr]:port". Throws kInvalidArgument naming `what`.
struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const;
};
HostPort ParseHostPort(std::string_view address, std::string_view what = "address");

}  // namespace escala::distributed

#endif  // ESCALA_DIST_WORKER_ENV_H_
