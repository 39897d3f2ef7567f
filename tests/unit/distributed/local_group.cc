#include "unit/distributed/local_group.h"

#include <atomic>
#include <exception>
#include <thread>

#include <fmt/format.h>

namespace escala::distributed::testing {

ConnectOptions FastConnectOptions() {
  ConnectOptions o;
  o.collective_timeout = std::chrono::seconds(30);
  o.rendezvous_timeout = std::chrono::seconds(20);
  o.linger_timeout = std::chrono::seconds(10);
  o.ring.connect_timeout = std::chrono::seconds(20);
  // Small chunks so that multi-chunk pipelines are exercised by modest test sizes.
  o.ring.chunk_bytes = 16 << 10;
  o.ring.small_message_bytes = 1 << 10;
  return o;
}

LocalGroup::LocalGroup(int world, LocalGroupOptions options) {
  CoordinatorOptions co;
  co.listen_address = "127.0.0.1:0";
  co.job_id = "local-group";
  co.job_token = options.job_token;
  co.world_size = world;
  co.heartbeat_interval = options.heartbeat_interval;
  co.heartbeat_timeout = options.heartbeat_timeout;
  co.tls = options.connect.tls;
  coordinator_ = std::make_unique<Coordinator>(co);
  comms_.resize(static_cast<std::size_t>(world));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        WorkerEnv env;
        env.rank = r;
        env.world_size = world;
        env.coordinator = coordinator_->address();
        env.job_id = "local-group";
        env.job_token = options.job_token;
        env.run_coordinator = false;
        comms_[static_cast<std::size_t>(r)] = Connect(env, options.connect);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) {
      Close();
      std::rethrow_exception(e);
    }
  }
}

LocalGroup::~LocalGroup() {
  Close();
}

void LocalGroup::Close() {
  std::vector<std::thread> threads;
  for (auto& c : comms_) {
    threads.emplace_back([&c] { c.reset(); });
  }
  for (auto& t : threads) t.join();
  comms_.clear();
}

void RunOnGrpcRanks(int world, const std::function<void(Communicator&)>& fn,
                    LocalGroupOptions options) {
  LocalGroup group(world, std::move(options));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::atomic<int> first_failure{-1};
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(group.comm(r));
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
        int expected = -1;
        if (first_failure.compare_exchange_strong(expected, r)) {
          const Status cause = Status::FromCurrentException();
          for (auto& c : group.comms()) {
            c->Abort(Status(ErrorCode::kAborted,
                            fmt::format("rank {} failed: {}", r, cause.ToString())));
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  group.Close();
  if (const int f = first_failure.load(); f >= 0) {
    std::rethrow_exception(errors[static_cast<std::size_t>(f)]);
  }
}

}  // namespace escala::distributed::testing
