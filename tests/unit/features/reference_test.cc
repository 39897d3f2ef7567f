// escala's statistics and transformers against pandas and scikit-learn, run on the same data by
// tests/python/features_reference.py. Skips when Debian's python3 with pandas and scikit-learn
// is not installed.
#include <cmath>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "escala/core/communicator.h"
#include "escala/features/pipeline.h"
#include "escala/features/summary.h"
#include "test_util/temp_dir.h"

namespace escala::features {
namespace {

constexpr char kPython[] = "/usr/bin/python3";

data::Table MakeData(std::int64_t n) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> g(0, 1);
  data::Column a("a", data::DataType::kFloat64, n), b("b", data::DataType::kFloat64, n),
      c("c", data::DataType::kFloat64, n), k("k", data::DataType::kFloat64, n),
      cat("cat", data::DataType::kCategorical, n);
  cat.mutable_dictionary() = {"red", "green", "blue", "ochre"};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const double x = g(rng);
    a.mutable_f64()[u] = 100 + 15 * x;
    b.mutable_f64()[u] = 0.3 * x + g(rng);
    c.mutable_f64()[u] = std::exp(g(rng));
    k.mutable_f64()[u] = static_cast<double>(rng() % 7);
    cat.mutable_codes()[u] = static_cast<std::int32_t>(rng() % 4);
    if (i % 13 == 0) a.SetMissing(i);
    if (i % 17 == 5) b.SetMissing(i);
    if (i % 29 == 3) k.SetMissing(i);
  }
  return data::Table({a, b, c, k, cat});
}

void WriteCsv(const data::Table& t, const std::string& path) {
  std::ofstream out(path);
  for (int j = 0; j < t.num_columns(); ++j) out << (j ? "," : "") << t.column(j).name();
  out << "\n";
  out.precision(17);
  for (std::int64_t i = 0; i < t.num_rows(); ++i) {
    for (int j = 0; j < t.num_columns(); ++j) {
      const auto& c = t.column(j);
      if (j) out << ",";
      if (c.is_missing(i)) {
        out << "NA";
      } else if (c.type() == data::DataType::kCategorical) {
        out << c.category(i);
      } else {
        out << c.GetDouble(i);
      }
    }
    out << "\n";
  }
}

void WriteMatrix(const MatrixF& m, const std::string& path) {
  std::ofstream out(path);
  out.precision(9);
  for (std::int64_t i = 0; i < m.rows(); ++i) {
    for (std::int64_t j = 0; j < m.cols(); ++j) out << (j ? "," : "") << m(i, j);
    out << "\n";
  }
}

TEST(FeaturesReference, MatchesPandasAndScikitLearn) {
  if (testing::RunCommand(std::string(kPython) + " -c 'import sklearn, pandas'") != 0) {
    GTEST_SKIP() << "python3 with scikit-learn and pandas is not installed";
  }
  testing::TempDir dir;
  const data::Table t = MakeData(1500);
  WriteCsv(t, dir.File("data.csv"));
  auto comm = MakeSelfCommunicator();
  auto run = [&](const std::string& spec, const data::Table& input, const std::string& name) {
    auto p = Pipeline::FromSpec(spec);
    p.Fit(input, {}, *comm);
    MatrixF out;
    p.Transform(input, &out);
    WriteMatrix(out, dir.File(name + ".csv"));
  };
  const data::Table nums({t.column("a"), t.column("b"), t.column("c"), t.column("k")});
  run("impute(mean) | standardize", nums, "standard");
  run("impute(median) | minmax", nums, "minmax");
  run("impute(most_frequent, k) | robust", data::Table({t.column("k")}), "robust");
  run("onehot(cat)", data::Table({t.column("cat")}), "onehot");
  SummaryOptions so;
  so.duplicates = false;
  const auto summary = Summarize(t, so, *comm);
  testing::WriteFile(dir.File("stats.json"), FormatJson(summary));
  std::string output;
  const int rc = testing::RunCommand(std::string(kPython) + " " +
                                         testing::SourcePath("tests/python/features_reference.py") +
                                         " " + dir.path().string(),
                                     &output);
  EXPECT_EQ(rc, 0) << output;
}

}  // namespace
}  // namespace escala::features
