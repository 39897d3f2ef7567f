#include "escala/features/pipeline.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"

namespace escala::features {
namespace {

using data::Column;
using data::DataType;
using data::Table;

Column Numeric(const std::string& name, const std::vector<double>& v) {
  Column c(name, DataType::kFloat64, static_cast<std::int64_t>(v.size()));
  auto out = c.mutable_f64();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) {
      c.SetMissing(static_cast<std::int64_t>(i));
    } else {
      out[i] = v[i];
    }
  }
  return c;
}

Column Categorical(const std::string& name, const std::vector<std::string>& v) {
  Column c(name, DataType::kCategorical, static_cast<std::int64_t>(v.size()));
  auto& dict = c.mutable_dictionary();
  auto codes = c.mutable_codes();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].empty()) {
      c.SetMissing(static_cast<std::int64_t>(i));
      continue;
    }
    auto it = std::find(dict.begin(), dict.end(), v[i]);
    if (it == dict.end()) {
      dict.push_back(v[i]);
      it = dict.end() - 1;
    }
    codes[i] = static_cast<std::int32_t>(it - dict.begin());
  }
  return c;
}

const double kNa = std::nan("");

Table Penguinish() {
  return Table({Numeric("mass", {3750, 3800, kNa, 3450, 3650, 4675, 5700, 4400}),
                Numeric("flipper", {181, 186, 195, kNa, 193, 210, 230, 220}),
                Categorical("species", {"Adelie", "Adelie", "Adelie", "Chinstrap", "Chinstrap",
                                        "Gentoo", "Gentoo", "Gentoo"}),
                Categorical("sex", {"male", "female", "", "female", "male", "female", "male", ""}),
                Numeric("label", {0, 0, 0, 1, 1, 2, 2, 2})});
}

FitOptions NoLabel() {
  FitOptions o;
  o.exclude = {"label"};
  return o;
}

TEST(Pipeline, ImputeStandardizeOnehotEndToEnd) {
  auto p = Pipeline::FromSpec(
      "impute(median) | standardize | impute(most_frequent, sex) | onehot(species, sex)");
  auto comm = MakeSelfCommunicator();
  const Table t = Penguinish();
  p.Fit(t, NoLabel(), *comm);
  ASSERT_TRUE(p.fitted());
  EXPECT_EQ(p.output_names(),
            (std::vector<std::string>{"mass", "flipper", "species=Adelie", "species=Chinstrap",
                                      "species=Gentoo", "sex=female", "sex=male"}));
  MatrixF out;
  p.Transform(t, &out);
  ASSERT_EQ(out.rows(), 8);
  // Standardised columns have mean 0 and population std 1.
  for (int j = 0; j < 2; ++j) {
    double s = 0, ss = 0;
    for (int i = 0; i < 8; ++i) {
      s += out(i, j);
      ss += out(i, j) * out(i, j);
    }
    EXPECT_NEAR(s / 8, 0, 1e-6);
    EXPECT_NEAR(ss / 8, 1, 1e-5);
  }
  // The imputed mass (median of 7 values = 3800) standardises like 3800 does.
  EXPECT_FLOAT_EQ(out(2, 0), out(1, 0));
  EXPECT_EQ(out(3, 3), 1.0f);              // Chinstrap
  EXPECT_EQ(out(2, 5) + out(2, 6), 1.0f);  // missing sex imputed to one category
}

TEST(Pipeline, SerializeParseTransformIsBitIdentical) {
  auto p = Pipeline::FromSpec(
      "impute(mean, indicator=true) | clip(q=0.1,0.9) | robust(mass) | minmax(flipper) "
      "| expr(ratio = mass / (flipper + 1)) | ordinal(species) | hash(sex, buckets=4) "
      "| poly(degree=2, mass, flipper) | quantile_bins(ratio, bins=3)");
  auto comm = MakeSelfCommunicator();
  const Table t = Penguinish();
  p.Fit(t, NoLabel(), *comm);
  MatrixF a, b;
  p.Transform(t, &a);
  const Pipeline back = Pipeline::Parse(p.Serialize());
  EXPECT_EQ(back.output_names(), p.output_names());
  back.Transform(t, &b);
  ASSERT_EQ(a.size(), b.size());
  for (std::int64_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(std::memcmp(&a.data()[i], &b.data()[i], sizeof(float)), 0) << i;
  }
  EXPECT_NE(p.Describe().find("quantile_bins"), std::string::npos);
}

