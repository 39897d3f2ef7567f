// `escala launch` end to end: environment and prefixed output, stopping the other workers when
// one fails (SIGTERM, then SIGKILL after the grace period), restarts that re-form the job, bad
// flags, and mutual TLS configured from the command line.
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "integration/distributed/process_test_util.h"
#include "test_util/certs.h"

namespace escala::testing {
namespace {

using std::chrono::seconds;

struct Result {
  int status = -1;
  std::string out;
  double seconds = 0;
};

Result Launch(const std::vector<std::string>& args, std::chrono::seconds bound = seconds(60)) {
  TempDir dir;
  std::vector<std::string> argv = {CliPath(), "launch"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  Subprocess p(argv, {}, dir.File("out"));
  const auto st = p.Wait(bound);
  Result r;
  r.out = p.Output();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.status = st.value_or(-1);
  return r;
}

// `escala --threads N launch` caps every worker's threads, passed to them explicitly; without it
// the workers divide the node's cores among themselves (ESCALA_NUM_THREADS stays unset).
TEST(Launch, ThreadsGivenToTheLauncherArePassedToTheWorkers) {
  TempDir dir;
  const std::vector<std::string> show = {
      "--nproc", "2", "--", "/bin/sh", "-c", "echo threads=${ESCALA_NUM_THREADS:-unset}"};
  std::vector<std::string> argv = {CliPath(), "--threads", "3", "launch"};
  argv.insert(argv.end(), show.begin(), show.end());
  Subprocess p(argv, {}, dir.File("out"));
  ASSERT_EQ(p.Wait(seconds(60)).value_or(-1), 0) << p.Output();
  EXPECT_NE(p.Output().find("[rank 1] threads=3"), std::string::npos) << p.Output();
  const Result plain = Launch(show);
  ASSERT_EQ(plain.status, 0) << plain.out;
  EXPECT_NE(plain.out.find("[rank 1] threads=unset"), std::string::npos) << plain.out;
}

TEST(Launch, SetsTheEnvironmentAndPrefixesOutput) {
  const Result r =
      Launch({"--nproc", "3", "--", "/bin/sh", "-c",
              "echo rank=$ESCALA_RANK world=$ESCALA_WORLD_SIZE "
              "local=$ESCALA_LOCAL_RANK coord=${ESCALA_COORDINATOR%:*}; echo oops >&2"});
  ASSERT_EQ(r.status, 0) << r.out;
  for (int i = 0; i < 3; ++i) {
    const std::string line = "[rank " + std::to_string(i) + "] rank=" + std::to_string(i) +
                             " world=3 local=" + std::to_string(i) + " coord=127.0.0.1";
    EXPECT_NE(r.out.find(line), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[rank " + std::to_string(i) + "] oops"), std::string::npos) << r.out;
  }
}

TEST(Launch, FailingWorkerStopsTheOthersWithinTheGracePeriod) {
  // Rank 1 fails; the others ignore SIGTERM, so the launcher must escalate to SIGKILL.
  const Result r = Launch({"--nproc", "3", "--grace-period", "1s", "--", "/bin/sh", "-c",
                           "if [ $ESCALA_RANK = 1 ]; then sleep 0.2; exit 7; fi; "
                           "trap '' TERM; sleep 60"},
                          seconds(30));
  EXPECT_EQ(r.status, 7) << r.out;
  EXPECT_LT(r.seconds, 10) << r.out;
  EXPECT_NE(r.out.find("rank 1 (pid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("killing them"), std::string::npos) << r.out;
}

TEST(Launch, RestartReformsTheJobAfterAWorkerIsKilled) {
  // On the first attempt rank 2 SIGKILLs itself mid-job; the restarted job completes.
  const Result r =
      Launch({"--nproc", "3", "--max-restarts", "1", "--grace-period", "2s", "--collective-timeout",
              "30s", "--", "/usr/bin/env", "DIST_WORKER_DIE_RANK=2", "DIST_WORKER_DIE_AT=5",
              WorkerPath(), "loop", "40", "20000"},
             seconds(90));
  EXPECT_EQ(r.status, 0) << r.out;
  // The launcher reports whichever failure it reaps first: rank 2's SIGKILL, or (on a loaded
  // machine) a peer that saw the connection to rank 2 close and exited first.
  EXPECT_TRUE(r.out.find("killed by signal 9") != std::string::npos ||
              r.out.find("connection to rank 2 lost") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("restarting the job (restart 1 of 1)"), std::string::npos) << r.out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(r.out.find("loop ok rank " + std::to_string(i)), std::string::npos) << r.out;
  }
}

TEST(Launch, GivesUpAfterMaxRestarts) {
  const Result r = Launch({"--nproc", "2", "--max-restarts", "1", "--", "/bin/sh", "-c",
                           "echo attempt $ESCALA_RESTART_COUNT; exit 5"});
  EXPECT_EQ(r.status, 5) << r.out;
  EXPECT_NE(r.out.find("attempt 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("giving up after 1 restart(s)"), std::string::npos) << r.out;
}

TEST(Launch, BadFlagsAreRejected) {
  Result r = Launch({"--nproc", "2", "--nnodes", "2", "--", "/bin/true"});
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("--coordinator"), std::string::npos) << r.out;
  r = Launch(
      {"--nnodes", "2", "--node-rank", "2", "--coordinator", "127.0.0.1:1", "--", "/bin/true"});
  EXPECT_EQ(r.status, 2) << r.out;
  r = Launch({"--nproc", "2", "--", "/no/such/program"});
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("/no/such/program"), std::string::npos) << r.out;
  r = Launch({"--grace-period", "soon", "--", "/bin/true"});
  EXPECT_EQ(r.status, 2) << r.out;
}

TEST(Launch, MutualTlsFromTheCommandLine) {
  TempDir dir;
  TestCerts certs;
  std::string error;
  if (!GenerateTestCerts(dir.path().string(), &certs, &error)) GTEST_SKIP() << error;
  const Result r =
      Launch({"--nproc", "2", "--tls-ca", certs.ca, "--tls-cert", certs.cert, "--tls-key",
              certs.key, "--tls-mutual", "--", WorkerPath(), "loop", "20", "10000"});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("loop ok rank 1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace escala::testing
