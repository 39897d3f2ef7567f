// Regression tests for defects found by trying escala as a new user and as an attacker would:
// each runs the real `escala` binary on the input that once crashed, hung, lost data or answered
// wrongly, and checks the clear error (or the right answer) that replaced it.
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "escala/data/npy.h"
#include "escala/io/bundle.h"
#include "test_util/process.h"
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

// The largest peak RSS of any child process waited for so far (KB).
std::int64_t ChildPeakRssKb() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  return ru.ru_maxrss;
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

// Writes <dir>/x.csv (EightFeatureCsv(rows)) and trains the default logistic model on it into
// <dir>/m.bundle.
void TrainLogistic(const TempDir& dir, int rows) {
  WriteFile(dir.File("x.csv"), EightFeatureCsv(rows));
  std::string out;
  ASSERT_EQ(Escala("train --data " + dir.File("x.csv") + " --label y --out " + dir.File("m.bundle"),
                   &out),
            0)
      << out;
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

TEST(Regressions, ACategoricalColumnNamesTheValueThatMadeIt) {
  TempDir dir;
  WriteFile(dir.File("c.csv"), "f1,f2,y\n1,2,0\n1,n/a,1\n");
  std::string out;
  EXPECT_EQ(
      Escala("convert --data " + dir.File("c.csv") + " --label y --out " + dir.File("c.npy"), &out),
      2)
      << out;
  EXPECT_TRUE(Contains(out, "column 'f2' is categorical (first non-numeric value at " +
                                dir.File("c.csv") + ":3:3: 'n/a')"))
      << out;
  // convert takes the same data flags as the other commands.
  EXPECT_EQ(Escala("convert --data " + dir.File("c.csv") + " --label y --na-values n/a --out " +
                       dir.File("c.npy"),
                   &out),
            0)
      << out;
}

TEST(Regressions, JunkNamedNpyIsRefusedBeforeAllocating) {
  TempDir dir;
  std::string junk(4096, '\xff');
  WriteFile(dir.File("junk.npy"), junk);
  std::string out;
  EXPECT_NE(
      Escala("convert --data " + dir.File("junk.npy") + " --out " + dir.File("o.npy"), &out, 20),
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
      ASSERT_EQ(Escala("convert --data " + data + " --label y --out " + dir.File("z.npy"), &out), 0)
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
  ASSERT_EQ(
      Escala("convert --data " + dir.File("x.csv") + " --label y --out " + dir.File("c.npy"), &out),
      0)
      << out;
  ASSERT_EQ(Escala("train --data " + dir.File("c.npy") + " --label y --out " + dir.File("m.bundle"),
                   &out),
            0)
      << out;
  ASSERT_EQ(
      Escala("evaluate --model " + dir.File("m.bundle") + " --data " + dir.File("c.npy"), &out), 0)
      << out;
  EXPECT_TRUE(Contains(out, "300 rows")) << out;
  EXPECT_TRUE(Contains(out, "accuracy")) << out;
  ASSERT_EQ(Escala("score --model " + dir.File("m.bundle") + " --data " + dir.File("c.npy") +
                       " --out " + dir.File("p.csv"),
                   &out),
            0)
      << out;
}

TEST(Regressions, QuerySendsColumnsByNameNotPosition) {
  TempDir dir;
  TrainLogistic(dir, 200);
  std::string out;
  auto serve = testing::StartServe({"--model", "m=" + dir.File("m.bundle"), "--no-http"},
                                   dir.File("serve.log"));
  const std::string server = " --server 127.0.0.1:" + std::to_string(serve.grpc_port);
  // The same rows with the label first and the columns reversed: the same predictions.
  WriteFile(dir.File("reversed.csv"),
            "y,f7,f6,f5,f4,f3,f2,f1,f0\n1,-8,0,0,1,3,1,2,8\n0,8,1,0,1,2,2,-2,-8\n");
  WriteFile(dir.File("ordered.csv"),
            "f0,f1,f2,f3,f4,f5,f6,f7,y\n8,2,1,3,1,0,0,-8,1\n-8,-2,2,2,1,0,1,8,0\n");
  std::string a, b;
  ASSERT_EQ(Escala("query --model m --rows 2 --data " + dir.File("reversed.csv") + server, &a), 0)
      << a;
  ASSERT_EQ(Escala("query --model m --rows 2 --data " + dir.File("ordered.csv") + server, &b), 0)
      << b;
  EXPECT_EQ(a, b);
  EXPECT_TRUE(Contains(a, "label=1")) << a;
  // A renamed column is refused by name.
  WriteFile(dir.File("renamed.csv"), "f0,f1,f2,f3,f4,f5,f6,g7\n1,2,1,3,1,0,0,-8\n");
  EXPECT_EQ(Escala("query --model m --data " + dir.File("renamed.csv") + server, &out), 2);
  EXPECT_TRUE(Contains(out, "no column 'f7', which model 'm' takes as input")) << out;
}

TEST(Regressions, ServeRefusesBadPortsAndDuplicateModels) {
  TempDir dir;
  TrainLogistic(dir, 100);
  std::string out;
  const std::string m = " --model m=" + dir.File("m.bundle");
  EXPECT_EQ(Escala("serve" + m + " --grpc-port 70000", &out, 20), 2) << out;
  EXPECT_TRUE(Contains(out, "70000")) << out;
  EXPECT_EQ(Escala("serve" + m + " --poll-secs -1", &out, 20), 2) << out;
  EXPECT_EQ(Escala("serve" + m + " --max-batch -4", &out, 20), 2) << out;
  EXPECT_EQ(Escala("serve" + m + " --drain-grace-secs -1", &out, 20), 2) << out;
  EXPECT_EQ(Escala("serve" + m + " --version-policy latest:0", &out, 20), 2) << out;
  EXPECT_TRUE(Contains(out, "version policy 'latest:0'")) << out;
  EXPECT_EQ(Escala("serve" + m + m + " --grpc-port 0 --no-http", &out, 20), 2) << out;
  EXPECT_TRUE(Contains(out, "model 'm' version 1 is added twice")) << out;
}

TEST(Regressions, TrainRefusesValuesItUsedToReinterpret) {
  TempDir dir;
  WriteFile(dir.File("x.csv"), EightFeatureCsv(100));
  const std::string base = "train --data " + dir.File("x.csv") + " --label y ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--lr 0", "lr must be > 0, got 0"},
      {"--model mlp --hidden ''", "an mlp needs at least one hidden layer"},
      {"--model mlp --hidden 8,,8", "item 2 ('') is not a positive integer"},
      {"--model mlp --hidden 100000,100000", "the model would have 1e+10 parameters"},
      {"--cv -2", "cv must be 0 (off) or at least 2 folds"},
      {"--cv 5000", "cross-validation folds (--cv) must be in [2, 100]"},
      {"--search-samples -1", "search_samples must be >= 0"},
      {"--metric nosuch", "unknown metric 'nosuch' for a binary model"},
      {"--valid-fraction 0.9999", "leaves 0 training row(s) of 100"},
      {"--dropout 1.5", "dropout must be in [0, 1)"},
  };
  for (const auto& [flags, message] : cases) {
    std::string out;
    // A size limit is RESOURCE_EXHAUSTED (exit 1), every other case an invalid argument (2).
    EXPECT_EQ(Escala(base + flags, &out), Contains(message, "parameters") ? 1 : 2) << flags << "\n"
                                                                                   << out;
    EXPECT_TRUE(Contains(out, message)) << flags << "\n" << out;
  }
  std::string out;
  EXPECT_EQ(Escala("evaluate --model /nonexistent --data " + dir.File("x.csv") + " --threshold nan",
                   &out),
            2);
  EXPECT_TRUE(Contains(out, "--threshold must be in [0, 1], got nan")) << out;
}

