// Collectives and faults with ranks as processes on 127.0.0.1: the sweep over world sizes 1-8
// (through `escala launch`), and a worker SIGKILLed at various moments, a hung (stopped) worker,
// the coordinator killed. Every wait is bounded; every process is killed at the end.
#include <chrono>
#include <signal.h>
#include <string>

#include <gtest/gtest.h>

#include "integration/distributed/process_test_util.h"

namespace escala::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class SweepProcesses : public ::testing::TestWithParam<int> {};

TEST_P(SweepProcesses, EveryCollectiveMatchesTheSerialReference) {
  const int world = GetParam();
  TempDir dir;
  Subprocess launch({CliPath(), "launch", "--nproc", std::to_string(world), "--grace-period", "2s",
                     "--", WorkerPath(), "sweep"},
                    {{"ESCALA_COLLECTIVE_TIMEOUT", "60s"}}, dir.File("out"));
  const auto status = launch.Wait(seconds(120));
  const std::string out = launch.Output();
  ASSERT_TRUE(status.has_value()) << "launch did not finish:\n" << out;
  EXPECT_EQ(*status, 0) << out;
  EXPECT_EQ(CountOf(out, "sweep ok rank"), world) << out;
  EXPECT_EQ(out.find("WRONG RESULT"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Worlds, SweepProcesses, ::testing::Range(1, 9),
                         [](const auto& p) { return "world" + std::to_string(p.param); });

// All ranks except `killed` must end with an error (not hang) within `bound`, and their
// messages must point at what happened.
void ExpectOthersFail(WorkerJob& job, int world, int killed, std::chrono::seconds bound,
                      const std::vector<std::string>& any_of) {
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < world; ++r) {
    if (r == killed) continue;
    const auto left = bound - (std::chrono::steady_clock::now() - start);
    const auto status = job.proc(r).Wait(std::chrono::duration_cast<milliseconds>(left));
    ASSERT_TRUE(status.has_value())
        << "rank " << r << " still running after " << bound.count() << " s:\n"
        << job.Output(r);
    EXPECT_NE(*status, 0) << job.Output(r);
    const std::string out = job.Output(r);
    bool found = any_of.empty();
    for (const auto& s : any_of) found = found || out.find(s) != std::string::npos;
    EXPECT_TRUE(found) << "rank " << r << ":\n" << out;
  }
}

TEST(DistFaults, WorkerKilledDuringAllReduceStopsTheOthers) {
  WorkerJob job(4, {"loop", "1000000", "200000"});
  ASSERT_TRUE(job.WaitForOutput(0, "iteration 10")) << job.Output(0);
  job.proc(2).Signal(SIGKILL);
  ExpectOthersFail(job, 4, 2, seconds(15), {"rank 2"});
}

TEST(DistFaults, WorkerKilledAtAnyMomentNeverHangsTheOthers) {
  // Before rendezvous, during it, while the links form, and in the first collectives.
  for (int delay_ms : {0, 40, 150, 400}) {
    WorkerJob job(3, {"loop", "1000000", "1000"}, {{"ESCALA_RENDEZVOUS_TIMEOUT", "2s"}});
    std::this_thread::sleep_for(milliseconds(delay_ms));
    job.proc(1).Signal(SIGKILL);
    ExpectOthersFail(job, 3, 1, seconds(20), {});
    for (int r : {0, 2}) {
      const std::string out = job.Output(r);
      EXPECT_NE(out.find("distributed_worker: error:"), std::string::npos)
          << "delay " << delay_ms << " rank " << r << ":\n"
          << out;
    }
  }
}

// Rank 1 dies right after rendezvous, before the data plane connects. Rank 0 waits for rank 1's
// inbound link: it must hear of the death from the coordinator, not sit out connect_timeout (60 s
// by default; the sweep above once caught it at 20 s).
TEST(DistFaults, WorkerDeadBeforeItsLinksDoesNotLeaveThePeersWaiting) {
  WorkerJob job(3, {"loop", "1000000", "1000"}, {{"ESCALA_FAULT", "rendezvous@1"}});
  ExpectOthersFail(job, 3, 1, seconds(15), {"rank 1"});
}

TEST(DistFaults, HungWorkerIsDetectedByHeartbeats) {
  WorkerJob job(3, {"hold", "60"},
                {{"ESCALA_HEARTBEAT_TIMEOUT", "1500ms"}, {"ESCALA_COLLECTIVE_TIMEOUT", "60s"}});
  for (int r = 0; r < 3; ++r) ASSERT_TRUE(job.WaitForOutput(r, "holding")) << job.Output(r);
  job.proc(2).Signal(SIGSTOP);  // alive, but silent
  ExpectOthersFail(job, 3, 2, seconds(15), {"sent no heartbeat"});
}

TEST(DistFaults, KilledCoordinatorStopsTheWorkers) {
  TempDir dir;
  const int port = FreePort();
  Subprocess coordinator({CliPath(), "coordinator", "--listen", "127.0.0.1:" + std::to_string(port),
                          "--world-size", "3", "--job-id", "process-test", "--job-token", "t0ken",
                          "--heartbeat-interval", "200ms", "--heartbeat-timeout", "3s"},
                         {}, dir.File("coordinator"));
  WorkerJob job(3, {"hold", "60"},
                {{"ESCALA_COORDINATOR", "127.0.0.1:" + std::to_string(port)},
                 {"ESCALA_RUN_COORDINATOR", "0"}});
  for (int r = 0; r < 3; ++r) ASSERT_TRUE(job.WaitForOutput(r, "holding")) << job.Output(r);
  coordinator.Signal(SIGKILL);
  ExpectOthersFail(job, 3, -1, seconds(15), {"lost the coordinator"});
}

TEST(DistFaults, StandaloneCoordinatorServesOneRoundAndExits) {
  TempDir dir;
  const int port = FreePort();
  Subprocess coordinator({CliPath(), "coordinator", "--listen", "127.0.0.1:" + std::to_string(port),
                          "--job-id", "process-test", "--job-token", "t0ken"},
                         {}, dir.File("coordinator"));
  WorkerJob job(2, {"loop", "30", "5000"},
                {{"ESCALA_COORDINATOR", "127.0.0.1:" + std::to_string(port)},
                 {"ESCALA_RUN_COORDINATOR", "0"}});
  for (int r = 0; r < 2; ++r) {
    const auto st = job.proc(r).Wait(seconds(30));
    ASSERT_TRUE(st.has_value()) << job.Output(r);
    EXPECT_EQ(*st, 0) << job.Output(r);
  }
  const auto st = coordinator.Wait(seconds(15));
  ASSERT_TRUE(st.has_value()) << coordinator.Output();
  EXPECT_EQ(*st, 0) << coordinator.Output();
  EXPECT_NE(coordinator.Output().find("round 1 finished"), std::string::npos)
      << coordinator.Output();
}

TEST(DistFaults, WrongTokenIsRefusedAcrossProcesses) {
  WorkerJob job(2, {"loop", "10", "100"}, {}, {0});
  WorkerJob intruder(2, {"loop", "10", "100"},
                     {{"ESCALA_COORDINATOR", "127.0.0.1:" + std::to_string(job.port())},
                      {"ESCALA_JOB_TOKEN", "guess"}},
                     {1});
  const auto st = intruder.proc(1).Wait(seconds(20));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 3);
  EXPECT_NE(intruder.Output(1).find("PermissionDenied"), std::string::npos) << intruder.Output(1);
}

}  // namespace
}  // namespace escala::testing
