#include <gtest/gtest.h>

#include "escala/config.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using testing::RunCommand;

TEST(Cli, VersionPrintsTheVersion) {
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " --version", &out), 0) << out;
  EXPECT_NE(out.find(ESCALA_VERSION_STRING), std::string::npos) << out;
}

TEST(Cli, HelpListsSubcommands) {
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " --help", &out), 0) << out;
  EXPECT_NE(out.find("info"), std::string::npos) << out;
}

TEST(Cli, InfoReportsBuildAndThreads) {
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " --threads 1 info", &out), 0) << out;
  EXPECT_NE(out.find("threads:       1"), std::string::npos) << out;
  EXPECT_NE(out.find("CUDA built in"), std::string::npos) << out;
}

// CPU commands do not pay for CUDA: the binary loads cuBLAS (and NCCL) only when a GPU is used.
TEST(Cli, TheBinaryDoesNotLinkCublas) {
  std::string out;
  if (RunCommand("command -v ldd", &out) != 0) GTEST_SKIP() << "no ldd";
  ASSERT_EQ(RunCommand("ldd " + CliPath(), &out), 0) << out;
  EXPECT_EQ(out.find("libcublas"), std::string::npos) << out;
  EXPECT_EQ(out.find("libnccl"), std::string::npos) << out;
}

TEST(Cli, UnknownSubcommandAndBadFlagsFail) {
  std::string out;
  EXPECT_NE(RunCommand(CliPath() + " frobnicate", &out), 0);
  EXPECT_NE(RunCommand(CliPath() + " --log-level loud info", &out), 0);
  EXPECT_NE(out.find("unknown log level 'loud'"), std::string::npos) << out;
}

}  // namespace
}  // namespace escala
