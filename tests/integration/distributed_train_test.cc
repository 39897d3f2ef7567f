// Data-parallel training through `escala launch` with real worker processes: the same model for 1,
// 2 and 4 workers, a worker killed mid-training, and a restart from the last checkpoint.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <signal.h>
#include <thread>

#include <gtest/gtest.h>

#include "escala/core/file_util.h"
#include "escala/io/bundle.h"
#include "escala/models/factory.h"
#include "test_util/launchers.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"
#include "test_util/torchrun.h"

namespace escala {
namespace {

using namespace std::chrono_literals;
using testing::CliPath;
using testing::RunCommand;
using testing::TempDir;

// Direct children of a process (the workers of a launcher), from /proc.
std::vector<pid_t> Children(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

void MaxParamDiff(const std::string& a, const std::string& b, double* diff) {
  const auto x = io::ModelBundle::Load(a), y = io::ModelBundle::Load(b);
  const auto p = dynamic_cast<const models::GradientModel&>(*x.model).parameters();
  const auto q = dynamic_cast<const models::GradientModel&>(*y.model).parameters();
  ASSERT_EQ(p.size(), q.size());
  *diff = 0;
  for (std::size_t i = 0; i < p.size(); ++i)
    *diff = std::max(*diff, double(std::fabs(p[i] - q[i])));
}

class DistTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    // Three part files, as a Spark job would write them.
    for (int part = 0; part < 3; ++part) {
      ASSERT_EQ(RunCommand(CliPath() + " datagen --task classification --rows 2000 --start-row " +
                               std::to_string(part * 2000) +
                               " --features 8 --informative 4 --seed 3 --out " +
                               dir_.File("part-0000" + std::to_string(part) + ".csv"),
                           &out),
                0)
          << out;
    }
  }
  std::string Train(const std::string& extra) const {
    return " --threads 1 train --data " + dir_.path().string() +
           " --label label --model mlp --hidden 16,8 --dropout 0.1 --batch-size 64"
           " --seed 7 --valid-fraction 0.1 --bucket-kb 1 " +
           extra;
  }
  TempDir dir_;
};

TEST_F(DistTrain, OneTwoAndFourWorkersTrainTheSameModel) {
  std::string out;
  for (int n : {1, 2, 4}) {
    const std::string bundle = dir_.File("m" + std::to_string(n) + ".bundle");
    ASSERT_EQ(RunCommand(CliPath() + " launch --nproc " + std::to_string(n) + " -- " + CliPath() +
                             Train("--epochs 3 --out " + bundle),
                         &out),
              0)
        << out;
  }
  double d2 = 1, d4 = 1;
  MaxParamDiff(dir_.File("m1.bundle"), dir_.File("m2.bundle"), &d2);
  MaxParamDiff(dir_.File("m1.bundle"), dir_.File("m4.bundle"), &d4);
  EXPECT_LT(d2, 1e-4);
  EXPECT_LT(d4, 1e-4);
  const auto m1 = io::ModelBundle::Load(dir_.File("m1.bundle"));
  const auto m4 = io::ModelBundle::Load(dir_.File("m4.bundle"));
  EXPECT_NEAR(m1.metrics.at("valid_logloss"), m4.metrics.at("valid_logloss"), 1e-4);
  EXPECT_EQ(m4.training_config.at("workers"), "4");
}

// Boosted trees as real processes over the gRPC ring: histograms summed in fixed point give
// byte-identical models for 1, 2 and 4 workers (the shards split the three files differently).
TEST_F(DistTrain, GbdtGrowsTheSameTreesOnOneTwoAndFourWorkers) {
  std::string out;
  std::vector<std::string> models;
  for (int n : {1, 2, 4}) {
    const std::string bundle = dir_.File("g" + std::to_string(n) + ".bundle");
    ASSERT_EQ(RunCommand(CliPath() + " launch --nproc " + std::to_string(n) + " -- " + CliPath() +
                             " --threads 1 train --data " + dir_.path().string() +
                             " --label label --model gbdt --pipeline none --rounds 10"
                             " --max-depth 4 --out " +
                             bundle,
                         &out),
              0)
        << out;
    models.push_back(models::SerializeModel(*io::ModelBundle::Load(bundle).model));
  }
  EXPECT_EQ(models[1], models[0]) << "2 workers";
  EXPECT_EQ(models[2], models[0]) << "4 workers";
}

// Trees under the other launchers, run for real where installed (torchrun, mpirun) and under a
// stand-in srun with Slurm's variables: 2 workers grow the same trees as 1, byte for byte.
TEST_F(DistTrain, GbdtUnderTorchrunMpirunAndSlurmGrowsTheSameTreesAsOneWorker) {
  const std::string args = " --threads 1 train --data " + dir_.path().string() +
                           " --label label --model gbdt --pipeline none --rounds 8 --max-depth 4"
                           " --out ";
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + args + dir_.File("one.bundle"), &out), 0) << out;
  const std::string one =
      models::SerializeModel(*io::ModelBundle::Load(dir_.File("one.bundle")).model);
  std::map<std::string, std::string> jobs;
  const std::string torchrun = testing::TorchrunCommand(dir_.File("torchrun-logs"));
  if (!torchrun.empty()) {
    jobs["torchrun"] = "exec " + torchrun +
                       " --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 --master_port " +
                       std::to_string(testing::FreePort()) + " --no_python " + CliPath() + args;
  }
  if (RunCommand("mpirun --version > /dev/null") == 0) {
    jobs["mpirun"] =
        "exec timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x "
        "MASTER_ADDR=127.0.0.1 -x MASTER_PORT=" +
        std::to_string(testing::FreePort()) + " " + CliPath() + args;
  }
  TempDir bin;  // not the data directory: the reader would take srun for data
  testing::WriteFakeSrun(bin);
  jobs["slurm"] = "PATH=" + bin.path().string() +
                  ":$PATH ESCALA_COORDINATOR_PORT=" + std::to_string(testing::FreePort()) +
                  " exec srun " + CliPath() + args;
  for (const auto& [name, command] : jobs) {
    const std::string bundle = dir_.File(name + ".bundle");
    testing::Subprocess job({"/bin/sh", "-c", command + bundle}, dir_.File(name + ".log"));
    const auto rc = job.Wait(150s);
    ASSERT_TRUE(rc.has_value()) << name << ": " << job.Output();
    ASSERT_EQ(*rc, 0) << name << ": " << job.Output();
    const auto got = io::ModelBundle::Load(bundle);
    EXPECT_EQ(got.training_config.at("workers"), "2") << name;
    EXPECT_EQ(models::SerializeModel(*got.model), one) << name;
  }
}

