// Helpers of the multi-process distributed tests: start distributed_worker processes (directly,
// with the ESCALA_* environment a launcher would set, or through `escala launch`) and wait for
// them.
#ifndef ESCALA_TESTS_INTEGRATION_DIST_PROCESS_TEST_UTIL_H_
#define ESCALA_TESTS_INTEGRATION_DIST_PROCESS_TEST_UTIL_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace escala::testing {

inline std::string WorkerPath() {
  return ESCALA_DIST_WORKER_PATH;
}

// A job of distributed_worker processes whose rank 0 hosts the coordinator on a free loopback port.
class WorkerJob {
 public:
  WorkerJob(int world, std::vector<std::string> args, std::map<std::string, std::string> env = {},
            std::vector<int> ranks = {})
      : port_(FreePort()) {
    if (ranks.empty()) {
      for (int r = 0; r < world; ++r) ranks.push_back(r);
    }
    std::vector<std::string> argv = {WorkerPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    for (int r : ranks) {
      std::map<std::string, std::string> e = {
          {"ESCALA_RANK", std::to_string(r)},
          {"ESCALA_WORLD_SIZE", std::to_string(world)},
          {"ESCALA_COORDINATOR", "127.0.0.1:" + std::to_string(port_)},
          {"ESCALA_JOB_ID", "process-test"},
          {"ESCALA_JOB_TOKEN", "t0ken"},
          {"ESCALA_COLLECTIVE_TIMEOUT", "30s"},
          {"ESCALA_RENDEZVOUS_TIMEOUT", "20s"},
          {"ESCALA_HEARTBEAT_INTERVAL", "200ms"},
          {"ESCALA_HEARTBEAT_TIMEOUT", "3s"},
          {"ESCALA_LINGER_TIMEOUT", "5s"},
      };
      for (const auto& [k, v] : env) e[k] = v;
      procs_[r] = std::make_unique<Subprocess>(argv, e, dir_.File("rank" + std::to_string(r)));
    }
  }

  int port() const { return port_; }
  Subprocess& proc(int r) { return *procs_.at(r); }
  std::string Output(int r) const { return procs_.at(r)->Output(); }

  // Waits until rank r printed `text` (bounded); returns whether it did.
  bool WaitForOutput(int r, const std::string& text,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (Output(r).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  TempDir dir_;
  int port_;
  std::map<int, std::unique_ptr<Subprocess>> procs_;
};

}  // namespace escala::testing

#endif  // ESCALA_TESTS_INTEGRATION_DIST_PROCESS_TEST_UTIL_H_
