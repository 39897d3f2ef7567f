// The gRPC ring communicator against the same contract as the in-process one
// (tests/unit/core/communicator_test.cc): ranks are threads here, each with its own data-plane
// server, links and coordinator session over 127.0.0.1. The process-based sweep lives in
// tests/integration/distributed.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "unit/distributed/local_group.h"

namespace escala::distributed {
namespace {

using std::chrono::milliseconds;
using testing::FastConnectOptions;
using testing::LocalGroup;
using testing::LocalGroupOptions;
using testing::RunOnGrpcRanks;

LocalGroupOptions Fast() {
  LocalGroupOptions o;
  o.connect = FastConnectOptions();
  return o;
}

template <typename T>
T Value(int rank, std::size_t i) {
  return static_cast<T>(
      static_cast<std::int64_t>((i * 7 + static_cast<std::size_t>(rank) * 13) % 101) - 50);
}

template <typename T>
std::vector<T> Expected(int world, std::size_t count, ReduceOp op) {
  std::vector<T> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    T acc = Value<T>(0, i);
    for (int r = 1; r < world; ++r) {
      const T v = Value<T>(r, i);
      switch (op) {
        case ReduceOp::kSum:
        case ReduceOp::kAvg:
          acc += v;
          break;
        case ReduceOp::kMax:
          acc = std::max(acc, v);
          break;
        case ReduceOp::kMin:
          acc = std::min(acc, v);
          break;
      }
    }
    if (op == ReduceOp::kAvg) acc /= static_cast<T>(world);
    out[i] = acc;
  }
  return out;
}

// Every op of every dtype for one element count, on one connected group; results must match
// the serial reference and be bitwise identical across ranks.
template <typename T>
void CheckAllReduce(Communicator& comm, std::size_t count, std::vector<std::vector<T>>& results) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    const std::vector<T> expected = Expected<T>(comm.size(), count, op);
    std::vector<T> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = Value<T>(comm.rank(), i);
    comm.AllReduce(std::span<T>(data), op);
    for (std::size_t i = 0; i < count; ++i) {
      if constexpr (std::is_floating_point_v<T>) {
        ASSERT_NEAR(data[i], expected[i], 1e-5 * (1 + std::fabs(expected[i])))
            << "rank " << comm.rank() << " index " << i << " op " << ReduceOpName(op);
      } else {
        ASSERT_EQ(data[i], expected[i]) << "rank " << comm.rank() << " index " << i;
      }
    }
    results[static_cast<std::size_t>(comm.rank())] = data;
  }
}

class GrpcRingByWorld : public ::testing::TestWithParam<int> {};

TEST_P(GrpcRingByWorld, AllReduceMatchesSerialReferenceAcrossCountsAndDtypes) {
  const int world = GetParam();
  // Counts: empty, one, below the small-message threshold (recursive doubling), a prime that
  // leaves uneven ring segments, and several chunks per segment.
  const std::vector<std::size_t> counts = {0, 1, 7, 4099, 65537};
  std::vector<std::vector<float>> f32(static_cast<std::size_t>(world));
  std::vector<std::vector<double>> f64(static_cast<std::size_t>(world));
  std::vector<std::vector<std::int64_t>> i64(static_cast<std::size_t>(world));
  LocalGroup group(world, Fast());
  for (std::size_t count : counts) {
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        Communicator& c = group.comm(r);
        CheckAllReduce<float>(c, count, f32);
        CheckAllReduce<double>(c, count, f64);
        CheckAllReduce<std::int64_t>(c, count, i64);
      });
    }
    for (auto& t : threads) t.join();
    for (int r = 1; r < world; ++r) {
      ASSERT_EQ(f32[static_cast<std::size_t>(r)], f32[0]) << "count " << count;
      ASSERT_EQ(f64[static_cast<std::size_t>(r)], f64[0]) << "count " << count;
      ASSERT_EQ(i64[static_cast<std::size_t>(r)], i64[0]) << "count " << count;
    }
  }
}

