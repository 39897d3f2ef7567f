#include "escala/features/summary.h"

#include <cmath>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/features/cleaning.h"

namespace escala::features {
namespace {

data::Column Num(const std::string& name, std::vector<double> v) {
  data::Column c(name, data::DataType::kFloat64, static_cast<std::int64_t>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) {
      c.SetMissing(static_cast<std::int64_t>(i));
    } else {
      c.mutable_f64()[i] = v[i];
    }
  }
  return c;
}

data::Column Cat(const std::string& name, const std::vector<std::string>& v) {
  data::Column c(name, data::DataType::kCategorical, static_cast<std::int64_t>(v.size()));
  auto& dict = c.mutable_dictionary();
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto it = std::find(dict.begin(), dict.end(), v[i]);
    if (it == dict.end()) it = dict.insert(dict.end(), v[i]);
    c.mutable_codes()[i] = static_cast<std::int32_t>(it - dict.begin());
  }
  return c;
}

const double kNa = std::nan("");

TEST(Cleaning, DuplicatesAreFoundExactlyAndTheSameAcrossWorkers) {
  const data::Table t(
      {Num("x", {1, 2, 1, kNa, kNa, 2, 3, 1}), Cat("c", {"a", "b", "a", "z", "z", "c", "a", "a"})});
  auto comm = MakeSelfCommunicator();
  const auto d = FindDuplicates(t, *comm);
  EXPECT_EQ(d.duplicate_rows, (std::vector<std::int64_t>{2, 4, 7}));  // missing == missing
  std::int64_t dropped = 0;
  const auto clean = DropDuplicates(t, *comm, &dropped);
  EXPECT_EQ(dropped, 3);
  EXPECT_EQ(clean.num_rows(), 5);
  for (int world : {2, 3}) {
    RunOnThreadRanks(world, [&](Communicator& c) {
      const std::int64_t b = 8 * c.rank() / world, e = 8 * (c.rank() + 1) / world;
      const auto r = FindDuplicates(t.Slice(b, e - b), c);
      EXPECT_EQ(r.global_duplicates, 3);
      for (auto row : r.duplicate_rows) {
        const std::int64_t global = row + b;
        EXPECT_TRUE(global == 2 || global == 4 || global == 7) << global;
      }
    });
  }
}

TEST(Cleaning, OutliersByIqrAreCountedClippedOrDropped) {
  std::vector<double> v;
  for (int i = 0; i < 100; ++i) v.push_back(i % 10);
  v.push_back(1000);
  v.push_back(-500);
  const data::Table t({Num("x", v)});
  auto comm = MakeSelfCommunicator();
  const auto rule = OutlierRule::Parse("iqr=1.5");
  const auto found = FindOutliers(t, {}, rule, *comm);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].above, 1);
  EXPECT_EQ(found[0].below, 1);
  std::vector<OutlierBounds> b;
  const auto clipped = HandleOutliers(t, {}, rule, OutlierAction::kClip, *comm, &b);
  EXPECT_EQ(clipped.num_rows(), 102);
  EXPECT_DOUBLE_EQ(clipped.column("x").GetDouble(100), b[0].hi);
  const auto dropped = HandleOutliers(t, {}, rule, OutlierAction::kDrop, *comm);
  EXPECT_EQ(dropped.num_rows(), 100);
  EXPECT_THROW(OutlierRule::Parse("mad=3"), Error);
  EXPECT_THROW(OutlierRule::Parse("q=0.9,0.1"), Error);
}

