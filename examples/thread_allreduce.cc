// Data-parallel averaging with ranks as threads: each rank computes a partial gradient and the
// communicator averages them, exactly as N worker processes would over the network.
#include <cstdio>
#include <vector>

#include "escala/core/thread_communicator.h"

int main() {
  constexpr int kWorld = 4;
  escala::RunOnThreadRanks(kWorld, [](escala::Communicator& comm) {
    std::vector<float> grad(8, static_cast<float>(comm.rank() + 1));
    comm.AllReduce(std::span<float>(grad), escala::ReduceOp::kAvg);
    if (comm.rank() == 0) std::printf("averaged gradient[0] = %.2f (expected 2.50)\n", grad[0]);
  });
  return 0;
}
