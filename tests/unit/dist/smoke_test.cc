#include <chrono>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "unit/dist/local_group.h"

namespace escala::dist {
namespace {

TEST(Smoke, AllReduce) {
  for (int world : {2, 3, 4}) {
    testing::LocalGroupOptions o;
    o.connect = testing::FastConnectOptions();
    testing::RunOnGrpcRanks(world, [&](Communicator& comm) {
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{100000}}) {
        std::vector<float> v(n, static_cast<float>(comm.rank() + 1));
        comm.AllReduce(std::span<float>(v), ReduceOp::kSum);
        for (float x : v) ASSERT_EQ(x, world * (world + 1) / 2.0f) << n;
      }
      comm.Barrier();
      std::vector<double> b(1000, comm.rank() == 1 ? 3.0 : 0.0);
      comm.Broadcast(std::span<double>(b), 1);
      for (double x : b) ASSERT_EQ(x, 3.0);
    }, o);
  }
}

}  // namespace
}  // namespace escala::dist