TEST(Summary, DescribesColumnsCorrelationsAndDuplicates) {
  const data::Table t({Num("x", {1, 2, 3, 4, 5, kNa}), Num("y", {2, 4, 6, 8, 10, 12}),
                       Num("z", {5, 4, 3, 2, 1, 0}), Cat("label", {"p", "n", "p", "n", "p", "p"})});
  auto comm = MakeSelfCommunicator();
  SummaryOptions o;
  o.label = "label";
  const auto s = Summarize(t, o, *comm);
  EXPECT_EQ(s.rows, 6);
  EXPECT_EQ(s.duplicate_rows, 0);
  const auto& x = s.columns[0];
  EXPECT_EQ(x.count, 5);
  EXPECT_EQ(x.missing, 1);
  EXPECT_DOUBLE_EQ(x.mean, 3);
  EXPECT_DOUBLE_EQ(x.median, 3);
  EXPECT_DOUBLE_EQ(x.q25, 2);
  EXPECT_NEAR(x.stddev, std::sqrt(2.5), 1e-12);
  EXPECT_EQ(s.columns[3].top[0].key, "p");
  EXPECT_EQ(s.columns[3].top[0].count, 4);
  ASSERT_EQ(s.numeric, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_NEAR(s.correlation[1], 1.0, 1e-9);                    // x, y over rows where both exist
  EXPECT_NEAR(s.correlation[5], -1.0, 1e-9);                   // y, z
  EXPECT_TRUE(std::isfinite(s.columns[1].label_correlation));  // two-class label as 0/1
  EXPECT_FALSE(s.top_pairs.empty());
  const std::string text = FormatText(s);
  EXPECT_NE(text.find("6 rows, 4 columns, 0 duplicate rows"), std::string::npos) << text;
  const std::string html = FormatHtml(s, "report");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained
  EXPECT_NE(FormatJson(s).find("\"correlation\""), std::string::npos);
  // The same statistics from three workers.
  RunOnThreadRanks(3, [&](Communicator& c) {
    const auto part = Summarize(t.Slice(2 * c.rank(), 2), o, c);
    EXPECT_EQ(part.rows, 6);
    EXPECT_DOUBLE_EQ(part.columns[0].mean, 3);
    EXPECT_NEAR(part.correlation[5], -1.0, 1e-9);
    EXPECT_EQ(part.columns[3].top[0].count, 4);
  });
}

TEST(Summary, OneRankQuantilesAreExactBeyondTheSketch) {
  // More values than the sketch holds (k = 2048), shuffled, with missing values: one rank selects
  // exact order statistics, interpolated at q (n - 1) as numpy does.
  std::vector<double> v;
  for (int i = 0; i <= 10000; ++i) v.push_back((i * 7919) % 10001);
  v.push_back(kNa);
  std::vector<double> w;
  for (int i = 10; i >= 1; --i) w.push_back(i);
  for (int i = 0; i < 10; ++i) w.push_back(kNa);
  w.resize(v.size(), kNa);
  const data::Table t({Num("x", v), Num("w", w)});
  auto comm = MakeSelfCommunicator();
  SummaryOptions o;
  o.duplicates = false;
  const auto s = Summarize(t, o, *comm);
  EXPECT_TRUE(s.columns[0].quantiles_exact);
  EXPECT_EQ(s.columns[0].q25, 2500);
  EXPECT_EQ(s.columns[0].median, 5000);
  EXPECT_EQ(s.columns[0].q75, 7500);
  EXPECT_DOUBLE_EQ(s.columns[1].q25, 3.25);  // positions 2.25, 4.5, 6.75 of 1..10
  EXPECT_DOUBLE_EQ(s.columns[1].median, 5.5);
  EXPECT_DOUBLE_EQ(s.columns[1].q75, 7.75);
  // Several ranks merge sketches instead: within the sketch's rank bound.
  RunOnThreadRanks(2, [&](Communicator& c) {
    const auto half = static_cast<std::int64_t>(v.size() / 2);
    const auto part =
        Summarize(t.Slice(c.rank() * half, c.rank() == 0 ? half : t.num_rows() - half), o, c);
    EXPECT_FALSE(part.columns[0].quantiles_exact);
    EXPECT_NEAR(part.columns[0].median, 5000, 10001 * 0.01);
  });
}

// A numeric column of many repeated codes (more distinct values than are counted on the way)
// still shows its most frequent values; a continuous column shows none.
TEST(Summary, RepeatedHighCardinalityCodesShowTheirTopValues) {
  std::vector<double> codes, continuous;
  for (int i = 0; i < 30000; ++i) {
    codes.push_back(i % 10000);
    continuous.push_back(i * 0.5);
  }
  for (int i = 0; i < 50; ++i) {
    codes.push_back(7);
    continuous.push_back(-1 - i);
  }
  const data::Table t({Num("code", codes), Num("x", continuous)});
  auto comm = MakeSelfCommunicator();
  SummaryOptions o;
  o.top_k = 2;
  const auto s = Summarize(t, o, *comm);
  ASSERT_EQ(s.columns[0].top.size(), 2u);
  EXPECT_EQ(s.columns[0].top[0].key, "7");
  EXPECT_EQ(s.columns[0].top[0].count, 53);
  EXPECT_EQ(s.columns[0].top[1].count, 3);
  EXPECT_TRUE(s.columns[1].top.empty());
}

TEST(Summary, StatsLimitsAreCheckedBeforeAllocating) {
  const data::Table t({Num("x", {1, 2})});
  auto comm = MakeSelfCommunicator();
  for (const int bins : {0, -5, 100000000}) {
    SummaryOptions o;
    o.histogram_bins = bins;
    EXPECT_THROW(Summarize(t, o, *comm), Error) << bins;
  }
  SummaryOptions o;
  o.top_k = -1;
  EXPECT_THROW(Summarize(t, o, *comm), Error);
}

TEST(Summary, UnknownLabelIsAnError) {
  const data::Table t({Num("x", {1, 2})});
  auto comm = MakeSelfCommunicator();
  SummaryOptions o;
  o.label = "nope";
  EXPECT_THROW(Summarize(t, o, *comm), Error);
}

}  // namespace
}  // namespace escala::features
