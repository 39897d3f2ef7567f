// Peer: Open MPI's MPI_Allreduce, float32 sum, same sizes and timing as escala_allreduce_bench.
// Usage: mpirun --allow-run-as-root -np 2 --mca btl tcp,self mpi_allreduce_bench
#include <mpi.h>
#include <vector>

#include "bench_common.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (std::size_t bytes : bench::Sizes()) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    const int n = static_cast<int>(data.size());
    const int iters = bench::Iterations(bytes);
    for (int i = 0; i < std::max(3, iters / 10); ++i) {
      MPI_Allreduce(MPI_IN_PLACE, data.data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    std::vector<double> per_op;
    for (int rep = 0; rep < bench::Repetitions(); ++rep) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = bench::Now();
      for (int i = 0; i < iters; ++i) {
        MPI_Allreduce(MPI_IN_PLACE, data.data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      }
      per_op.push_back((bench::Now() - t0) / iters);
    }
    if (rank == 0) bench::Report("mpi", bytes, size, bench::Median(per_op));
  }
  MPI_Finalize();
  return 0;
}
