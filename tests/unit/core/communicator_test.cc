#include "escala/core/communicator.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <numeric>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"

namespace escala {
namespace {

using std::chrono::milliseconds;

// A value every rank can compute for (rank, i): exact in float32, so sums are exact too.
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

template <typename T>
void CheckAllReduce(int world, std::size_t count) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    const std::vector<T> expected = Expected<T>(world, count, op);
    RunOnThreadRanks(world, [&](Communicator& comm) {
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
    });
  }
}

enum class TestDType { kF32, kF64, kI64 };

class AllReduceSweep : public ::testing::TestWithParam<std::tuple<int, std::size_t, TestDType>> {};

TEST_P(AllReduceSweep, MatchesSerialReference) {
  const auto [world, count, dtype] = GetParam();
  switch (dtype) {
    case TestDType::kF32:
      CheckAllReduce<float>(world, count);
      break;
    case TestDType::kF64:
      CheckAllReduce<double>(world, count);
      break;
    case TestDType::kI64:
      CheckAllReduce<std::int64_t>(world, count);
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(
    WorldsCountsDtypes, AllReduceSweep,
    ::testing::Combine(::testing::Range(1, 9),
                       ::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{7},
                                         std::size_t{4099}, std::size_t{262147}),
                       ::testing::Values(TestDType::kF32, TestDType::kF64, TestDType::kI64)),
    [](const auto& p) {
      const char* d = std::get<2>(p.param) == TestDType::kF32   ? "f32"
                      : std::get<2>(p.param) == TestDType::kF64 ? "f64"
                                                                : "i64";
      return "world" + std::to_string(std::get<0>(p.param)) + "_n" +
             std::to_string(std::get<1>(p.param)) + "_" + d;
    });

class CollectivesByWorld : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesByWorld, BroadcastFromEveryRoot) {
  const int world = GetParam();
  RunOnThreadRanks(world, [&](Communicator& comm) {
    for (int root = 0; root < world; ++root) {
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1001}}) {
        std::vector<double> data(n, comm.rank() == root ? 0.0 : -1.0);
        if (comm.rank() == root) std::iota(data.begin(), data.end(), root * 10.0);
        comm.Broadcast(std::span<double>(data), root);
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(data[i], root * 10.0 + i);
      }
    }
  });
}

TEST_P(CollectivesByWorld, AllGatherPlacesEachRankAtItsOffset) {
  const int world = GetParam();
  RunOnThreadRanks(world, [&](Communicator& comm) {
    std::vector<std::int64_t> mine(5);
    for (int i = 0; i < 5; ++i) mine[static_cast<std::size_t>(i)] = comm.rank() * 100 + i;
    auto all = comm.AllGather(std::span<const std::int64_t>(mine));
    ASSERT_EQ(all.size(), static_cast<std::size_t>(5 * world));
    for (int r = 0; r < world; ++r) {
      for (int i = 0; i < 5; ++i) ASSERT_EQ(all[static_cast<std::size_t>(r * 5 + i)], r * 100 + i);
    }
  });
}

TEST_P(CollectivesByWorld, AllGatherVWithVariableAndEmptyContributions) {
  const int world = GetParam();
  RunOnThreadRanks(world, [&](Communicator& comm) {
    // Rank r contributes r bytes (rank 0 contributes nothing).
    std::vector<std::byte> mine(static_cast<std::size_t>(comm.rank()),
                                static_cast<std::byte>(comm.rank()));
    auto all = comm.AllGatherV(mine);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(all[static_cast<std::size_t>(r)].size(), static_cast<std::size_t>(r));
      for (auto b : all[static_cast<std::size_t>(r)]) ASSERT_EQ(b, static_cast<std::byte>(r));
    }
  });
}

TEST_P(CollectivesByWorld, BroadcastStringOfAnyLength) {
  const int world = GetParam();
  RunOnThreadRanks(world, [&](Communicator& comm) {
    std::string s = comm.rank() == world - 1 ? std::string(10000, 'x') + "end" : "junk";
    comm.BroadcastString(s, world - 1);
    ASSERT_EQ(s.size(), 10003u);
    ASSERT_EQ(s.substr(10000), "end");
  });
}

