#include "escala/distributed/launch.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <random>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "escala/core/error.h"
#include "escala/distributed/coordinator.h"
#include "escala/distributed/worker_env.h"

extern char** environ;

namespace escala::distributed {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};

void OnSignal(int sig) {
  g_signal.store(sig);
}

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < bytes; ++i) s += fmt::format("{:02x}", rd() & 0xff);
  return s;
}

// PATH lookup done before fork (execve in the child does not search).
std::string ResolveCommand(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    ESCALA_CHECK(access(name.c_str(), X_OK) == 0, kNotFound, "cannot execute '{}': {}", name,
                 std::strerror(errno));
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string_view p = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = p.find(':');
    const std::string dir(p.substr(0, colon));
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    p.remove_prefix(colon + 1);
  }
  Throw(ErrorCode::kNotFound, "command '{}' not found in PATH", name);
}

struct Worker {
  int local_rank = 0;
  int rank = 0;
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
  std::string out_buf;
  std::string err_buf;
  bool exited = false;
  int status = 0;  // exit status, or 128 + signal
};

class Launcher {
 public:
  explicit Launcher(const LaunchOptions& o) : o_(o) {
    if (!o_.out)
      o_.out = [](std::string_view s) {
        fwrite(s.data(), 1, s.size(), stdout);
        fflush(stdout);
      };
    if (!o_.err)
      o_.err = [](std::string_view s) {
        fwrite(s.data(), 1, s.size(), stderr);
        fflush(stderr);
      };
  }