// scikit-learn's bundled tables (a count line, no header, the label last), when installed.
std::string SklearnData(const std::string& name) {
  const std::string path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/" + name;
  return fs::exists(path) ? path : "";
}

double TrainSmall(const std::string& data, const std::string& label, const std::string& flags,
                  const std::string& metric, const TempDir& dir) {
  std::string out;
  const std::string bundle = dir.File("small.bundle");
  EXPECT_EQ(Escala("train --data " + data + " --label " + label +
                       " --valid-fraction 0.2 --seed 3 " + flags + " --out " + bundle,
                   &out),
            0)
      << out;
  return io::ModelBundle::Load(bundle).metrics.at("valid_" + metric);
}

// With no tuning, small real tables give what scikit-learn's defaults give (breast cancer
// logistic: test log-loss ~0.09, iris MLP: accuracy ~0.97), where the old defaults (no l2, 10
// epochs of batch 256, an unscaled regression target) gave 1.51, 0.70 and R^2 -2.9.
TEST(Regressions, DefaultsWorkOnSmallRealTables) {
  const std::string cancer = SklearnData("breast_cancer.csv");
  const std::string iris = SklearnData("iris.csv");
  if (cancer.empty() || iris.empty()) GTEST_SKIP() << "scikit-learn's datasets are not installed";
  TempDir dir;
  const std::string raw = "--no-header --skip-lines 1 ";
  EXPECT_LT(TrainSmall(cancer, "c30", raw + "--model logistic", "logloss", dir), 0.2);
  EXPECT_GE(TrainSmall(iris, "c4", raw + "--model mlp", "accuracy", dir), 0.9);
  EXPECT_GE(TrainSmall(iris, "c4", raw + "--model softmax", "accuracy", dir), 0.9);
  // A regression MLP on a target in the hundreds (diabetes progression, 25..346).
  std::string csv = "a,b,c,y\n";
  for (int i = 0; i < 300; ++i) {
    const double a = (i % 13) / 6.0 - 1, b = (i % 7) / 3.0 - 1, c = (i % 5) / 2.0 - 1;
    csv += fmt::format("{},{},{},{}\n", a, b, c, 150 + 60 * a - 40 * b * b + 20 * c);
  }
  WriteFile(dir.File("reg.csv"), csv);
  EXPECT_GT(TrainSmall(dir.File("reg.csv"), "y", "--model mlp", "r2", dir), 0.8);
}

