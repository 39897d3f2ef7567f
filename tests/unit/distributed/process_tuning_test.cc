// Process-wide settings happen only when asked for: distributed::Connect changes nothing, and
// TuneProcessForDataPlane selects gRPC's poll engine unless the user chose one. Each case runs in
// a fresh process (a death test re-executing the binary), since the settings are per process.
#include "escala/distributed/process_tuning.h"

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/distributed/connect.h"

namespace escala::distributed {
namespace {

class ProcessTuningTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

std::string PollStrategy() {
  const char* v = std::getenv("GRPC_POLL_STRATEGY");
  return v == nullptr ? "<unset>" : v;
}

TEST_F(ProcessTuningTest, ConnectChangesNothingProcessWide) {
  EXPECT_EXIT(
      {
        ::unsetenv("GRPC_POLL_STRATEGY");
        WorkerEnv env;
        env.rank = 0;
        env.world_size = 2;
        env.coordinator = "127.0.0.1:1";
        ConnectOptions o;
        o.tls.enabled = true;  // no certificate: refused after the point where Connect used to
                               // change the process
        try {
          Connect(env, o);
        } catch (const Error&) {
        }
        std::exit(PollStrategy() == "<unset>" ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessTuningTest, TuningSelectsThePollEngine) {
  EXPECT_EXIT(
      {
        ::unsetenv("GRPC_POLL_STRATEGY");
        const auto off =
            TuneProcessForDataPlane({.poll_engine = false, .malloc_thresholds = false});
        if (off.grpc_engine != "default" || off.malloc_tuned || PollStrategy() != "<unset>") {
          std::exit(1);
        }
        const auto r = TuneProcessForDataPlane();
        std::exit(r.grpc_engine == "poll" && PollStrategy() == "poll" ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessTuningTest, AnEngineTheUserChoseIsKept) {
  EXPECT_EXIT(
      {
        ::setenv("GRPC_POLL_STRATEGY", "epoll1", 1);
        const auto r = TuneProcessForDataPlane();
        std::exit(r.grpc_engine == "epoll1" && PollStrategy() == "epoll1" ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace escala::distributed