  int Run() {
    Validate();
    const int world = o_.nnodes * o_.nproc;
    // Launchers on several nodes must agree on the job id without talking to each other.
    if (o_.job_id.empty()) o_.job_id = o_.nnodes == 1 ? "escala-" + RandomHex(6) : "escala";
    if (o_.job_token.empty() && o_.nnodes == 1) o_.job_token = RandomHex(16);
    std::unique_ptr<Coordinator> coordinator;
    std::string address = o_.coordinator;
    if (o_.node_rank == 0 && world > 1) {
      CoordinatorOptions co;
      co.listen_address = address.empty() ? "127.0.0.1:0" : address;
      co.job_id = o_.job_id;
      co.job_token = o_.job_token;
      co.world_size = world;
      co.heartbeat_interval = o_.heartbeat_interval;
      co.heartbeat_timeout = o_.heartbeat_timeout;
      co.tls = o_.tls;
      coordinator = std::make_unique<Coordinator>(co);
      if (address.empty()) address = coordinator->address();
    }
    const std::string path = ResolveCommand(o_.command.front());

    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_signal.store(0);

    int result = 0;
    for (int attempt = 0;; ++attempt) {
      result = RunAttempt(path, address, world, attempt);
      if (result == 0 || g_signal.load() != 0) break;
      if (attempt >= o_.max_restarts) {
        if (o_.max_restarts > 0) {
          o_.err(fmt::format("escala launch: giving up after {} restart(s)\n", o_.max_restarts));
        }
        break;
      }
      o_.err(fmt::format("escala launch: restarting the job (restart {} of {})\n", attempt + 1,
                         o_.max_restarts));
      // Let the coordinator close the failed round first (it normally already has).
      if (coordinator != nullptr) {
        const CoordinatorStats st = coordinator->stats();
        if (st.round_complete && !st.round_failed && !st.round_finished) {
          coordinator->WaitUntilRoundEnds(o_.heartbeat_timeout + std::chrono::seconds(1));
        }
      }
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    if (const int sig = g_signal.load(); sig != 0) return 128 + sig;
    return result;
  }

 private:
  void Validate() const {
    ESCALA_CHECK(!o_.command.empty(), kInvalidArgument, "escala launch: no command to run");
    ESCALA_CHECK(o_.nproc >= 1 && o_.nproc <= 4096, kInvalidArgument,
                 "--nproc must be between 1 and 4096, got {}", o_.nproc);
    ESCALA_CHECK(o_.nnodes >= 1, kInvalidArgument, "--nnodes must be >= 1, got {}", o_.nnodes);
    ESCALA_CHECK(o_.node_rank >= 0 && o_.node_rank < o_.nnodes, kInvalidArgument,
                 "--node-rank {} is out of range for --nnodes {}", o_.node_rank, o_.nnodes);
    ESCALA_CHECK(o_.max_restarts >= 0, kInvalidArgument, "--max-restarts must be >= 0");
    ESCALA_CHECK(o_.nnodes == 1 || !o_.coordinator.empty(), kInvalidArgument,
                 "--coordinator host:port is required with --nnodes {}", o_.nnodes);
    if (!o_.coordinator.empty()) ParseHostPort(o_.coordinator, "--coordinator");
  }

  std::vector<std::string> Environment(const std::string& address, int world, int local_rank,
                                       int attempt) const {
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv = *e;
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    for (const auto& [k, v] : o_.env) env[k] = v;
    env["ESCALA_RANK"] = std::to_string(o_.node_rank * o_.nproc + local_rank);
    env["ESCALA_WORLD_SIZE"] = std::to_string(world);
    env["ESCALA_LOCAL_RANK"] = std::to_string(local_rank);
    env["ESCALA_LOCAL_WORLD_SIZE"] = std::to_string(o_.nproc);
    env["ESCALA_NODE_RANK"] = std::to_string(o_.node_rank);
    env["ESCALA_NNODES"] = std::to_string(o_.nnodes);
    env["ESCALA_JOB_ID"] = o_.job_id;
    env["ESCALA_RESTART_COUNT"] = std::to_string(attempt);
    env["ESCALA_MAX_RESTARTS"] = std::to_string(o_.max_restarts);
    if (!o_.job_token.empty()) env["ESCALA_JOB_TOKEN"] = o_.job_token;
    if (!address.empty()) env["ESCALA_COORDINATOR"] = address;
    env["ESCALA_RUN_COORDINATOR"] = "0";  // the launcher hosts it
    if (o_.tls.enabled) {
      env["ESCALA_TLS_CA"] = o_.tls.ca_file;
      env["ESCALA_TLS_CERT"] = o_.tls.cert_file;
      env["ESCALA_TLS_KEY"] = o_.tls.key_file;
      env["ESCALA_TLS_MUTUAL"] = o_.tls.mutual ? "1" : "0";
      if (!o_.tls.server_name.empty()) env["ESCALA_TLS_SERVER_NAME"] = o_.tls.server_name;
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
  }

  void Spawn(Worker& w, const std::string& path, const std::vector<std::string>& env) {
    int out_pipe[2], err_pipe[2];
    ESCALA_CHECK(pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0, kIo,
                 "escala launch: pipe: {}", std::strerror(errno));
    std::vector<char*> argv;
    for (const auto& a : o_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    ESCALA_CHECK(pid >= 0, kIo, "escala launch: fork: {}", std::strerror(errno));
    if (pid == 0) {
      // Child: only async-signal-safe calls until execve.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      dup2(out_pipe[1], STDOUT_FILENO);
      dup2(err_pipe[1], STDERR_FILENO);
      execve(path.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    setpgid(pid, pid);  // also from the parent, so that the group exists before any kill
    close(out_pipe[1]);
    close(err_pipe[1]);
    w.pid = pid;
    w.out_fd = out_pipe[0];
    w.err_fd = err_pipe[0];
  }

  void Emit(Worker& w, std::string& buf, bool is_err, bool flush_all) {
    const std::string prefix = o_.prefix_output ? fmt::format("[rank {}] ", w.rank) : "";
    std::size_t start = 0;
    while (true) {
      const auto nl = buf.find('\n', start);
      if (nl == std::string::npos) break;
      const std::string line = prefix + buf.substr(start, nl - start + 1);
      (is_err ? o_.err : o_.out)(line);
      start = nl + 1;
    }
    buf.erase(0, start);
    if (flush_all && !buf.empty()) {
      (is_err ? o_.err : o_.out)(prefix + buf + "\n");
      buf.clear();
    }
  }

  // Reads what is available; returns false at end of file.
  bool Drain(Worker& w, int& fd, std::string& buf, bool is_err) {
    char chunk[65536];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      Emit(w, buf, is_err, false);
      return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    Emit(w, buf, is_err, true);
    close(fd);
    fd = -1;
    return false;
  }

  void SignalAll(std::vector<Worker>& workers, int sig) {
    for (auto& w : workers) {
      if (!w.exited && w.pid > 0) kill(-w.pid, sig);
    }
  }

  int RunAttempt(const std::string& path, const std::string& address, int world, int attempt) {
    std::vector<Worker> workers(static_cast<std::size_t>(o_.nproc));
    for (int i = 0; i < o_.nproc; ++i) {
      Worker& w = workers[static_cast<std::size_t>(i)];
      w.local_rank = i;
      w.rank = o_.node_rank * o_.nproc + i;
      try {
        Spawn(w, path, Environment(address, world, i, attempt));
      } catch (...) {
        SignalAll(workers, SIGKILL);
        for (auto& x : workers) {
          if (x.pid > 0) waitpid(x.pid, nullptr, 0);
        }
        throw;
      }
    }
    int failed_rank = -1;
    int failed_status = 0;
    bool stopping = false;
    Clock::time_point kill_at = Clock::time_point::max();
    // After the last worker exited, its output pipes may still be held open by processes it
    // started; give them a moment, then stop its process group.
    Clock::time_point drain_until = Clock::time_point::max();
    int running = o_.nproc;
    while (running > 0 || std::any_of(workers.begin(), workers.end(), [](const Worker& w) {
             return w.out_fd >= 0 || w.err_fd >= 0;
           })) {
      std::vector<pollfd> fds;
      std::vector<std::pair<Worker*, bool>> owners;
      for (auto& w : workers) {
        if (w.out_fd >= 0) {
          fds.push_back({w.out_fd, POLLIN, 0});
          owners.emplace_back(&w, false);
        }
        if (w.err_fd >= 0) {
          fds.push_back({w.err_fd, POLLIN, 0});
          owners.emplace_back(&w, true);
        }
      }
      if (!fds.empty()) {
        poll(fds.data(), fds.size(), 50);
      } else {
        usleep(20'000);
      }
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        Worker& w = *owners[i].first;
        const bool is_err = owners[i].second;
        Drain(w, is_err ? w.err_fd : w.out_fd, is_err ? w.err_buf : w.out_buf, is_err);
      }
      for (auto& w : workers) {
        if (w.exited) continue;
        int status = 0;
        const pid_t r = waitpid(w.pid, &status, WNOHANG);
        if (r != w.pid) continue;
        w.exited = true;
        --running;
        w.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (w.status != 0 && failed_rank < 0 && !stopping) {
          failed_rank = w.rank;
          failed_status = w.status;
          o_.err(fmt::format(
              "escala launch: rank {} (pid {}) {}; stopping the other workers\n", w.rank, w.pid,
              WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                : fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                                              strsignal(WTERMSIG(status)))));
        }
      }
      if (!stopping && (failed_rank >= 0 || g_signal.load() != 0)) {
        stopping = true;
        SignalAll(workers, SIGTERM);
        kill_at = Clock::now() + o_.grace_period;
      }
      if (running == 0 && drain_until == Clock::time_point::max()) {
        drain_until = Clock::now() + std::chrono::seconds(1);
      }
      if (running == 0 && Clock::now() >= drain_until) {
        for (auto& w : workers) {
          kill(-w.pid, SIGKILL);
          for (int* fd : {&w.out_fd, &w.err_fd}) {
            if (*fd >= 0) {
              close(*fd);
              *fd = -1;
            }
          }
          Emit(w, w.out_buf, false, true);
          Emit(w, w.err_buf, true, true);
        }
        break;
      }
      if (stopping && Clock::now() >= kill_at && running > 0) {
        o_.err(fmt::format("escala launch: {} worker(s) still running after {} ms; killing them\n",
                           running, o_.grace_period.count()));
        SignalAll(workers, SIGKILL);
        kill_at = Clock::time_point::max();
      }
    }
    return failed_rank >= 0 ? failed_status : 0;
  }

  LaunchOptions o_;
};

}  // namespace

int RunLaunch(const LaunchOptions& options) {
  return Launcher(options).Run();
}

}  // namespace escala::distributed