TEST_P(GrpcRingByWorld, BroadcastFromEveryRoot) {
  const int world = GetParam();
  RunOnGrpcRanks(
      world,
      [&](Communicator& comm) {
        for (int root = 0; root < world; ++root) {
          for (std::size_t n :
               {std::size_t{0}, std::size_t{1}, std::size_t{1001}, std::size_t{10007}}) {
            std::vector<double> data(n, comm.rank() == root ? 0.0 : -1.0);
            if (comm.rank() == root) std::iota(data.begin(), data.end(), root * 10.0);
            comm.Broadcast(std::span<double>(data), root);
            for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(data[i], root * 10.0 + i);
          }
        }
      },
      Fast());
}

TEST_P(GrpcRingByWorld, AllGatherPlacesEachRankAtItsOffset) {
  const int world = GetParam();
  RunOnGrpcRanks(
      world,
      [&](Communicator& comm) {
        for (int n : {0, 5, 3001}) {  // 3001 int64 = 24008 bytes: two chunks per block
          std::vector<std::int64_t> mine(static_cast<std::size_t>(n));
          for (int i = 0; i < n; ++i) mine[static_cast<std::size_t>(i)] = comm.rank() * 100000 + i;
          auto all = comm.AllGather(std::span<const std::int64_t>(mine));
          ASSERT_EQ(all.size(), static_cast<std::size_t>(n * world));
          for (int r = 0; r < world; ++r) {
            for (int i = 0; i < n; ++i) {
              ASSERT_EQ(all[static_cast<std::size_t>(r * n + i)], r * 100000 + i);
            }
          }
        }
      },
      Fast());
}

TEST_P(GrpcRingByWorld, AllGatherVWithVariableEmptyAndMultiChunkContributions) {
  const int world = GetParam();
  RunOnGrpcRanks(
      world,
      [&](Communicator& comm) {
        // Rank r contributes r bytes, and the last rank a block of several chunks.
        const std::size_t n = comm.rank() == world - 1 && world > 1
                                  ? std::size_t{40000}
                                  : static_cast<std::size_t>(comm.rank());
        std::vector<std::byte> mine(n, static_cast<std::byte>(comm.rank()));
        auto all = comm.AllGatherV(mine);
        ASSERT_EQ(all.size(), static_cast<std::size_t>(world));
        for (int r = 0; r < world; ++r) {
          const std::size_t expect =
              r == world - 1 && world > 1 ? std::size_t{40000} : static_cast<std::size_t>(r);
          ASSERT_EQ(all[static_cast<std::size_t>(r)].size(), expect);
          for (auto b : all[static_cast<std::size_t>(r)]) ASSERT_EQ(b, static_cast<std::byte>(r));
        }
      },
      Fast());
}

TEST_P(GrpcRingByWorld, BroadcastStringAndAsyncOperationsInIssueOrder) {
  const int world = GetParam();
  RunOnGrpcRanks(
      world,
      [&](Communicator& comm) {
        std::string s = comm.rank() == world - 1 ? std::string(10000, 'x') + "end" : "junk";
        comm.BroadcastString(s, world - 1);
        ASSERT_EQ(s.size(), 10003u);
        ASSERT_EQ(s.substr(10000), "end");

        std::vector<std::vector<float>> bufs(6, std::vector<float>(3333));
        std::vector<std::shared_ptr<Work>> works;
        for (std::size_t k = 0; k < bufs.size(); ++k) {
          std::fill(bufs[k].begin(), bufs[k].end(), static_cast<float>(k + 1));
          works.push_back(comm.AllReduceAsync(bufs[k].data(), bufs[k].size(), DType::kFloat32,
                                              ReduceOp::kSum, {}));
        }
        comm.Barrier();
        for (std::size_t k = 0; k < bufs.size(); ++k) {
          works[k]->Wait();
          for (float v : bufs[k]) ASSERT_EQ(v, static_cast<float>((k + 1) * world));
        }
      },
      Fast());
}

INSTANTIATE_TEST_SUITE_P(Worlds, GrpcRingByWorld, ::testing::Range(1, 9),
                         [](const auto& p) { return "world" + std::to_string(p.param); });