// torchrun's default (static) rendezvous, run for real: its agent owns MASTER_PORT, the workers
// find their coordinator through the agent's store, and two workers train one worker's model.
TEST_F(DistTrain, TorchrunWithTwoWorkersTrainsTheSameModelAsOne) {
  const std::string torchrun = testing::TorchrunCommand(dir_.File("torchrun-logs"));
  if (torchrun.empty()) GTEST_SKIP() << "torchrun (PyTorch) is not installed";
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + Train("--epochs 3 --out " + dir_.File("m1.bundle")), &out), 0)
      << out;
  testing::Subprocess job(
      {"/bin/sh", "-c",
       "exec " + torchrun +
           " --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 --master_port " +
           std::to_string(testing::FreePort()) + " --no_python " + CliPath() +
           Train("--epochs 3 --out " + dir_.File("m2.bundle"))},
      dir_.File("torchrun.log"));
  const auto rc = job.Wait(120s);
  ASSERT_TRUE(rc.has_value()) << job.Output();
  ASSERT_EQ(*rc, 0) << job.Output();
  double d2 = 1;
  MaxParamDiff(dir_.File("m1.bundle"), dir_.File("m2.bundle"), &d2);
  EXPECT_LT(d2, 1e-4);
  std::printf("torchrun, 2 workers vs 1: max |parameter difference| = %g\n", d2);
  EXPECT_EQ(io::ModelBundle::Load(dir_.File("m2.bundle")).training_config.at("workers"), "2");
}