TEST(Regressions, CountLinesReadAsDataAreWarnedAbout) {
  const std::string iris = SklearnData("iris.csv");
  if (iris.empty()) GTEST_SKIP() << "scikit-learn's datasets are not installed";
  std::string out;
  ASSERT_EQ(Escala("train --data " + iris + " --label c4 --no-header --model softmax", &out), 0)
      << out;
  EXPECT_TRUE(Contains(out, "label 'c4' is categorical because of 1 non-numeric value(s)")) << out;
  EXPECT_TRUE(Contains(out, "1 class(es) appear only once (virginica)")) << out;
  ASSERT_EQ(Escala("train --data " + iris + " --label c4 --no-header --skip-lines 1", &out), 2)
      << out;  // the label has 3 classes: a binary logistic model refuses it
  EXPECT_TRUE(Contains(out, "label 'c4' has 3 class(es) (0, 1, 2)")) << out;
}

TEST(Regressions, FiniteDivergenceFailsAndWritesNoBundle) {
  TempDir dir;
  WriteFile(dir.File("x.csv"), EightFeatureCsv(300));
  std::string out;
  EXPECT_EQ(Escala("train --data " + dir.File("x.csv") +
                       " --label y --model mlp --hidden 8 --epochs 20 --lr 1e10 --out " +
                       dir.File("m.bundle"),
                   &out),
            1)
      << out;
  EXPECT_TRUE(Contains(out, "training diverged")) << out;
  EXPECT_FALSE(Contains(out, "last good checkpoint")) << out;  // none was written
  EXPECT_FALSE(fs::exists(dir.File("m.bundle")));
}

TEST(Regressions, ResumeRefusesAChangedPipeline) {
  TempDir dir;
  WriteFile(dir.File("x.csv"), EightFeatureCsv(300));
  const std::string base = "train --data " + dir.File("x.csv") +
                           " --label y --model mlp --hidden 8 --epochs 2 --checkpoint-dir " +
                           dir.File("ck") + " --out " + dir.File("m.bundle");
  std::string out;
  ASSERT_EQ(Escala(base, &out), 0) << out;
  EXPECT_EQ(Escala(base + " --resume --pipeline 'standardize | clip(z=2)'", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "checkpoint was written with different options or data")) << out;
  EXPECT_EQ(Escala(base + " --resume", &out), 0) << out;
}

