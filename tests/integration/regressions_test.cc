// Regression tests for defects found by trying escala as a new user and as an attacker would:
// each runs the real `escala` binary on the input that once crashed, hung, lost data or answered
// wrongly, and checks the clear error (or the right answer) that replaced it.
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "escala/data/npy.h"
#include "escala/io/bundle.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

namespace fs = std::filesystem;
using testing::CliPath;
using testing::ReadFile;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;
using testing::WriteFile;

// Runs the CLI with a time bound (a hang fails the test instead of stalling the suite); returns
// the exit status: 2 for invalid arguments, 124 if the bound was hit.
int Escala(const std::string& args, std::string* out, int seconds = 120) {
  return RunCommand("timeout " + std::to_string(seconds) + " " + CliPath() + " " + args, out);
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// An 8-feature binary table: y = 1 when f0 + f1 > 0.
std::string EightFeatureCsv(int rows) {
  std::string csv = "f0,f1,f2,f3,f4,f5,f6,f7,y\n";
  for (int i = 0; i < rows; ++i) {
    const double a = (i % 17) - 8.0, b = (i % 5) - 2.0;
    csv += fmt::format("{},{},{},{},{},{},{},{},{}\n", a, b, i % 3, i % 7, 1, 0, i % 2, -a,
                       a + b > 0 ? 1 : 0);
  }
  return csv;
}

TEST(Regressions, StatsRejectsBadBinsInsteadOfCorruptingTheHeap) {
  const std::string data = SourcePath("examples/data/penguins.csv");
  for (const char* bins : {"0", "-5", "100000000"}) {
    std::string out;
    EXPECT_EQ(Escala("stats --data " + data + " --bins " + bins, &out), 2) << out;
    EXPECT_TRUE(Contains(out, "--bins) must be in [1, 10000], got " + std::string(bins))) << out;
  }
}

TEST(Regressions, NonFiniteScoresFailClearlyInsteadOfHanging) {
  TempDir dir;
  WriteFile(dir.File("train.csv"), EightFeatureCsv(200));
  std::string out;
  // Features used as they are: a row of huge values makes the logit inf - inf = NaN (f0 and f1
  // have positive weights, f7 = -f0 a negative one).
  ASSERT_EQ(Escala("train --data " + dir.File("train.csv") + " --label y --pipeline none --out " +
                       dir.File("m.bundle"),
                   &out),
            0)
      << out;
  WriteFile(dir.File("test.csv"), EightFeatureCsv(20) + "3e38,3e38,0,0,0,0,0,3e38,1\n");
  EXPECT_EQ(Escala("evaluate --model " + dir.File("m.bundle") + " --data " + dir.File("test.csv"),
                   &out, 60),
            2)
      << out;
  EXPECT_TRUE(Contains(out, "row 20: the prediction is not finite")) << out;
  EXPECT_EQ(Escala("score --model " + dir.File("m.bundle") + " --data " + dir.File("test.csv") +
                       " --out " + dir.File("p.csv"),
                   &out, 60),
            2)
      << out;
  EXPECT_FALSE(fs::exists(dir.File("p.csv")));
  EXPECT_EQ(Escala("train --data " + dir.File("train.csv") + " --valid " + dir.File("test.csv") +
                       " --label y --pipeline none --out " + dir.File("v.bundle"),
                   &out, 60),
            2)
      << out;
  EXPECT_TRUE(Contains(out, "the prediction is not finite")) << out;
  EXPECT_FALSE(fs::exists(dir.File("v.bundle")));
}

TEST(Regressions, JunkNamedNpyIsRefusedBeforeAllocating) {
  TempDir dir;
  std::string junk(4096, '\xff');
  WriteFile(dir.File("junk.npy"), junk);
  std::string out;
  EXPECT_NE(Escala("convert --data " + dir.File("junk.npy") + " --out " + dir.File("o.npy"), &out,
                   20),
            124);
  EXPECT_TRUE(Contains(out, "not an NPY file")) << out;
}

TEST(Regressions, OutputsThatAreInputsAreRefused) {
  TempDir dir;
  const std::string data = dir.File("x.csv");
  const std::string csv = EightFeatureCsv(100);
  WriteFile(data, csv);
  std::string out;
  ASSERT_EQ(Escala("train --data " + data + " --label y --out " + dir.File("m.bundle"), &out), 0)
      << out;
  const std::string m = dir.File("m.bundle");
  const std::string same = (dir.path() / "." / "x.csv").string();
  for (const std::string& args :
       {"score --model " + m + " --data " + data + " --out " + same,
        "score --model " + m + " --data " + data + " --out " + m,
        "train --data " + data + " --label y --out " + same,
        "train --data " + data + " --label y --history " + data + " --out " + dir.File("n.bundle"),
        "train --data " + data + " --label y --init-from " + m + " --out " + m,
        "stats --data " + data + " --json " + same,
        "convert --data " + dir.File("z.npy") + " --out " + dir.File("z.npy")}) {
    if (!fs::exists(dir.File("z.npy"))) {
      ASSERT_EQ(Escala("convert --data " + data + " --label y --out " + dir.File("z.npy"), &out),
                0)
          << out;
    }
    EXPECT_EQ(Escala(args, &out), 2) << args << "\n" << out;
    EXPECT_TRUE(Contains(out, "is also an input")) << args << "\n" << out;
  }
  EXPECT_EQ(ReadFile(data), csv);
  EXPECT_TRUE(io::ModelBundle::Load(m).model != nullptr);
}

TEST(Regressions, TrainWithoutOutWarnsThatNothingIsSaved) {
  TempDir dir;
  WriteFile(dir.File("x.csv"), EightFeatureCsv(100));
  std::string out;
  ASSERT_EQ(Escala("train --data " + dir.File("x.csv") + " --label y", &out), 0) << out;
  EXPECT_TRUE(Contains(out, "no --out given: the trained model will not be saved")) << out;
}

TEST(Regressions, ConvertedNpyTrainsEvaluatesAndScores) {
  TempDir dir;
  WriteFile(dir.File("x.csv"), EightFeatureCsv(300));
  std::string out;
  ASSERT_EQ(Escala("convert --data " + dir.File("x.csv") + " --label y --out " + dir.File("c.npy"),
                   &out),
            0)
      << out;
  ASSERT_EQ(Escala("train --data " + dir.File("c.npy") + " --label y --out " + dir.File("m.bundle"),
                   &out),
            0)
      << out;
  ASSERT_EQ(Escala("evaluate --model " + dir.File("m.bundle") + " --data " + dir.File("c.npy"),
                   &out),
            0)
      << out;
  EXPECT_TRUE(Contains(out, "300 rows")) << out;
  EXPECT_TRUE(Contains(out, "accuracy")) << out;
  ASSERT_EQ(Escala("score --model " + dir.File("m.bundle") + " --data " + dir.File("c.npy") +
                       " --out " + dir.File("p.csv"),
                   &out),
            0)
      << out;
}

}  // namespace
}  // namespace escala
