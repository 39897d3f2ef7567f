// The default build runs on old CPUs: the `escala` binary under qemu-user emulating an Intel
// Nehalem (SSE4.2, no AVX) trains a logistic model and an MLP and scores with both. A build for
// -march=native on a newer machine dies there with SIGILL (status 132).
#include <algorithm>
#include <cstdlib>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "escala/config.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;

// The CLI under `qemu-x86_64 -cpu Nehalem`, or "" with the reason in *why when that cannot run.
std::string NehalemCli(std::string* why) {
  const std::string baseline = ESCALA_ARCH_BASELINE;
  if (baseline != "x86-64" && baseline != "x86-64-v2") {
    *why = "built for " + baseline + ", which a Nehalem does not run";
    return "";
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  *why = "sanitizer runtimes do not run under qemu-user";
  return "";
#endif
  if (RunCommand("command -v qemu-x86_64") != 0) {
    *why = "qemu-x86_64 is not installed (Debian: qemu-user)";
    return "";
  }
  return "qemu-x86_64 -cpu Nehalem " + CliPath() + " --threads 2";
}

double ValidAccuracy(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("validation: accuracy ([0-9.]+)"))) return -1;
  return std::atof(m[1].str().c_str());
}

// `cli train ...`, expected to succeed; returns its validation accuracy.
double Train(const std::string& cli, const std::string& args) {
  std::string out;
  EXPECT_EQ(RunCommand(cli + " train " + args, &out), 0) << out;
  EXPECT_EQ(out.find("Illegal instruction"), std::string::npos) << out;
  return ValidAccuracy(out);
}

// Scores `data` with `bundle` into a CSV and returns its number of lines.
long ScoreLines(const std::string& cli, const std::string& bundle, const std::string& data,
                const std::string& out_csv) {
  std::string out;
  EXPECT_EQ(
      RunCommand(cli + " score --model " + bundle + " --data " + data + " --out " + out_csv, &out),
      0)
      << out;
  const std::string csv = testing::ReadFile(out_csv);
  return static_cast<long>(std::count(csv.begin(), csv.end(), '\n'));
}

TEST(PortableCli, TrainsAndScoresOnANehalemCpu) {
  std::string why;
  const std::string cli = NehalemCli(&why);
  if (cli.empty()) GTEST_SKIP() << why;
  std::string out;
  ASSERT_EQ(RunCommand(cli + " --version", &out), 0) << out;
  EXPECT_NE(out.find("kernels baseline"), std::string::npos) << out;  // no AVX on a Nehalem

  TempDir dir;
  const std::string rows = dir.File("rows.csv");
  ASSERT_EQ(RunCommand(cli +
                           " datagen --task classification --rows 3000 --features 12 "
                           "--informative 6 --classes 2 --seed 5 --out " +
                           rows,
                       &out),
            0)
      << out;
  EXPECT_GT(Train(cli, "--data " + rows +
                           " --label label --model logistic --valid-fraction 0.2 "
                           "--out " +
                           dir.File("lr.bundle")),
            0.7);
  const std::string penguins = SourcePath("examples/data/penguins.csv");
  EXPECT_GT(Train(cli, "--data " + penguins +
                           " --label species --model mlp --hidden 16 "
                           "--epochs 40 --batch-size 32 --lr 0.01 --valid-fraction 0.2 --out " +
                           dir.File("mlp.bundle")),
            0.9);
  EXPECT_EQ(ScoreLines(cli, dir.File("lr.bundle"), rows, dir.File("lr.csv")), 3001);
  EXPECT_EQ(ScoreLines(cli, dir.File("mlp.bundle"), penguins, dir.File("mlp.csv")), 345);
}

TEST(PortableCli, EscalaCpuIsaCapsTheKernels) {
  std::string out;
  ASSERT_EQ(RunCommand("ESCALA_CPU_ISA=baseline " + CliPath() + " --version", &out), 0) << out;
  EXPECT_NE(out.find("kernels baseline"), std::string::npos) << out;
  ASSERT_EQ(RunCommand("ESCALA_CPU_ISA=sse9 " + CliPath() + " --version", &out), 0) << out;
  EXPECT_NE(out.find("ESCALA_CPU_ISA=sse9 is not one of"), std::string::npos) << out;
}

}  // namespace
}  // namespace escala