TEST(Regressions, LabelsThatAreNotClassesAreRefusedByRow) {
  TempDir dir;
  WriteFile(dir.File("inf.csv"), "a,y\n1,0\n2,1\n3,inf\n4,0\n");
  std::string out;
  EXPECT_EQ(
      Escala("train --data " + dir.File("inf.csv") + " --label y --model mlp --epochs 1", &out), 2)
      << out;
  EXPECT_TRUE(Contains(out, "row 2: label 'y' is inf")) << out;
  // A continuous label for a binary model: a short message with a hint, not every value.
  std::string csv = "a,y\n";
  for (int i = 0; i < 200; ++i) csv += fmt::format("{},{}\n", i, i * 3);
  WriteFile(dir.File("cont.csv"), csv);
  EXPECT_EQ(Escala("train --data " + dir.File("cont.csv") + " --label y", &out), 2) << out;
  EXPECT_TRUE(Contains(out,
                       "... 200 in all); binary models need exactly 2 (a regression target? "
                       "use --model linear)"))
      << out;
  EXPECT_LT(out.size(), 1500u) << out;
  // A model of named classes evaluated on numeric labels.
  ASSERT_EQ(Escala("train --data " + SourcePath("examples/data/penguins.csv") +
                       " --label species --model softmax --out " + dir.File("p.bundle"),
                   &out),
            0)
      << out;
  WriteFile(dir.File("num.csv"), "species,island,bill_length_mm\n1,Dream,40\n");
  EXPECT_EQ(
      Escala("evaluate --model " + dir.File("p.bundle") + " --data " + dir.File("num.csv"), &out),
      2)
      << out;
  EXPECT_TRUE(Contains(out,
                       "label 'species' is numeric in this data, but the model's classes are "
                       "names (Adelie, Chinstrap, Gentoo)"))
      << out;
}

TEST(Regressions, ErrorsAreClearAndEscaped) {
  TempDir dir;
  // Control characters of a hostile column name are shown escaped, not sent to the terminal.
  WriteFile(dir.File("ctl.csv"), "a\x1b[2J,y\n1,0\n2,1\n");
  std::string out;
  EXPECT_EQ(Escala("train --data " + dir.File("ctl.csv") + " --label nosuch", &out), 1) << out;
  EXPECT_FALSE(Contains(out, "\x1b")) << out;
  EXPECT_TRUE(Contains(out, "a\\x1b[2J")) << out;
  // A directory that cannot be created: the path and the reason, no "internal error".
  WriteFile(dir.File("x.csv"), EightFeatureCsv(50));
  EXPECT_EQ(Escala("train --data " + dir.File("x.csv") +
                       " --label y --model mlp --hidden 4 --epochs 1 --checkpoint-dir "
                       "/proc/escala-ck",
                   &out),
            1)
      << out;
  EXPECT_FALSE(Contains(out, "internal error")) << out;
  EXPECT_TRUE(Contains(out, "/proc/escala-ck")) << out;
  // A bundle claiming format version 0 is damaged, not "newer than this escala".
  ASSERT_EQ(Escala("train --data " + dir.File("x.csv") + " --label y --out " + dir.File("m.bundle"),
                   &out),
            0)
      << out;
  std::string bytes = ReadFile(dir.File("m.bundle"));
  bytes[8] = bytes[9] = bytes[10] = bytes[11] = 0;  // the format version, after the magic
  WriteFile(dir.File("v0.bundle"), bytes);
  EXPECT_EQ(
      Escala("evaluate --model " + dir.File("v0.bundle") + " --data " + dir.File("x.csv"), &out), 1)
      << out;
  EXPECT_TRUE(Contains(out, "bundle format version 0 does not exist")) << out;
}

// Wide tables: the header, the schema and the statistics are linear in the column count (the
// reader was quadratic: 11 s for 40,000 columns; stats held columns^2 doubles: 23 GB for 20,000).
TEST(Regressions, WideTablesAreReadAndSummarisedInLinearTimeAndMemory) {
  TempDir dir;
  const int n = 200000;
  std::string header, row;
  for (int i = 0; i < n; ++i) {
    header += fmt::format("{}c{}", i ? "," : "", i);
    row += fmt::format("{}{}", i ? "," : "", i % 7);
  }
  WriteFile(dir.File("wide.csv"), header + "\n" + row + "\n" + row + "\n");
  std::string out;
  // The time bound turns a quadratic reader back into a failure (it took minutes).
  EXPECT_EQ(
      Escala("convert --data " + dir.File("wide.csv") + " --out " + dir.File("w.npy"), &out, 60), 0)
      << out;
  const std::int64_t before = ChildPeakRssKb();
  EXPECT_EQ(Escala("stats --data " + dir.File("wide.csv") + " --no-duplicates", &out, 120), 0)
      << out.substr(0, 2000);
  EXPECT_TRUE(Contains(out, "correlations skipped: 200000 numeric columns")) << out.substr(0, 500);
  const std::int64_t peak = ChildPeakRssKb();
  if (peak > before) {
    EXPECT_LT(peak, 4 << 20) << "stats peak RSS " << peak << " KB";
  }
}

