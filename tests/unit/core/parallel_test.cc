#include "escala/core/parallel.h"

#include <atomic>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"

namespace escala {
namespace {

TEST(Parallel, ForCoversEveryIndexOnce) {
  std::vector<std::atomic<int>> hits(100'003);
  ParallelFor(hits.size(), 0, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  ParallelFor(0, 0, [](std::size_t, std::size_t) { FAIL(); });
}

TEST(Parallel, StaticPartitionIsDeterministic) {
  std::vector<std::pair<std::size_t, std::size_t>> parts(7);
  ParallelForStatic(100, 7, [&](std::size_t p, std::size_t b, std::size_t e) {
    parts[p] = {b, e};
  });
  std::size_t expect = 0;
  for (const auto& [b, e] : parts) {
    EXPECT_EQ(b, expect);
    expect = e;
  }
  EXPECT_EQ(expect, 100u);
}

TEST(Parallel, ExceptionsPropagate) {
  EXPECT_THROW(ParallelFor(1000, 10,
                           [](std::size_t b, std::size_t) {
                             if (b >= 500) Throw(ErrorCode::kInvalidArgument, "bad row {}", b);
                           }),
               Error);
}

TEST(Parallel, ThreadCountIsConfigurable) {
  const int before = NumThreads();
  EXPECT_EQ(SetNumThreads(1), 1);
  EXPECT_EQ(NumThreads(), 1);
  EXPECT_THROW(SetNumThreads(-2), Error);
  SetNumThreads(0);
  EXPECT_GE(NumThreads(), 1);
  SetNumThreads(before);
}

TEST(Parallel, ArenaRunsWork) {
  ThreadArena arena(2);
  std::atomic<long> sum{0};
  arena.Run([&] {
    ParallelFor(1000, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) sum += static_cast<long>(i);
    });
  });
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
}

}  // namespace
}  // namespace escala
