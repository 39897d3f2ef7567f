// escala's gRPC ring all-reduce, float32 sum: run under `escala launch --nproc 2` (or any
// launcher whose environment distributed::WorkerEnv understands). Rank 0 prints RESULT lines.
#include <cstdio>
#include <span>
#include <vector>

#include "bench_common.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/process_tuning.h"

int main() {
  try {
    const auto env = escala::distributed::WorkerEnv::FromEnvironment();
    escala::distributed::TuneProcessForDataPlane();  // as `escala train` does
    auto comm =
        escala::distributed::Connect(env, escala::distributed::ConnectOptions::FromEnvironment());
    for (std::size_t bytes : bench::Sizes()) {
      std::vector<float> data(bytes / sizeof(float), 1.0f);
      const int iters = bench::Iterations(bytes);
      for (int i = 0; i < std::max(3, iters / 10); ++i) {
        comm->AllReduce(std::span<float>(data), escala::ReduceOp::kSum);
      }
      std::vector<double> per_op;
      for (int rep = 0; rep < bench::Repetitions(); ++rep) {
        comm->Barrier();
        const double t0 = bench::Now();
        for (int i = 0; i < iters; ++i) {
          comm->AllReduce(std::span<float>(data), escala::ReduceOp::kSum);
        }
        per_op.push_back((bench::Now() - t0) / iters);
      }
      // Values stay finite: 1 * 2^k for a few hundred iterations.
      if (comm->rank() == 0) bench::Report("escala", bytes, comm->size(), bench::Median(per_op));
    }
    comm->Barrier();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escala_allreduce_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