TEST(GrpcRing, OtherDtypesAndLargeChunks) {
  LocalGroupOptions o = Fast();
  o.connect.ring.chunk_bytes = 1 << 20;
  o.connect.ring.small_message_bytes = 64 << 10;
  RunOnGrpcRanks(
      3,
      [](Communicator& comm) {
        std::vector<std::int32_t> a(1000003, comm.rank() + 1);
        comm.AllReduce(std::span<std::int32_t>(a), ReduceOp::kSum);
        for (auto v : a) ASSERT_EQ(v, 6);
        std::vector<std::uint8_t> b(17, static_cast<std::uint8_t>(10 * comm.rank()));
        comm.AllReduce(std::span<std::uint8_t>(b), ReduceOp::kMax);
        for (auto v : b) ASSERT_EQ(v, 20);
      },
      o);
}

// ---- failures --------------------------------------------------------------------------------

// Runs fn(rank) on `world` threads (each with its own communicator of `group`) and collects what
// each returned, bounded by `limit`.
std::vector<Status> RunEach(LocalGroup& group, int world,
                            const std::function<Status(int, Communicator&)>& fn) {
  std::vector<Status> out(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] { out[static_cast<std::size_t>(r)] = fn(r, group.comm(r)); });
  }
  for (auto& t : threads) t.join();
  return out;
}

