#include "escala/data/datagen.h"

#include <cmath>
#include <cstring>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/csv.h"
#include "escala/data/npy.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

SynthOptions Small() {
  SynthOptions o;
  o.rows = 3000;
  o.features = 12;
  o.informative = 5;
  o.seed = 7;
  return o;
}

TEST(Datagen, RowsDependOnSeedAndIndexOnly) {
  const SynthOptions o = Small();
  MatrixF a(100, 12), b(50, 12);
  std::vector<float> ya(100), yb(50);
  SetNumThreads(1);
  GenerateSynthetic(o, 0, a.view(), ya);
  SetNumThreads(2);
  SynthOptions later = o;
  later.start_row = 50;
  GenerateSynthetic(later, 0, b.view(), yb);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(std::memcmp(a.row(50 + i), b.row(i), 12 * sizeof(float)), 0);
    EXPECT_EQ(ya[static_cast<std::size_t>(50 + i)], yb[static_cast<std::size_t>(i)]);
  }
  SynthOptions other = o;
  other.seed = 8;
  MatrixF c(100, 12);
  std::vector<float> yc(100);
  GenerateSynthetic(other, 0, c.view(), yc);
  EXPECT_NE(std::memcmp(a.data(), c.data(), a.bytes()), 0);
  SetNumThreads(0);
}

TEST(Datagen, CsvGzipAndNpyHoldTheSameValues) {
  testing::TempDir dir;
  const SynthOptions o = Small();
  const auto s1 = WriteSynthetic(o, dir.File("d.csv"));
  const auto s2 = WriteSynthetic(o, dir.File("d.csv.gz"));
  const auto s3 = WriteSynthetic(o, dir.File("d.npy"));
  EXPECT_EQ(s1.rows, 3000);
  EXPECT_LT(s2.bytes, s1.bytes);
  MatrixF x(3000, 12);
  std::vector<float> y(3000);
  GenerateSynthetic(o, 0, x.view(), y);
  DenseSpec spec;
  spec.label = "label";
  for (const char* name : {"d.csv", "d.csv.gz"}) {
    const DenseData d = ReadCsvDense(dir.File(name), spec);
    ASSERT_EQ(d.rows(), 3000);
    EXPECT_EQ(d.feature_names.front(), "f0");
    EXPECT_EQ(d.feature_names.back(), "f11");
    EXPECT_EQ(std::memcmp(d.features.data(), x.data(), x.bytes()), 0) << name;
    EXPECT_EQ(d.labels, y) << name;
  }
  const MatrixF n = ReadNpyMatrix(dir.File("d.npy"));
  EXPECT_EQ(std::memcmp(n.data(), x.data(), x.bytes()), 0);
  EXPECT_EQ(ReadNpyVector(dir.File("d.labels.npy")), y);
  EXPECT_GT(s3.bytes, 3000u * 13 * 4);
}

TEST(Datagen, LabelsFollowTheTask) {
  SynthOptions o = Small();
  o.rows = 20000;
  MatrixF x(o.rows, o.features);
  std::vector<float> y(static_cast<std::size_t>(o.rows));
  GenerateSynthetic(o, 0, x.view(), y);
  double pos = 0, mean = 0, sq = 0;
  for (const float v : y) pos += v;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    mean += x.data()[i];
    sq += static_cast<double>(x.data()[i]) * x.data()[i];
  }
  mean /= static_cast<double>(x.size());
  EXPECT_NEAR(pos / o.rows, 0.5, 0.1);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sq / static_cast<double>(x.size()), 1.0, 0.05);  // unit-variance features

  o.classes = 4;
  GenerateSynthetic(o, 0, x.view(), y);
  std::set<float> classes(y.begin(), y.end());
  EXPECT_EQ(classes, (std::set<float>{0, 1, 2, 3}));

  o.task = SynthTask::kRegression;
  o.noise = 0.5;
  GenerateSynthetic(o, 0, x.view(), y);
  std::set<float> values(y.begin(), y.end());
  EXPECT_GT(values.size(), 10000u);
}

// The label carries signal: a least-squares fit on the features beats chance clearly (the full
// accuracy targets are checked against scikit-learn in bench/).
TEST(Datagen, LabelsArePredictable) {
  SynthOptions o = Small();
  o.rows = 20000;
  o.noise = 0.0;
  MatrixF x(o.rows, o.features);
  std::vector<float> y(static_cast<std::size_t>(o.rows));
  GenerateSynthetic(o, 0, x.view(), y);
  // Per-feature correlation with the label: some feature must be clearly informative.
  double best = 0;
  for (int j = 0; j < o.features; ++j) {
    double sx = 0, sy = 0, sxy = 0, sxx = 0, syy = 0;
    for (std::int64_t i = 0; i < o.rows; ++i) {
      const double a = x(i, j), b = y[static_cast<std::size_t>(i)];
      sx += a, sy += b, sxy += a * b, sxx += a * a, syy += b * b;
    }
    const double n = static_cast<double>(o.rows);
    const double r = (sxy - sx * sy / n) / std::sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
    best = std::max(best, std::fabs(r));
  }
  EXPECT_GT(best, 0.15);
}

TEST(Datagen, RejectsBadOptions) {
  SynthOptions o = Small();
  o.informative = 13;
  EXPECT_THAT([&] { ValidateSynthOptions(o); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("--informative")));
  o = Small();
  o.classes = 1;
  EXPECT_THROW(ValidateSynthOptions(o), Error);
  o = Small();
  o.noise = 2;
  EXPECT_THROW(ValidateSynthOptions(o), Error);
  testing::TempDir dir;
  EXPECT_THAT([&] { WriteSynthetic(Small(), dir.File("x.parquet")); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr(".csv, .csv.gz or .npy")));
}

}  // namespace
}  // namespace escala::data
