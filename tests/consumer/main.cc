// Built against an installed escala by scripts/test.sh --ci: proves the exported package works.
#include <cstdio>
#include <vector>

#include "escala/config.h"
#include "escala/core/thread_communicator.h"
#include "escala/gpu/device.h"

int main() {
  float result = 0.0f;
  escala::RunOnThreadRanks(3, [&](escala::Communicator& comm) {
    std::vector<float> v(4, static_cast<float>(comm.rank()));
    comm.AllReduce(std::span<float>(v), escala::ReduceOp::kSum);
    if (comm.rank() == 0) result = v[0];
  });
  std::printf("escala %s consumer: allreduce 0+1+2 = %.0f, CUDA built in: %s\n",
              ESCALA_VERSION_STRING, result, escala::gpu::BuiltWithCuda() ? "yes" : "no");
  return result == 3.0f ? 0 : 1;
}