Status AllReduceOf(Communicator& comm, std::size_t n, CollectiveOptions opts = {}) {
  std::vector<float> data(n, 1.0f);
  auto w = comm.AllReduceAsync(data.data(), data.size(), DType::kFloat32, ReduceOp::kSum, opts);
  if (!w->WaitFor(milliseconds(20'000))) return Status(ErrorCode::kInternal, "hung");
  return w->status();
}

TEST(GrpcRingFailures, TimeoutFiresWhenOneRankNeverArrivesAndNamesIt) {
  LocalGroupOptions o = Fast();
  o.heartbeat_interval = milliseconds(50);
  LocalGroup group(4, o);
  // Let every rank report its (zero) progress once.
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  std::vector<Status> results(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      CollectiveOptions opts;
      opts.timeout = milliseconds(600);
      opts.tag = 7;
      results[static_cast<std::size_t>(r)] = AllReduceOf(group.comm(r), 10, opts);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  bool saw_deadline = false;
  for (const Status& s : results) {
    EXPECT_TRUE(s.code() == ErrorCode::kDeadlineExceeded || s.code() == ErrorCode::kAborted)
        << s.ToString();
    EXPECT_NE(s.message().find("allreduce #0 (tag 7)"), std::string::npos) << s.message();
    if (s.code() == ErrorCode::kDeadlineExceeded) {
      saw_deadline = true;
      // The rank that timed out names rank 3: directly, or as the rank that never started.
      EXPECT_NE(s.message().find("3"), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("rank(s)"), std::string::npos) << s.message();
    }
  }
  EXPECT_TRUE(saw_deadline);
  // The group stays poisoned: rank 3's late call fails at once (its peers told it).
  std::this_thread::sleep_for(milliseconds(300));
  const Status late = AllReduceOf(group.comm(3), 10);
  EXPECT_TRUE(late.code() == ErrorCode::kAborted) << late.ToString();
}

TEST(GrpcRingFailures, MismatchedCountsFailOnEveryRank) {
  // Small (recursive doubling), large (ring), and one rank small while the others are large (the
  // ranks pick different algorithms).
  for (auto [base, odd] : {std::pair<std::size_t, std::size_t>{10, 12},
                           std::pair<std::size_t, std::size_t>{100000, 100003},
                           std::pair<std::size_t, std::size_t>{100000, 10}}) {
    for (int world : {2, 3, 4}) {
      LocalGroup group(world, Fast());
      auto statuses = RunEach(group, world, [&](int r, Communicator& c) {
        return AllReduceOf(c, r == 1 ? odd : base);
      });
      for (const Status& s : statuses) {
        EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument)
            << "world " << world << " counts " << base << "/" << odd << ": " << s.ToString();
        EXPECT_NE(s.message().find("mismatched"), std::string::npos) << s.message();
      }
    }
  }
}

TEST(GrpcRingFailures, MismatchedKindsAndBroadcastSizesFailOnEveryRankIncludingTheRoot) {
  {
    LocalGroup group(3, Fast());
    auto statuses = RunEach(group, 3, [&](int r, Communicator& c) {
      if (r == 2) {
        std::vector<float> v(10);
        auto w = c.BroadcastAsync(v.data(), 40, 0, {});
        w->WaitFor(milliseconds(20'000));
        return w->status();
      }
      return AllReduceOf(c, 10);
    });
    for (const Status& s : statuses) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
    }
  }
  {
    LocalGroup group(4, Fast());
    auto statuses = RunEach(group, 4, [&](int r, Communicator& c) {
      std::vector<char> v(r == 3 ? 64 : 32);
      auto w = c.BroadcastAsync(v.data(), v.size(), 0, {});
      w->WaitFor(milliseconds(20'000));
      return w->status();
    });
    for (const Status& s : statuses) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
      EXPECT_NE(s.message().find("mismatched"), std::string::npos) << s.message();
    }
  }
}

TEST(GrpcRingFailures, FailureOnOneRankAbortsTheOthersPromptly) {
  const auto start = std::chrono::steady_clock::now();
  LocalGroupOptions o = Fast();
  o.connect.collective_timeout = std::chrono::minutes(10);
  try {
    RunOnGrpcRanks(
        4,
        [](Communicator& comm) {
          if (comm.rank() == 2) throw Error(ErrorCode::kDataLoss, "rank 2 read a corrupt shard");
          std::vector<float> data(100, 1.0f);
          comm.AllReduce(std::span<float>(data), ReduceOp::kSum);
        },
        o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(GrpcRingFailures, AbortFromAnotherThreadIsRelayedToEveryRank) {
  LocalGroupOptions o = Fast();
  o.connect.collective_timeout = std::chrono::minutes(10);
  LocalGroup group(4, o);
  const auto start = std::chrono::steady_clock::now();
  std::thread aborter([&] {
    std::this_thread::sleep_for(milliseconds(200));
    group.comm(3).Abort(Status(ErrorCode::kAborted, "operator pressed stop"));
  });
  // Ranks 0-2 wait in an all-reduce that rank 3 never joins; rank 3's abort must reach them
  // (through the coordinator) long before their 10-minute timeout.
  auto statuses = RunEach(group, 3, [&](int, Communicator& c) { return AllReduceOf(c, 1000); });
  aborter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  for (const Status& s : statuses) {
    EXPECT_EQ(s.code(), ErrorCode::kAborted) << s.ToString();
    EXPECT_NE(s.message().find("operator pressed stop"), std::string::npos) << s.message();
  }
}

TEST(GrpcRingFailures, PeerDestroyedMidCollectiveFailsTheOthersPromptly) {
  LocalGroupOptions o = Fast();
  o.connect.collective_timeout = std::chrono::minutes(10);
  LocalGroup group(3, o);
  const auto start = std::chrono::steady_clock::now();
  std::thread killer([&] {
    std::this_thread::sleep_for(milliseconds(200));
    group.comms()[2].reset();  // rank 2 leaves without joining the collective
  });
  std::vector<Status> statuses(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back(
        [&, r] { statuses[static_cast<std::size_t>(r)] = AllReduceOf(group.comm(r), 100000); });
  }
  for (auto& t : threads) t.join();
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  for (const Status& s : statuses) {
    EXPECT_EQ(s.code(), ErrorCode::kAborted) << s.ToString();
    EXPECT_NE(s.message().find("rank 2"), std::string::npos) << s.message();
  }
}

TEST(GrpcRingFailures, BroadcastRootOutOfRangeIsInvalidArgument) {
  LocalGroup group(2, Fast());
  int x = 0;
  auto w = group.comm(0).BroadcastAsync(&x, sizeof(x), 5, {});
  EXPECT_EQ(w->status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace escala::distributed
