// Test helper: a gRPC ring job whose ranks are threads of this process, each with its own
// data-plane server and coordinator session, over 127.0.0.1. Exercises the whole network path
// (coordinator, links, frames) without spawning processes.
#ifndef ESCALA_TESTS_UNIT_DIST_LOCAL_GROUP_H_
#define ESCALA_TESTS_UNIT_DIST_LOCAL_GROUP_H_

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/coordinator.h"

namespace escala::distributed::testing {

struct LocalGroupOptions {
  ConnectOptions connect;
  std::string job_token = "test-token";
  std::chrono::milliseconds heartbeat_interval{200};
  std::chrono::milliseconds heartbeat_timeout{5000};
};

ConnectOptions FastConnectOptions();

// Connects `world` ranks (in parallel threads) to a fresh coordinator; element r is rank r.
class LocalGroup {
 public:
  explicit LocalGroup(int world, LocalGroupOptions options = {});
  ~LocalGroup();

  std::vector<std::unique_ptr<Communicator>>& comms() { return comms_; }
  Communicator& comm(int r) { return *comms_[static_cast<std::size_t>(r)]; }
  Coordinator& coordinator() { return *coordinator_; }
  // Destroys all communicators in parallel (a clean shutdown waits for the peers' goodbyes).
  void Close();

 private:
  std::unique_ptr<Coordinator> coordinator_;
  std::vector<std::unique_ptr<Communicator>> comms_;
};

// Runs fn(comm) on `world` threads over a LocalGroup. If a rank throws, the others are aborted
// and the first error is rethrown after all threads ended.
void RunOnGrpcRanks(int world, const std::function<void(Communicator&)>& fn,
                    LocalGroupOptions options = {});

}  // namespace escala::distributed::testing

#endif  // ESCALA_TESTS_UNIT_DIST_LOCAL_GROUP_H_