TEST_F(DistTrain, AKilledWorkerStopsTheJobWithAClearErrorInsteadOfAHang) {
  testing::Subprocess launcher(
      {"/bin/sh", "-c",
       "exec " + CliPath() +
           " launch --nproc 2 --heartbeat-timeout 3s --collective-timeout 20s -- " + CliPath() +
           Train("--epochs 400 --checkpoint-dir " + dir_.File("ck") + " --out " +
                 dir_.File("never.bundle"))},
      dir_.File("launch.log"));
  // Wait until training runs (a checkpoint appears), then kill one worker.
  for (int i = 0; i < 600 && !std::filesystem::exists(dir_.File("ck/checkpoint.ckpt")); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(std::filesystem::exists(dir_.File("ck/checkpoint.ckpt")))
      << testing::ReadFile(dir_.File("launch.log"));
  const auto workers = Children(launcher.pid());
  ASSERT_EQ(workers.size(), 2u);
  const auto start = std::chrono::steady_clock::now();
  ::kill(workers[1], SIGKILL);
  const auto rc = launcher.Wait(60s);
  ASSERT_TRUE(rc.has_value()) << "the job hung after a worker died";
  EXPECT_NE(*rc, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 45s);
  const std::string log = testing::ReadFile(dir_.File("launch.log"));
  EXPECT_NE(log.find("rank"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("never.bundle")));
  // The last checkpoint is intact: its frame (magic, length, checksum) verifies.
  std::uint32_t version = 0;
  const std::string ck = ReadFileToString(dir_.File("ck/checkpoint.ckpt"));
  EXPECT_NO_THROW(UnframePayload(ck, "ESCALACK", &version, "checkpoint"));
}

TEST_F(DistTrain, MaxRestartsResumesFromTheLastCheckpointAndEndsWithTheSameModel) {
  std::string out;
  const std::string args =
      "--epochs 6 --checkpoint-dir " + dir_.File("ck") + " --checkpoint-every-steps 10 --resume";
  ASSERT_EQ(RunCommand(CliPath() + " launch --nproc 2 -- " + CliPath() +
                           Train("--epochs 6 --out " + dir_.File("clean.bundle")),
                       &out),
            0)
      << out;
  testing::Subprocess launcher(
      {"/bin/sh", "-c",
       "exec " + CliPath() + " launch --nproc 2 --max-restarts 1 --heartbeat-timeout 3s -- " +
           CliPath() + Train(args + " --out " + dir_.File("restarted.bundle"))},
      dir_.File("launch.log"));
  for (int i = 0; i < 600 && !std::filesystem::exists(dir_.File("ck/checkpoint.ckpt")); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  const auto workers = Children(launcher.pid());
  ASSERT_EQ(workers.size(), 2u);
  ::kill(workers[0], SIGKILL);
  const auto rc = launcher.Wait(120s);
  ASSERT_TRUE(rc.has_value());
  const std::string log = testing::ReadFile(dir_.File("launch.log"));
  ASSERT_EQ(*rc, 0) << log;
  EXPECT_NE(log.find("restarting the job"), std::string::npos) << log;
  EXPECT_NE(log.find("resuming from"), std::string::npos) << log;
  double diff = 1;
  MaxParamDiff(dir_.File("clean.bundle"), dir_.File("restarted.bundle"), &diff);
  EXPECT_EQ(diff, 0.0);
}

// Processes whose command line mentions `text` (a test's temporary directory): what a job left.
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos && cmdline.find("escala") != std::string::npos) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

// A worker of a 2-worker job dies (SIGKILL, through ESCALA_FAULT: escala/core/fault_injection.h)
// at each phase of `escala train`: joining the job, fitting the pipeline, writing a checkpoint,
// writing the final bundle. The launcher exits with an error within the timeouts, no process is
// left, no partial file is ever published; with --max-restarts 1 the job ends with the very model
// an undisturbed run gives.
class DistTrainFaults : public DistTrain, public ::testing::WithParamInterface<const char*> {};

TEST_P(DistTrainFaults, AWorkerKilledAtEachPhaseLeavesNothingHalfDone) {
  const std::string fault = GetParam();
  const std::string launch = " launch --nproc 2 --heartbeat-timeout 3s --collective-timeout 20s";
  const std::string train = Train("--epochs 3 --checkpoint-dir " + dir_.File("ck") + " --resume");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + launch + " -- " + CliPath() +
                           Train("--epochs 3 --out " + dir_.File("clean.bundle")),
                       &out),
            0)
      << out;
  const auto start = std::chrono::steady_clock::now();
  const int rc = RunCommand("ESCALA_FAULT=" + fault + " timeout 90 " + CliPath() + launch + " -- " +
                                CliPath() + train + " --out " + dir_.File("m.bundle"),
                            &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(rc, 124) << "the job hung after a worker died\n" << out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);
  EXPECT_NE(out.find("fault injection"), std::string::npos) << out;
  EXPECT_TRUE(ProcessesMentioning(dir_.path().string()).empty()) << "a worker was left running";
  EXPECT_FALSE(std::filesystem::exists(dir_.File("m.bundle"))) << out;
  if (std::filesystem::exists(dir_.File("ck/checkpoint.ckpt"))) {
    std::uint32_t version = 0;
    const std::string ck = ReadFileToString(dir_.File("ck/checkpoint.ckpt"));
    EXPECT_NO_THROW(UnframePayload(ck, "ESCALACK", &version, "checkpoint"));
  }
  // The same fault with one restart allowed: the restarted job (the fault fires on the first
  // attempt only) resumes from what survived and ends with the undisturbed run's model.
  std::filesystem::remove_all(dir_.File("ck"));
  ASSERT_EQ(RunCommand("ESCALA_FAULT=" + fault + " timeout 120 " + CliPath() + launch +
                           " --max-restarts 1 -- " + CliPath() + train + " --out " +
                           dir_.File("m.bundle"),
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("restarting the job"), std::string::npos) << out;
  double diff = 1;
  MaxParamDiff(dir_.File("clean.bundle"), dir_.File("m.bundle"), &diff);
  EXPECT_EQ(diff, 0.0);
}

std::string PhaseName(const ::testing::TestParamInfo<const char*>& param) {
  static const char* const kNames[] = {"Rendezvous", "PipelineFit", "CheckpointWrite",
                                       "BundleWrite"};
  return kNames[param.index];
}

INSTANTIATE_TEST_SUITE_P(Phases, DistTrainFaults,
                         ::testing::Values("rendezvous@1", "pipeline_fit@1",
                                           "write:checkpoint.ckpt@0", "write:.bundle@0"),
                         PhaseName);

}  // namespace
}  // namespace escala
