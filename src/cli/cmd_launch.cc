// `escala launch` and `escala coordinator`.
#include <csignal>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/coordinator.h"
#include "escala/distributed/launch.h"

namespace escala::cli {
namespace {

struct TlsFlags {
  std::string ca, cert, key, server_name;
  bool mutual = false;

  void Add(CLI::App* cmd) {
    cmd->add_option("--tls-ca", ca, "PEM CA that signed the job's certificates (enables TLS)");
    cmd->add_option("--tls-cert", cert, "PEM certificate of this process (enables TLS)");
    cmd->add_option("--tls-key", key, "PEM private key of --tls-cert");
    cmd->add_flag("--tls-mutual", mutual, "Mutual TLS: require and present client certificates");
    cmd->add_option("--tls-server-name", server_name,
                    "Name expected in server certificates (default: the dialled host)");
  }
  TlsOptions Options() const {
    TlsOptions t;
    t.ca_file = ca;
    t.cert_file = cert;
    t.key_file = key;
    t.mutual = mutual;
    t.server_name = server_name;
    t.enabled = !ca.empty() || !cert.empty();
    return t;
  }
};

void RegisterLaunchCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch",
      "Start the local workers of a distributed job (like torchrun): escala launch --nproc N -- "
      "CMD ARGS...");
  struct Flags {
    int nproc = 1, nnodes = 1, node_rank = 0, max_restarts = 0;
    std::string coordinator, job_id, job_token;
    std::string grace = "5s", heartbeat_interval = "1s", heartbeat_timeout = "15s";
    std::string collective_timeout, rendezvous_timeout;
    bool no_prefix = false;
    TlsFlags tls;
    std::vector<std::string> command;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--nproc", f->nproc, "Workers on this node")->capture_default_str();
  cmd->add_option("--nnodes", f->nnodes, "Nodes in the job")->capture_default_str();
  cmd->add_option("--node-rank", f->node_rank, "This node's index (0 hosts the coordinator)")
      ->capture_default_str();
  cmd->add_option("--coordinator", f->coordinator,
                  "host:port of the coordinator (required with --nnodes > 1; default: a free "
                  "port on 127.0.0.1)");
  cmd->add_option("--max-restarts", f->max_restarts,
                  "Restart the whole local group this many times after a failure")
      ->capture_default_str();
  cmd->add_option("--grace-period", f->grace,
                  "Wait between SIGTERM and SIGKILL when stopping workers")
      ->capture_default_str();
  cmd->add_option("--job-id", f->job_id, "Job id (default: random)");
  cmd->add_option("--job-token", f->job_token,
                  "Secret every worker must present (default: random on one node; "
                  "$ESCALA_JOB_TOKEN)")
      ->envname("ESCALA_JOB_TOKEN");
  cmd->add_option("--heartbeat-interval", f->heartbeat_interval, "Coordinator heartbeat interval")
      ->capture_default_str();
  cmd->add_option("--heartbeat-timeout", f->heartbeat_timeout,
                  "A worker or coordinator silent this long has failed")
      ->capture_default_str();
  cmd->add_option("--collective-timeout", f->collective_timeout,
                  "Default timeout of every collective (workers' ESCALA_COLLECTIVE_TIMEOUT)");
  cmd->add_option("--rendezvous-timeout", f->rendezvous_timeout,
                  "How long workers wait for the job to form (ESCALA_RENDEZVOUS_TIMEOUT)");
  cmd->add_flag("--no-prefix", f->no_prefix, "Do not prefix worker output with its rank");
  f->tls.Add(cmd);
  cmd->add_option("command", f->command, "The worker command and its arguments (after --)")
      ->required();
  cmd->callback([f] {
    distributed::LaunchOptions o;
    o.nproc = f->nproc;
    o.nnodes = f->nnodes;
    o.node_rank = f->node_rank;
    o.coordinator = f->coordinator;
    o.max_restarts = f->max_restarts;
    o.grace_period = distributed::ParseDuration(f->grace, "--grace-period");
    o.job_id = f->job_id;
    o.job_token = f->job_token;
    o.heartbeat_interval =
        distributed::ParseDuration(f->heartbeat_interval, "--heartbeat-interval");
    o.heartbeat_timeout = distributed::ParseDuration(f->heartbeat_timeout, "--heartbeat-timeout");
    // Workers hosted elsewhere follow the coordinator's heartbeat settings; timeouts of their own
    // go through the environment.
    if (!f->collective_timeout.empty()) {
      distributed::ParseDuration(f->collective_timeout, "--collective-timeout");
      o.env["ESCALA_COLLECTIVE_TIMEOUT"] = f->collective_timeout;
    }
    if (!f->rendezvous_timeout.empty()) {
      distributed::ParseDuration(f->rendezvous_timeout, "--rendezvous-timeout");
      o.env["ESCALA_RENDEZVOUS_TIMEOUT"] = f->rendezvous_timeout;
    }
    // `escala --threads N launch ...` caps each worker's threads, said to them explicitly.
    if (NumThreadsIsExplicit()) o.env["ESCALA_NUM_THREADS"] = std::to_string(NumThreads());
    o.tls = f->tls.Options();
    o.prefix_output = !f->no_prefix;
    o.command = f->command;
    const int status = distributed::RunLaunch(o);
    if (status != 0) throw CLI::RuntimeError(status);
  });
}

std::atomic<int> g_stop_signal{0};

void RegisterCoordinatorCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "coordinator",
      "Run a job's coordinator on its own (rendezvous, heartbeats, error relay); workers find it "
      "through ESCALA_COORDINATOR");
  struct Flags {
    std::string listen = "127.0.0.1:29500", job_id = "escala", job_token;
    int world_size = 0, rounds = 1;
    std::string heartbeat_interval = "1s", heartbeat_timeout = "15s";
    TlsFlags tls;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--listen", f->listen, "host:port to listen on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--world-size", f->world_size, "Workers per round (0: from the workers)")
      ->capture_default_str();
  cmd->add_option("--job-id", f->job_id, "Job id the workers must present")->capture_default_str();
  cmd->add_option("--job-token", f->job_token, "Secret the workers must present")
      ->envname("ESCALA_JOB_TOKEN");
  cmd->add_option("--rounds", f->rounds,
                  "Exit after this many rounds ended (finished or failed); 0: until signalled")
      ->capture_default_str();
  cmd->add_option("--heartbeat-interval", f->heartbeat_interval, "Heartbeat interval")
      ->capture_default_str();
  cmd->add_option("--heartbeat-timeout", f->heartbeat_timeout,
                  "A worker silent this long has failed")
      ->capture_default_str();
  f->tls.Add(cmd);
  cmd->callback([f] {
    distributed::CoordinatorOptions o;
    o.listen_address = f->listen;
    o.job_id = f->job_id;
    o.job_token = f->job_token;
    o.world_size = f->world_size;
    o.heartbeat_interval =
        distributed::ParseDuration(f->heartbeat_interval, "--heartbeat-interval");
    o.heartbeat_timeout = distributed::ParseDuration(f->heartbeat_timeout, "--heartbeat-timeout");
    o.tls = f->tls.Options();
    ESCALA_CHECK(f->rounds >= 0, kInvalidArgument, "--rounds must be >= 0");
    distributed::Coordinator coordinator(o);
    std::printf("escala coordinator: job '%s' listening on %s\n", o.job_id.c_str(),
                coordinator.address().c_str());
    std::fflush(stdout);
    std::signal(SIGINT, [](int s) { g_stop_signal.store(s); });
    std::signal(SIGTERM, [](int s) { g_stop_signal.store(s); });
    std::uint64_t seen_round = 0;
    int ended = 0;
    bool last_failed = false;
    while (g_stop_signal.load() == 0) {
      if (coordinator.WaitUntilRoundEnds(std::chrono::milliseconds(200))) {
        const auto st = coordinator.stats();
        if (st.round != seen_round) {
          seen_round = st.round;
          ++ended;
          last_failed = st.round_failed;
          std::printf("escala coordinator: round %llu %s\n",
                      static_cast<unsigned long long>(st.round),
                      st.round_failed ? "failed" : "finished");
          std::fflush(stdout);
          if (f->rounds > 0 && ended >= f->rounds) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    coordinator.Shutdown();
    if (g_stop_signal.load() != 0) throw CLI::RuntimeError(128 + g_stop_signal.load());
    if (last_failed) throw CLI::RuntimeError(1);
  });
}

}  // namespace

void RegisterDist(CLI::App& app) {
  RegisterLaunchCommand(app);
  RegisterCoordinatorCommand(app);
}

}  // namespace escala::cli