TEST(Pipeline, DistributedFitEqualsSingleProcessFit) {
  // 400 rows with missing values and categories, split over 1, 2, 3 and 8 ranks.
  std::mt19937 rng(3);
  std::normal_distribution<double> g(10, 3);
  std::vector<double> x(400), y(400);
  std::vector<std::string> c(400);
  const char* cats[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 400; ++i) {
    x[static_cast<std::size_t>(i)] = i % 11 == 0 ? kNa : g(rng);
    y[static_cast<std::size_t>(i)] = g(rng) * 2;
    c[static_cast<std::size_t>(i)] = cats[(i * 7) % 4];
  }
  const Table all({Numeric("x", x), Numeric("y", y), Categorical("c", c)});
  const std::string spec =
      "impute(median) | clip(iqr=1.5) | standardize | minmax(y) | onehot(c, max_categories=3)";
  auto single = Pipeline::FromSpec(spec);
  auto self = MakeSelfCommunicator();
  single.Fit(all, {}, *self);
  MatrixF expect;
  single.Transform(all, &expect);
  for (int world : {2, 3, 8}) {
    std::vector<Pipeline> fitted(static_cast<std::size_t>(world));
    RunOnThreadRanks(world, [&](Communicator& comm) {
      const std::int64_t b = 400 * comm.rank() / world, e = 400 * (comm.rank() + 1) / world;
      auto p = Pipeline::FromSpec(spec);
      p.Fit(all.Slice(b, e - b), {}, comm);
      fitted[static_cast<std::size_t>(comm.rank())] = std::move(p);
    });
    for (const auto& p : fitted) {
      EXPECT_EQ(p.output_names(), single.output_names());
      MatrixF got;
      p.Transform(all, &got);
      // Sketch-based steps (median, IQR) are exact below the sketch size, moments agree to
      // rounding, categories exactly.
      for (std::int64_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got.data()[i], expect.data()[i], 1e-5) << "world " << world << " at " << i;
      }
    }
  }
}

// 400 rows with missing numbers and categories, for the chunked fits below.
Table MixedTable() {
  std::mt19937 rng(5);
  std::normal_distribution<double> g(10, 3);
  std::vector<double> x(400), y(400), z(400);
  std::vector<std::string> c(400), d(400);
  const char* cats[] = {"a", "b", "c", "d", "e"};
  for (std::size_t i = 0; i < 400; ++i) {
    x[i] = i % 11 == 0 ? kNa : g(rng);
    y[i] = g(rng) * 2;
    z[i] = i % 13 == 0 ? kNa : static_cast<double>(i % 4);
    c[i] = i % 17 == 0 ? "" : cats[(i * 7) % 5];
    d[i] = cats[(i * i) % 3];
  }
  return Table({Numeric("x", x), Numeric("y", y), Numeric("z", z), Categorical("c", c),
                Categorical("d", d)});
}

TEST(Pipeline, ChunkedFitEqualsTheFitOnTheWholeTable) {
  const Table all = MixedTable();
  const std::string spec =
      "impute(median, x) | impute(most_frequent, z) | impute(most_frequent) | clip(iqr=1.5) | "
      "standardize(x) | minmax(y) | quantile_bins(z, bins=3) | onehot(c, max_categories=3) | "
      "ordinal(d) | expr(xy = x * y) | poly(degree=2, x, y) | drop(y)";
  auto self = MakeSelfCommunicator();
  auto whole = Pipeline::FromSpec(spec);
  whole.Fit(all, {}, *self);
  MatrixF expect;
  whole.Transform(all, &expect);
  for (std::int64_t chunk_rows : {1, 7, 64, 400, 1000}) {
    auto chunked = Pipeline::FromSpec(spec);
    data::TableSlices chunks(all, chunk_rows);
    chunked.Fit(chunks, {}, *self);
    ASSERT_EQ(chunked.output_names(), whole.output_names()) << chunk_rows << " rows a chunk";
    MatrixF got;
    chunked.Transform(all, &got);
    for (std::int64_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got.data()[i], expect.data()[i], 1e-5) << chunk_rows << " rows a chunk, at " << i;
    }
  }
}