TEST_P(CollectivesByWorld, AsyncOperationsCompleteInIssueOrder) {
  const int world = GetParam();
  RunOnThreadRanks(world, [&](Communicator& comm) {
    std::vector<std::vector<float>> bufs(6, std::vector<float>(333));
    std::vector<std::shared_ptr<Work>> works;
    for (std::size_t k = 0; k < bufs.size(); ++k) {
      std::fill(bufs[k].begin(), bufs[k].end(), static_cast<float>(k + 1));
      works.push_back(
          comm.AllReduceAsync(bufs[k].data(), bufs[k].size(), DType::kFloat32, ReduceOp::kSum, {}));
    }
    comm.Barrier();
    for (std::size_t k = 0; k < bufs.size(); ++k) {
      works[k]->Wait();
      for (float v : bufs[k]) ASSERT_EQ(v, static_cast<float>((k + 1) * world));
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Worlds, CollectivesByWorld, ::testing::Range(1, 9));

TEST(ThreadCommunicator, TimeoutFiresWhenOneRankNeverArrives) {
  auto comms = MakeThreadGroup(4);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<Status> results(3, Status(ErrorCode::kInternal, "hung"));
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      std::vector<float> data(10, 1.0f);
      CollectiveOptions opts;
      opts.timeout = milliseconds(200);
      auto w = comms[static_cast<std::size_t>(r)]->AllReduceAsync(
          data.data(), data.size(), DType::kFloat32, ReduceOp::kSum, opts);
      if (w->WaitFor(milliseconds(10'000))) results[static_cast<std::size_t>(r)] = w->status();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  for (int r = 0; r < 3; ++r) {
    const Status& s = results[static_cast<std::size_t>(r)];
    EXPECT_TRUE(s.code() == ErrorCode::kDeadlineExceeded || s.code() == ErrorCode::kAborted)
        << "rank " << r << ": " << s.ToString();
  }
  // The group stays poisoned: rank 3's late call fails at once instead of waiting.
  std::vector<float> late(10, 1.0f);
  auto w = comms[3]->AllReduceAsync(late.data(), late.size(), DType::kFloat32, ReduceOp::kSum, {});
  ASSERT_TRUE(w->WaitFor(milliseconds(5'000)));
  EXPECT_EQ(w->status().code(), ErrorCode::kAborted);
  EXPECT_NE(w->status().message().find("timed out"), std::string::npos) << w->status().message();
}

TEST(ThreadCommunicator, TimeoutErrorNamesRankPeerOperationAndTag) {
  auto comms = MakeThreadGroup(3);
  std::vector<Status> statuses(2);
  std::vector<std::thread> threads;
  // Both ranks start together, and the deadline leaves a loaded machine time to schedule them:
  // with 100 ms, a late rank 1 was itself reported missing and the test failed under load.
  std::latch start(2);
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::vector<double> data(3);
      CollectiveOptions opts;
      opts.timeout = milliseconds(1500);
      start.arrive_and_wait();
      opts.tag = 7;
      auto w = comms[static_cast<std::size_t>(r)]->AllReduceAsync(
          data.data(), data.size(), DType::kFloat64, ReduceOp::kSum, opts);
      w->WaitFor(milliseconds(10'000));
      statuses[static_cast<std::size_t>(r)] = w->status();
    });
  }
  for (auto& t : threads) t.join();
  // Whichever rank's deadline fired first reports DeadlineExceeded and names rank 2; the other
  // either timed out too or was aborted by the first.
  bool saw_deadline = false;
  for (const Status& s : statuses) {
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("allreduce #0 (tag 7)"), std::string::npos) << s.message();
    // Rank 2 never came; rank 1 may be named too if it was descheduled past the deadline.
    EXPECT_TRUE(s.message().find("rank(s) 2") != std::string::npos ||
                s.message().find("rank(s) 1, 2") != std::string::npos)
        << s.message();
    saw_deadline |= s.code() == ErrorCode::kDeadlineExceeded;
  }
  EXPECT_TRUE(saw_deadline);
}

TEST(ThreadCommunicator, MismatchedCountsFailOnEveryRank) {
  std::vector<Status> statuses(3);
  auto comms = MakeThreadGroup(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      std::vector<float> data(r == 1 ? 12 : 10, 1.0f);
      auto w = comms[static_cast<std::size_t>(r)]->AllReduceAsync(
          data.data(), data.size(), DType::kFloat32, ReduceOp::kSum, {});
      w->WaitFor(milliseconds(10'000));
      statuses[static_cast<std::size_t>(r)] = w->status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : statuses) {
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find("mismatched"), std::string::npos) << s.message();
  }
}

TEST(ThreadCommunicator, FailureOnOneRankAbortsTheOthersPromptly) {
  const auto start = std::chrono::steady_clock::now();
  try {
    RunOnThreadRanks(
        4,
        [](Communicator& comm) {
          if (comm.rank() == 2) throw Error(ErrorCode::kDataLoss, "rank 2 read a corrupt shard");
          std::vector<float> data(100, 1.0f);
          comm.AllReduce(std::span<float>(data), ReduceOp::kSum);  // rank 2 never comes
        },
        std::chrono::minutes(10));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("corrupt shard"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ThreadCommunicator, BroadcastRootOutOfRangeIsInvalidArgument) {
  auto comms = MakeThreadGroup(2);
  int x = 0;
  auto w = comms[0]->BroadcastAsync(&x, sizeof(x), 5, {});
  EXPECT_EQ(w->status().code(), ErrorCode::kInvalidArgument);
}

TEST(SelfCommunicator, CollectivesAreIdentity) {
  auto comm = MakeSelfCommunicator();
  EXPECT_EQ(comm->size(), 1);
  std::vector<float> v = {1.5f, -2.0f};
  comm->AllReduce(std::span<float>(v), ReduceOp::kAvg);
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_EQ(comm->AllReduceScalar<std::int64_t>(41, ReduceOp::kSum), 41);
  const std::vector<std::byte> b = {std::byte{1}, std::byte{2}};
  auto all = comm->AllGatherV(b);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], b);
  comm->Barrier();
  comm->Abort(Status(ErrorCode::kAborted, "stop"));
  EXPECT_THROW(comm->Barrier(), Error);
}

TEST(Reduce, IntegerAverageTruncates) {
  std::vector<std::int64_t> a = {7, -7};
  DivideBy(a.data(), a.size(), DType::kInt64, 2);
  EXPECT_EQ(a[0], 3);
  EXPECT_EQ(a[1], -3);
}

}  // namespace
}  // namespace escala
