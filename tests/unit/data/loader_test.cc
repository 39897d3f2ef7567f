#include "escala/data/loader.h"

#include <algorithm>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/data/split.h"
#include "test_util/counting_new.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

struct Data {
  MatrixF x;
  std::vector<float> y;
};

// Row i holds (i, -i, i * 0.5) and label i % 2.
Data MakeData(std::int64_t n) {
  Data d;
  d.x.Resize(n, 3);
  for (std::int64_t i = 0; i < n; ++i) {
    d.x(i, 0) = static_cast<float>(i);
    d.x(i, 1) = -static_cast<float>(i);
    d.x(i, 2) = static_cast<float>(i) * 0.5f;
    d.y.push_back(static_cast<float>(i % 2));
  }
  return d;
}

std::vector<std::vector<std::int64_t>> Epoch(Loader& l, std::int64_t epoch) {
  l.StartEpoch(epoch);
  std::vector<std::vector<std::int64_t>> out;
  Batch b;
  while (l.Next(&b)) out.emplace_back(b.rows.begin(), b.rows.end());
  return out;
}

TEST(Loader, EveryRowOncePerEpochWithMatchingFeaturesAndLabels) {
  const Data d = MakeData(1003);
  LoaderOptions o;
  o.batch_size = 64;
  o.seed = 5;
  Loader l(d.x.view(), d.y, o);
  EXPECT_EQ(l.num_rows(), 1003);
  EXPECT_EQ(l.batches_per_epoch(), 16);
  Batch b;
  std::vector<std::int64_t> all;
  std::int64_t batches = 0;
  while (l.Next(&b)) {  // epoch 0 without StartEpoch
    EXPECT_EQ(b.epoch, 0);
    EXPECT_EQ(b.index, batches++);
    EXPECT_EQ(b.size(), batches == 16 ? 1003 - 15 * 64 : 64);
    for (std::int64_t i = 0; i < b.size(); ++i) {
      const std::int64_t r = b.rows[static_cast<std::size_t>(i)];
      ASSERT_EQ(b.features(i, 0), static_cast<float>(r));
      ASSERT_EQ(b.features(i, 2), static_cast<float>(r) * 0.5f);
      ASSERT_EQ(b.labels[static_cast<std::size_t>(i)], static_cast<float>(r % 2));
      ASSERT_EQ(b.row_ids[static_cast<std::size_t>(i)], static_cast<std::uint64_t>(r));
      all.push_back(r);
    }
  }
  EXPECT_FALSE(l.Next(&b));  // stays at the end
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(1003);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
}

TEST(Loader, ShuffleIsDeterministicInSeedAndEpochOnly) {
  const Data d = MakeData(500);
  LoaderOptions o;
  o.batch_size = 32;
  o.seed = 1;
  Loader a(d.x.view(), d.y, o);
  LoaderOptions sync = o;
  sync.prefetch = 0;
  Loader b(d.x.view(), d.y, sync);
  LoaderOptions deep = o;
  deep.prefetch = 7;
  Loader c(d.x.view(), d.y, deep);
  const auto a1 = Epoch(a, 1), a0 = Epoch(a, 0);
  EXPECT_EQ(Epoch(b, 0), a0);
  EXPECT_EQ(Epoch(c, 1), a1);
  EXPECT_EQ(Epoch(c, 0), a0);
  EXPECT_NE(a0, a1);
  LoaderOptions other = o;
  other.seed = 2;
  Loader e(d.x.view(), d.y, other);
  EXPECT_NE(Epoch(e, 0), a0);
  LoaderOptions plain = o;
  plain.shuffle = false;
  Loader f(d.x.view(), d.y, plain);
  const auto in_order = Epoch(f, 3);
  EXPECT_EQ(in_order[0][0], 0);
  EXPECT_EQ(in_order[1][0], 32);
}

TEST(Loader, DropLastAndSampling) {
  const Data d = MakeData(1003);
  LoaderOptions o;
  o.batch_size = 64;
  o.drop_last = true;
  Loader l(d.x.view(), d.y, o);
  const auto batches = Epoch(l, 0);
  EXPECT_EQ(batches.size(), 15u);
  for (const auto& b : batches) EXPECT_EQ(b.size(), 64u);

  LoaderOptions s;
  s.fraction = 0.25;
  s.seed = 9;
  Loader l1(d.x.view(), d.y, s);
  Loader l2(d.x.view(), d.y, s);
  EXPECT_NEAR(static_cast<double>(l1.num_rows()) / 1003, 0.25, 0.05);
  std::set<std::int64_t> r1, r2;
  for (const auto& b : Epoch(l1, 0)) r1.insert(b.begin(), b.end());
  for (const auto& b : Epoch(l2, 4)) r2.insert(b.begin(), b.end());
  EXPECT_EQ(r1, r2);  // the same rows every epoch and every run
  // Sampling follows row identities when given.
  std::vector<std::uint64_t> ids(1003);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = MakeRowId(1, i * 100);
  Loader l3(d.x.view(), d.y, s, ids);
  std::set<std::int64_t> r3;
  for (const auto& b : Epoch(l3, 0)) r3.insert(b.begin(), b.end());
  for (const auto r : r3) EXPECT_TRUE(InSample(ids[static_cast<std::size_t>(r)], 0.25, 9));
}