TEST(Pipeline, ChunkedFitOnSeveralRanksEqualsTheSingleFit) {
  const Table all = MixedTable();
  const std::string spec = "impute(median) | impute(most_frequent) | standardize | onehot";
  auto self = MakeSelfCommunicator();
  auto single = Pipeline::FromSpec(spec);
  single.Fit(all, {}, *self);
  MatrixF expect;
  single.Transform(all, &expect);
  std::vector<Pipeline> fitted(3);
  RunOnThreadRanks(3, [&](Communicator& comm) {
    const std::int64_t b = 400 * comm.rank() / 3, e = 400 * (comm.rank() + 1) / 3;
    const Table shard = all.Slice(b, e - b);
    data::TableSlices chunks(shard, 50);
    auto p = Pipeline::FromSpec(spec);
    p.Fit(chunks, {}, comm);
    fitted[static_cast<std::size_t>(comm.rank())] = std::move(p);
  });
  for (const auto& p : fitted) {
    MatrixF got;
    p.Transform(all, &got);
    ASSERT_EQ(got.size(), expect.size());
    for (std::int64_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got.data()[i], expect.data()[i], 1e-5);
  }
}

TEST(Pipeline, AChunkedFitThatFailsNamesTheStepAndLeavesThePipelineUnfitted) {
  const Table all = MixedTable();
  auto p = Pipeline::FromSpec("impute(median) | standardize(c)");
  auto self = MakeSelfCommunicator();
  data::TableSlices chunks(all, 64);
  try {
    p.Fit(chunks, {}, *self);
    FAIL() << "fitted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("standardize(c)"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(p.fitted());
}

TEST(Pipeline, UnknownCategoryPolicy) {
  auto comm = MakeSelfCommunicator();
  const Table train({Categorical("c", {"x", "y", "x"})});
  const Table serve({Categorical("c", {"x", "z"})});
  auto strict = Pipeline::FromSpec("onehot(c)");
  strict.Fit(train, {}, *comm);
  MatrixF out;
  try {
    strict.Transform(serve, &out);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(m.find("row 1"), std::string::npos) << m;
    EXPECT_NE(m.find("'z'"), std::string::npos) << m;
    EXPECT_NE(m.find("onehot(c)"), std::string::npos) << m;
  }
  auto lenient = Pipeline::FromSpec("onehot(c, unknown=ignore)");
  lenient.Fit(train, {}, *comm);
  lenient.Transform(serve, &out);
  EXPECT_EQ(out(1, 0) + out(1, 1), 0.0f);
  auto other = Pipeline::FromSpec("onehot(c, unknown=other)");
  other.Fit(train, {}, *comm);
  other.Transform(serve, &out);
  EXPECT_EQ(other.output_names().back(), "c=__other__");
  EXPECT_EQ(out(1, 2), 1.0f);
}

TEST(Pipeline, StringBatchesFromRequestsMatchTables) {
  auto comm = MakeSelfCommunicator();
  const Table t = Penguinish();
  auto p = Pipeline::FromSpec("impute(mean) | impute(most_frequent, sex) | onehot(species,sex)");
  p.Fit(t, NoLabel(), *comm);
  // The same rows as a request would carry them: a row-major float matrix for the numbers and
  // string views for the categories.
  const float nums[] = {3750, 181, NAN, 195};
  const std::string_view species[] = {"Adelie", "Adelie"};
  const std::string_view sex[] = {"male", ""};
  const std::uint8_t sex_missing[] = {0, 1};
  RawBatch batch;
  batch.rows = 2;
  batch.columns = {RawColumn{RawColumn::Kind::kFloat32, nums, 2, nullptr, nullptr},
                   RawColumn{RawColumn::Kind::kFloat32, nums + 1, 2, nullptr, nullptr},
                   RawColumn{RawColumn::Kind::kStrings, species, 1, nullptr, nullptr},
                   RawColumn{RawColumn::Kind::kStrings, sex, 1, sex_missing, nullptr}};
  MatrixF from_request(2, p.num_outputs()), from_table;
  TransformScratch scratch;
  p.TransformInto(batch, from_request.view(), scratch);
  p.Transform(t, &from_table);
  for (std::int64_t j = 0; j < p.num_outputs(); ++j) {
    EXPECT_EQ(from_request(0, j), from_table(0, j)) << j;
    EXPECT_EQ(from_request(1, j), from_table(2, j)) << j;
  }
}

TEST(Pipeline, ErrorsNameStepAndColumnAndLeaveThePipelineUnfitted) {
  auto comm = MakeSelfCommunicator();
  const Table t = Penguinish();
  auto expect_error = [&](const std::string& spec, const std::string& needle) {
    auto p = Pipeline::FromSpec(spec);
    try {
      p.Fit(t, NoLabel(), *comm);
      ADD_FAILURE() << spec << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << spec << ": " << e.what();
    }
    EXPECT_FALSE(p.fitted()) << spec;
  };
  expect_error("standardize(species)", "column 'species' is categorical");
  expect_error("impute(mean) | standardize(height)", "no column 'height'");
  expect_error("onehot(mass)", "column 'mass' is numeric");
  expect_error("impute(mean)", "categorical column 'species' reaches the end");
  expect_error("impute(mean) | drop(species, sex) | expr(r = mass / wings)",
               "unknown column 'wings'");
  EXPECT_THROW(Pipeline::FromSpec("frobnicate(x)"), Error);
  EXPECT_THROW(Pipeline::FromSpec("expr(r = (a + b)"), Error);
  EXPECT_THROW(Pipeline::FromSpec("bucketize(x, boundaries=3,1)"), Error);
  EXPECT_THROW(Pipeline::FromSpec("standardize(x"), Error);
  // A fitted pipeline that fails to refit keeps its previous state.
  auto p = Pipeline::FromSpec("impute(mean) | drop(species, sex)");
  p.Fit(t, NoLabel(), *comm);
  const auto outputs = p.output_names();
  const Table broken({Numeric("mass", {kNa, kNa}), Numeric("flipper", {1, 2}),
                      Categorical("species", {"a", "b"}), Categorical("sex", {"m", "f"})});
  EXPECT_THROW(p.Fit(broken, {}, *comm), Error);
  EXPECT_TRUE(p.fitted());
  EXPECT_EQ(p.output_names(), outputs);
}

TEST(Pipeline, MissingValueReachingTheOutputIsAnError) {
  auto comm = MakeSelfCommunicator();
  const Table t({Numeric("a", {1, 2, 3})});
  auto p = Pipeline::FromSpec("standardize");
  p.Fit(t, {}, *comm);
  MatrixF out;
  try {
    p.Transform(Table({Numeric("a", {1, kNa})}), &out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1: feature 'a' is missing"), std::string::npos)
        << e.what();
  }
}

TEST(Pipeline, SpecFileSyntaxWithCommentsAndNewlines) {
  auto p = Pipeline::FromSpec(
      "# cleaning\nimpute(median)\nclip(q=0.01,0.99)  # tails\n\nstandardize | drop(species, sex)");
  auto comm = MakeSelfCommunicator();
  p.Fit(Penguinish(), NoLabel(), *comm);
  EXPECT_EQ(p.num_outputs(), 2);
}

}  // namespace
}  // namespace escala::features
