// Built against an installed escala by scripts/test.sh --ci: proves the exported package works.
#include <cstdio>
#include <vector>

#include "escala/config.h"
#include "escala/core/thread_communicator.h"
#include "escala/data/csv.h"
#include "escala/gpu/device.h"

int main() {
  float result = 0.0f;
  escala::RunOnThreadRanks(3, [&](escala::Communicator& comm) {
    std::vector<float> v(4, static_cast<float>(comm.rank()));
    comm.AllReduce(std::span<float>(v), escala::ReduceOp::kSum);
    if (comm.rank() == 0) result = v[0];
  });
  const escala::data::Table table = escala::data::ParseCsv("x,y\n1,2\n3,4\n");
  std::printf("escala %s consumer: allreduce 0+1+2 = %.0f, CSV rows %lld, CUDA built in: %s\n",
              ESCALA_VERSION_STRING, result, static_cast<long long>(table.num_rows()),
              escala::gpu::BuiltWithCuda() ? "yes" : "no");
  return result == 3.0f && table.num_rows() == 2 ? 0 : 1;
}
