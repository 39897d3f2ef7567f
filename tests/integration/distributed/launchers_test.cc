// The documented ways to start workers without `escala launch`, run for real: the sbatch script
// of examples/distributed under a simulated Slurm (a stand-in `srun` that starts the tasks with the
// variables Slurm sets), torchrun's variables, and mpirun (when Open MPI is installed).
#include "test_util/launchers.h"

#include <chrono>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "integration/distributed/process_test_util.h"
#include "test_util/torchrun.h"

namespace escala::testing {
namespace {

using std::chrono::seconds;

TEST(Launchers, SbatchScriptRunsWithSlurmsEnvironment) {
  TempDir dir;
  WriteFakeSrun(dir);
  const int port = FreePort();
  Subprocess job({"/bin/bash", SourcePath("examples/distributed/train.sbatch")},
                 {{"PATH", dir.path().string() + ":/usr/bin:/bin"},
                  {"FAKE_SLURM_NTASKS", "3"},
                  {"ESCALA_COORDINATOR_PORT", std::to_string(port)},
                  {"ESCALA_WORKER", WorkerPath() + " loop 20 5000"}},
                 dir.File("out"));
  const auto st = job.Wait(seconds(60));
  ASSERT_TRUE(st.has_value()) << job.Output();
  EXPECT_EQ(*st, 0) << job.Output();
  for (int r = 0; r < 3; ++r) {
    EXPECT_NE(job.Output().find("loop ok rank " + std::to_string(r)), std::string::npos)
        << job.Output();
  }
}

TEST(Launchers, TorchrunVariables) {
  TempDir dir;
  const int port = FreePort();
  std::vector<std::unique_ptr<Subprocess>> procs;
  for (int r = 0; r < 2; ++r) {
    procs.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{WorkerPath(), "loop", "20", "5000"},
        std::map<std::string, std::string>{{"RANK", std::to_string(r)},
                                           {"WORLD_SIZE", "2"},
                                           {"LOCAL_RANK", std::to_string(r)},
                                           {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", std::to_string(port)},
                                           {"TORCHELASTIC_RUN_ID", "tr-1"}},
        dir.File("rank" + std::to_string(r))));
  }
  for (auto& p : procs) {
    const auto st = p->Wait(seconds(60));
    ASSERT_TRUE(st.has_value()) << p->Output();
    EXPECT_EQ(*st, 0) << p->Output();
  }
}

// The script as written: `escala train --config examples/distributed/train.toml`, submitted from a
// directory holding examples/ (the repository root), with `escala` on PATH.
TEST(Launchers, SbatchScriptTrainsWithItsShippedConfig) {
  TempDir dir;
  WriteFakeSrun(dir);
  ASSERT_EQ(symlink(SourcePath("examples").c_str(), dir.File("examples").c_str()), 0);
  ASSERT_EQ(symlink(CliPath().c_str(), dir.File("escala").c_str()), 0);
  Subprocess job(
      {"/bin/sh", "-c",
       "cd " + dir.path().string() + " && exec /bin/bash examples/distributed/train.sbatch"},
      {{"PATH", dir.path().string() + ":/usr/bin:/bin"},
       {"FAKE_SLURM_NTASKS", "2"},
       {"ESCALA_COORDINATOR_PORT", std::to_string(FreePort())}},
      dir.File("out"));
  const auto st = job.Wait(seconds(120));
  ASSERT_TRUE(st.has_value()) << job.Output();
  EXPECT_EQ(*st, 0) << job.Output();
  EXPECT_NE(job.Output().find("joining rank 1/2"), std::string::npos) << job.Output();
  struct stat bundle {};
  EXPECT_EQ(stat(dir.File("models/penguins/1/model.bundle").c_str(), &bundle), 0) << job.Output();
}

// The real torchrun in its three rendezvous modes. In the default (static) one, torchrun's agent
// listens on MASTER_PORT itself: rank 0 hosts the coordinator on a free port and publishes it in
// the agent's store. --standalone and c10d give the workers a free MASTER_PORT.
class TorchrunModes : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchrunModes, TwoWorkersRunTheJob) {
  TempDir dir;
  const std::string torchrun = TorchrunCommand(dir.File("logs"));
  if (torchrun.empty()) GTEST_SKIP() << "torchrun (PyTorch) is not installed";
  std::string mode = GetParam();
  if (mode == "standalone" && !PortIsFree(29400)) {
    GTEST_SKIP() << "--standalone needs port 29400, which is taken";
  }
  if (mode == "static")
    mode = "--master_addr 127.0.0.1 --master_port " + std::to_string(FreePort());
  if (mode == "c10d") {
    mode =
        "--rdzv_backend c10d --rdzv_id t1 --rdzv_endpoint 127.0.0.1:" + std::to_string(FreePort());
  }
  if (mode == "standalone") mode = "--standalone";
  Subprocess job({"/bin/sh", "-c",
                  "exec " + torchrun + " --nnodes 1 --nproc_per_node 2 " + mode + " --no_python " +
                      WorkerPath() + " loop 20 5000"},
                 {{"ESCALA_RENDEZVOUS_TIMEOUT", "30s"}, {"ESCALA_COLLECTIVE_TIMEOUT", "30s"}},
                 dir.File("out"));
  const auto st = job.Wait(seconds(120));
  ASSERT_TRUE(st.has_value()) << job.Output();
  EXPECT_EQ(*st, 0) << job.Output();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(job.Output().find("loop ok rank " + std::to_string(r)), std::string::npos)
        << job.Output();
  }
}

INSTANTIATE_TEST_SUITE_P(Launchers, TorchrunModes,
                         ::testing::Values("static", "standalone", "c10d"),
                         [](const auto& mode) { return mode.param; });

TEST(Launchers, MpirunLine) {
  if (RunCommand("mpirun --version") != 0) GTEST_SKIP() << "Open MPI is not installed";
  TempDir dir;
  const int port = FreePort();
  std::string out;
  const int rc = RunCommand(
      "timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 -x "
      "MASTER_ADDR=127.0.0.1 -x MASTER_PORT=" +
          std::to_string(port) + " " + WorkerPath() + " loop 20 5000",
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("loop ok rank 1"), std::string::npos) << out;
}

}  // namespace
}  // namespace escala::testing