// The union over ranks of each global batch is the single-worker batch: data-parallel training
// sees the same global batches whatever the worker count.
TEST(Loader, RankSlicesComposeTheGlobalBatch) {
  const Data d = MakeData(777);
  for (const int world : {2, 3, 5}) {
    LoaderOptions o;
    o.batch_size = 50;
    o.seed = 3;
    Loader single(d.x.view(), d.y, o);
    const auto reference = Epoch(single, 2);
    std::vector<std::vector<std::vector<std::int64_t>>> per_rank;
    for (int r = 0; r < world; ++r) {
      LoaderOptions ro = o;
      ro.shard = {r, world};
      Loader l(d.x.view(), d.y, ro);
      EXPECT_EQ(l.batches_per_epoch(), single.batches_per_epoch());
      per_rank.push_back(Epoch(l, 2));
    }
    for (std::size_t b = 0; b < reference.size(); ++b) {
      std::vector<std::int64_t> joined;
      std::size_t largest = 0, smallest = SIZE_MAX;
      for (int r = 0; r < world; ++r) {
        const auto& part = per_rank[static_cast<std::size_t>(r)][b];
        joined.insert(joined.end(), part.begin(), part.end());
        largest = std::max(largest, part.size());
        smallest = std::min(smallest, part.size());
      }
      EXPECT_EQ(joined, reference[b]) << "world " << world << " batch " << b;
      EXPECT_LE(largest - smallest, 1u);
    }
  }
}

TEST(Loader, NoAllocationPerBatchAfterWarmup) {
  const Data d = MakeData(20000);
  for (const int prefetch : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 128;
    o.prefetch = prefetch;
    Loader l(d.x.view(), d.y, o);
    Batch b;
    l.StartEpoch(0);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.Next(&b));  // warm-up
    testing::StartCountingAllocations();
    std::int64_t seen = 0;
    float sum = 0;
    while (l.Next(&b)) {
      seen += b.size();
      sum += b.features(0, 0);
    }
    l.StartEpoch(1);
    while (l.Next(&b)) seen += b.size();
    EXPECT_EQ(testing::StopCountingAllocations(), 0) << "prefetch " << prefetch;
    EXPECT_EQ(seen, 20000 - 3 * 128 + 20000);
    EXPECT_GT(sum, 0);
  }
}

TEST(Loader, RejectsBadOptions) {
  const Data d = MakeData(10);
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(Loader(d.x.view(), d.y, o), Error);
  o = {};
  o.fraction = 0;
  EXPECT_THROW(Loader(d.x.view(), d.y, o), Error);
  o = {};
  o.shard = {2, 2};
  EXPECT_THROW(Loader(d.x.view(), d.y, o), Error);
  std::vector<float> short_labels(3);
  EXPECT_THROW(Loader(d.x.view(), short_labels, {}), Error);
}

// A dataset of three CSV files where label = f0 mod 3.
Dataset ThreeFiles(const testing::TempDir& dir) {
  for (int k = 0; k < 3; ++k) {
    std::string s = "f0,f1,label\n";
    for (int i = k * 1700; i < (k + 1) * 1700; ++i) s += fmt::format("{},{},{}\n", i, i * 2, i % 3);
    testing::WriteFile(dir.File(fmt::format("p{}.csv", k)), s);
  }
  return Dataset::Open(dir.File("p*.csv"));
}

std::vector<std::int64_t> StreamEpoch(StreamingLoader& l, std::int64_t epoch, bool check) {
  l.StartEpoch(epoch);
  std::vector<std::int64_t> out;
  Batch b;
  while (l.Next(&b)) {
    for (std::int64_t i = 0; i < b.size(); ++i) {
      const auto v = static_cast<std::int64_t>(b.features(i, 0));
      if (check) {
        EXPECT_EQ(b.features(i, 1), static_cast<float>(2 * v));
        EXPECT_EQ(b.labels[static_cast<std::size_t>(i)], static_cast<float>(v % 3));
      }
      out.push_back(v);
    }
  }
  return out;
}

TEST(StreamingLoader, ShuffledEpochsCoverEveryRowOnceDeterministically) {
  testing::TempDir dir;
  const Dataset ds = ThreeFiles(dir);
  DenseSpec spec;
  spec.label = "label";
  LoaderOptions o;
  o.batch_size = 100;
  o.shuffle_buffer = 500;
  o.seed = 4;
  StreamOptions so;
  so.block_bytes = 4096;
  StreamingLoader a(ds, {}, spec, o, so);
  StreamingLoader b(ds, {}, spec, o, so);
  const auto e0 = StreamEpoch(a, 0, true);
  const auto e1 = StreamEpoch(a, 1, true);
  EXPECT_EQ(StreamEpoch(b, 0, false), e0);
  EXPECT_NE(e0, e1);
  std::vector<std::int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> expected(5100);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected);
  // Shuffled: far from file order.
  std::int64_t in_place = 0;
  for (std::size_t i = 0; i < e0.size(); ++i) in_place += e0[i] == static_cast<std::int64_t>(i);
  EXPECT_LT(in_place, 100);

  LoaderOptions plain = o;
  plain.shuffle = false;
  plain.drop_last = true;
  plain.prefetch = 0;
  StreamingLoader c(ds, {}, spec, plain, so);
  const auto ordered = StreamEpoch(c, 0, true);
  EXPECT_EQ(ordered.size(), 5100u);
  EXPECT_TRUE(std::is_sorted(ordered.begin(), ordered.end()));
  // Shards of the dataset partition the rows.
  std::set<std::int64_t> all;
  for (int r = 0; r < 2; ++r) {
    StreamingLoader s(ds, {r, 2}, spec, o, so);
    for (const auto v : StreamEpoch(s, 0, true)) EXPECT_TRUE(all.insert(v).second);
  }
  EXPECT_EQ(all.size(), 5100u);
}

}  // namespace
}  // namespace escala::data