TEST(Regressions, MoreValuesThatWereAcceptedOrCrashed) {
  TempDir dir;
  TrainLogistic(dir, 100);
  const std::string data = dir.File("x.csv");
  std::string out;
  for (const auto& [pipeline, message] : std::vector<std::pair<std::string, std::string>>{
           {"clip(f0, iqr=-1)", "iqr must be >= 0, got -1"},
           {"onehot(max_categories=-1)", "max_categories must be an integer >= 0"},
           {"hash(f0, buckets=0)", "buckets must be an integer in [1, 1048576]"}}) {
    EXPECT_EQ(Escala("train --data " + data + " --label y --pipeline '" + pipeline + "'", &out), 2)
        << pipeline << "\n"
        << out;
    EXPECT_TRUE(Contains(out, message)) << pipeline << "\n" << out;
  }
  EXPECT_EQ(Escala("score --model " + dir.File("m.bundle") + " --data " + data +
                       " --chunk-mb -1 --out " + dir.File("p.csv"),
                   &out),
            2)
      << out;
  EXPECT_TRUE(Contains(out, "--chunk-mb must be in (0, 4096], got -1")) << out;
  // LIBSVM trains and summarises as a table (it was refused with an API hint).
  WriteFile(dir.File("d.svm"), "1 1:0.5 3:1\n0 2:1\n1 1:1 3:0.5\n0 2:0.5\n");
  EXPECT_EQ(Escala("train --data " + dir.File("d.svm") + " --label label", &out), 0) << out;
  EXPECT_EQ(Escala("stats --data " + dir.File("d.svm"), &out), 0) << out;
  // convert says how many values it wrote as inf and how many labels are missing.
  WriteFile(dir.File("big.csv"), "a,y\n1e39,1\n2,\n3,0\n");
  EXPECT_EQ(
      Escala("convert --data " + dir.File("big.csv") + " --label y --out " + dir.File("big.npy"),
             &out),
      0)
      << out;
  EXPECT_TRUE(Contains(out, "1 feature value(s) are infinite or beyond float32's range")) << out;
  EXPECT_TRUE(Contains(out, "1 value(s) of the label 'y' are missing or infinite")) << out;
}

TEST(Regressions, AnUnseenCategoryAfterImputationIsQuoted) {
  TempDir dir;
  WriteFile(dir.File("c.csv"), "c,x,y\na,1,0\nb,2,1\na,3,0\n,4,1\n");
  WriteFile(dir.File("new.csv"), "c,x,y\nzzz,1,0\n");
  std::string out;
  ASSERT_EQ(Escala("train --data " + dir.File("c.csv") +
                       " --label y --pipeline 'impute(most_frequent) | onehot(c, unknown=error) | "
                       "standardize' --out " +
                       dir.File("m.bundle"),
                   &out),
            0)
      << out;
  EXPECT_EQ(
      Escala("evaluate --model " + dir.File("m.bundle") + " --data " + dir.File("new.csv"), &out),
      2)
      << out;
  EXPECT_TRUE(Contains(out, "column 'c' has category 'zzz' that was not seen")) << out;
}

TEST(Regressions, EvaluateWithManyClassesOmitsTheConfusionMatrix) {
  TempDir dir;
  std::string csv = "a,y\n";
  for (int i = 0; i < 240; ++i) csv += fmt::format("{},c{}\n", i % 60, i % 60);
  WriteFile(dir.File("k.csv"), csv);
  std::string out;
  ASSERT_EQ(Escala("train --data " + dir.File("k.csv") + " --label y --model softmax --out " +
                       dir.File("k.bundle"),
                   &out),
            0)
      << out;
  ASSERT_EQ(
      Escala("evaluate --model " + dir.File("k.bundle") + " --data " + dir.File("k.csv"), &out), 0)
      << out;
  EXPECT_TRUE(Contains(out, "confusion matrix omitted: 60 classes (more than 50)")) << out;
}

}  // namespace
}  // namespace escala
