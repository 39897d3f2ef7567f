// Payload handling of received frames (split, misaligned memory) and the link topology.
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "distributed/grpc_ring.h"
#include "distributed/transport.h"
#include "escala/distributed/connect.h"

namespace escala::distributed::internal {
namespace {

template <typename T>
void CheckSplitReduce(ReduceOp op) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const std::size_t n = rng() % 300;
    std::vector<T> acc(n), in(n), expect(n);
    for (std::size_t i = 0; i < n; ++i) {
      acc[i] = static_cast<T>(static_cast<int>(rng() % 200) - 100);
      in[i] = static_cast<T>(static_cast<int>(rng() % 200) - 100);
    }
    expect = acc;
    ReduceInto(expect.data(), in.data(), n, kDTypeOf<T>, op);
    // Copy the input to an odd address and cut it into pieces at arbitrary byte boundaries.
    std::vector<std::byte> raw(n * sizeof(T) + 3);
    std::memcpy(raw.data() + 1, in.data(), n * sizeof(T));
    std::vector<std::span<const std::byte>> spans;
    std::size_t at = 1;
    const std::size_t end = 1 + n * sizeof(T);
    while (at < end) {
      const std::size_t len = std::min<std::size_t>(end - at, 1 + rng() % 13);
      spans.emplace_back(raw.data() + at, len);
      at += len;
    }
    InFrame f = InFrame::View(FrameMeta{}, spans);
    ASSERT_EQ(f.payload_size(), n * sizeof(T));
    f.ReduceInto(acc.data(), kDTypeOf<T>, op);
    ASSERT_EQ(acc, expect) << "trial " << trial << " op " << ReduceOpName(op);
    std::vector<T> copy(n);
    f.CopyTo(copy.data());
    ASSERT_EQ(copy, in);
  }
}

TEST(InFrame, ReduceOverSplitMisalignedPayloadMatchesCore) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    CheckSplitReduce<float>(op);
    CheckSplitReduce<double>(op);
    CheckSplitReduce<std::int64_t>(op);
    CheckSplitReduce<std::int32_t>(op);
    CheckSplitReduce<std::uint8_t>(op);
  }
}

TEST(LinkedPeers, SymmetricAndCoversEveryAlgorithm) {
  for (int world = 1; world <= 17; ++world) {
    std::vector<std::set<int>> links(static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      auto peers = LinkedPeers(r, world);
      links[static_cast<std::size_t>(r)] = {peers.begin(), peers.end()};
      EXPECT_EQ(links[static_cast<std::size_t>(r)].count(r), 0u);
    }
    int p = 1;
    while (p * 2 <= world) p *= 2;
    for (int r = 0; r < world; ++r) {
      const auto& mine = links[static_cast<std::size_t>(r)];
      for (int q : mine)
        EXPECT_EQ(links[static_cast<std::size_t>(q)].count(r), 1u) << r << "-" << q;
      if (world == 1) continue;
      EXPECT_EQ(mine.count((r + 1) % world), 1u);  // ring
      for (int d = 1; d < world; d <<= 1) {        // barrier, broadcast trees
        EXPECT_EQ(mine.count((r + d) % world), 1u);
        EXPECT_EQ(mine.count((r - d % world + world) % world), 1u);
      }
      if (r < p) {
        for (int m = 1; m < p; m <<= 1) EXPECT_EQ(mine.count(r ^ m), 1u);  // recursive doubling
      } else {
        EXPECT_EQ(mine.count(r - p), 1u);  // fold
      }
    }
  }
}

TEST(RelayedFailure, KeepsMismatchAndAbortsEverythingElse) {
  EXPECT_EQ(RelayedFailure({2, ErrorCode::kInvalidArgument, "x"}).code(),
            ErrorCode::kInvalidArgument);
  const Status s = RelayedFailure({2, ErrorCode::kDeadlineExceeded, "slow"});
  EXPECT_EQ(s.code(), ErrorCode::kAborted);
  EXPECT_EQ(s.message(), "rank 2 failed: slow");
}

TEST(Options, ParseDurationAndByteSize) {
  using std::chrono::milliseconds;
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("30s"), milliseconds(30000));
  EXPECT_EQ(ParseDuration("2"), milliseconds(2000));
  EXPECT_EQ(ParseDuration("1.5m"), milliseconds(90000));
  EXPECT_EQ(ParseDuration("1h"), milliseconds(3600000));
  for (const char* bad : {"", "s", "10 parsecs", "-5s", "0ms", "1e99h"}) {
    EXPECT_THROW(ParseDuration(bad), Error) << bad;
  }
  EXPECT_EQ(ParseByteSize("65536"), 65536u);
  EXPECT_EQ(ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(ParseByteSize("4MiB"), 4u << 20);
  EXPECT_EQ(ParseByteSize("1G"), 1u << 30);
  for (const char* bad : {"", "MiB", "12 apples", "0"})
    EXPECT_THROW(ParseByteSize(bad), Error) << bad;
}

}  // namespace
}  // namespace escala::distributed::internal
