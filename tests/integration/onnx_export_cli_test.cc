// `escala export` end to end: bundles trained by `escala train` (every model family, pipelines
// with imputation, scaling, clipping, buckets, expressions and encoders), exported to ONNX, then
// checked by Python's onnx (check_model with full_check) and evaluated by a test-only numpy
// evaluator of the operators escala emits (tests/python/onnx_eval.py), whose outputs must match
// `escala score` on the same rows within 1e-5. Skips when python3-onnx or numpy is missing.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) out.push_back(field);
  return out;
}

// The penguins with a known sex and mass, some values made missing (numbers "NA" and "",
// categories "NA"); `unseen` also renames some islands to one never trained on.
void WritePenguins(const std::string& path, bool unseen) {
  std::ifstream in(SourcePath("examples/data/penguins.csv"));
  std::ofstream out(path);
  std::string line;
  std::getline(in, line);
  out << line << "\n";  // species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,...
  for (int i = 0; std::getline(in, line);) {
    auto f = Split(line);
    if (f.size() < 8 || f[6] == "NA" || f[5] == "NA") continue;
    if (i % 13 == 5) f[2] = "NA";
    if (i % 17 == 3) f[1] = "NA";
    if (i % 19 == 7) f[4] = "";
    if (unseen && i % 11 == 2) f[1] = "Atlantis";
    ++i;
    for (std::size_t k = 0; k < f.size(); ++k) out << (k ? "," : "") << f[k];
    out << "\n";
  }
}

bool HavePythonOnnx() {
  return RunCommand("/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null") == 0;
}

struct Case {
  const char* name;
  const char* train_args;
  bool unseen;  // score rows with an island never seen in training
};

// gtest prints the case by name, not as bytes.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

const Case kCases[] = {
    {"logistic_expr",
     "--label sex --model logistic --pipeline 'impute(mean) | impute(constant, value=unknown, "
     "cols=island) | bucketize(bill_depth_mm, boundaries=15,17,19) | minmax | onehot(island, "
     "species) | expr(r = bill_length_mm / (flipper_length_mm + 1)) | expr(big = "
     "if(body_mass_g > 0.5 and not (year >= 0.5), max(bill_depth_mm, 2, r), ceil(r*3) - floor(-r) "
     "+ isnan(r))) | poly(degree=2, cols=bill_length_mm,r)'",
     false},
    {"linear_scaled",
     "--label body_mass_g --model linear --pipeline 'impute(median, indicator=true) | "
     "impute(most_frequent, indicator=true) | clip(q=0.05,0.95) | robust | onehot(island, sex, "
     "species, unknown=other) | log1p(year)'",
     true},
    {"softmax_unseen",
     "--label species --model softmax --pipeline 'impute(median) | onehot(island, sex, "
     "unknown=ignore, max_categories=2)'",
     true},
    {"mlp_gelu",
     "--label species --model mlp --hidden 16,8 --activation gelu --pipeline 'impute(median) | "
     "impute(most_frequent) | sqrt(year) | abs(bill_depth_mm) | standardize | onehot(island, sex)'",
     false},
    {"mlp_tanh_regression",
     "--label body_mass_g --model mlp --hidden 8 --activation tanh --pipeline 'impute(median) | "
     "impute(most_frequent) | standardize | onehot(island, sex, species) | "
     "quantile_bins(bill_length_mm, bins=4)'",
     false},
    {"gbdt_multiclass", "--label species --model gbdt", false},
    {"gbdt_binary", "--label sex --model gbdt", false},
    {"gbdt_regression", "--label body_mass_g --model gbdt", false},
    {"gbdt_poisson", "--label body_mass_g --model gbdt --objective poisson", false},
    {"gbdt_ordinal_unseen",
     "--label species --model gbdt --pipeline 'impute(median) | ordinal(island, sex, "
     "unknown=use_value)'",
     true},
    {"forest_binary", "--label sex --model random_forest", false},
    {"forest_multiclass", "--label species --model random_forest", false},
};

class OnnxExportCli : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxExportCli, MatchesEscalaScore) {
  if (!HavePythonOnnx()) GTEST_SKIP() << "python3-onnx or numpy is not installed";
  const Case& c = GetParam();
  TempDir dir;
  const std::string train = dir.File("train.csv"), score = dir.File("score.csv");
  WritePenguins(train, false);
  WritePenguins(score, c.unseen);
  const std::string bundle = dir.File("m.bundle"), onnx = dir.File("m.onnx");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + train + " " + c.train_args + " --out " +
                           bundle + " 2>&1",
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(CliPath() + " export --model " + bundle + " --onnx " + onnx + " 2>&1", &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + bundle + " --data " + score + " --out " +
                           dir.File("p.csv") + " 2>&1",
                       &out),
            0)
      << out;
  EXPECT_EQ(RunCommand("/usr/bin/python3 " + SourcePath("tests/python/onnx_eval.py") + " " + onnx +
                           " " + score + " " + dir.File("p.csv") + " 2>&1",
                       &out),
            0)
      << out;
}

INSTANTIATE_TEST_SUITE_P(Families, OnnxExportCli, ::testing::ValuesIn(kCases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(OnnxExportCliErrors, OpsetOutOfRangeNamesTheFlag) {
  std::string out;
  EXPECT_NE(RunCommand(CliPath() + " export --model x.bundle --onnx x.onnx --opset 18 2>&1", &out),
            0);
  EXPECT_NE(out.find("--opset 18"), std::string::npos) << out;
}

TEST(OnnxExportCliErrors, HashPipelineIsRefusedAndWritesNothing) {
  TempDir dir;
  const std::string train = dir.File("train.csv"), bundle = dir.File("m.bundle");
  WritePenguins(train, false);
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + train +
                           " --label species --model softmax --pipeline 'impute(median) | "
                           "hash(island, sex)' --out " +
                           bundle + " 2>&1",
                       &out),
            0)
      << out;
  const std::string onnx = dir.File("m.onnx");
  EXPECT_NE(RunCommand(CliPath() + " export --model " + bundle + " --onnx " + onnx + " 2>&1", &out),
            0);
  EXPECT_NE(out.find("pipeline step 'hash(island, sex)'"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(onnx));
}

}  // namespace
}  // namespace escala
