// Peer: Gloo's ring all-reduce over its TCP transport, float32 sum, same sizes and timing as
// escala_allreduce_bench. Usage: gloo_allreduce_bench <rank> <size> <file-store-dir>.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include "bench_common.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <rank> <size> <store-dir>\n", argv[0]);
    return 2;
  }
  const int rank = std::stoi(argv[1]);
  const int size = std::stoi(argv[2]);
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(argv[3]);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  context->connectFullMesh(store, device);

  auto barrier = [&] {
    gloo::BarrierOptions opts(context);
    gloo::barrier(opts);
  };
  std::uint32_t tag = 0;
  for (std::size_t bytes : bench::Sizes()) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    auto allreduce = [&] {
      gloo::AllreduceOptions opts(context);
      opts.setOutput(data.data(), data.size());
      opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
      opts.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      opts.setTag(tag++);
      gloo::allreduce(opts);
    };
    const int iters = bench::Iterations(bytes);
    for (int i = 0; i < std::max(3, iters / 10); ++i) allreduce();
    std::vector<double> per_op;
    for (int rep = 0; rep < bench::Repetitions(); ++rep) {
      barrier();
      const double t0 = bench::Now();
      for (int i = 0; i < iters; ++i) allreduce();
      per_op.push_back((bench::Now() - t0) / iters);
    }
    if (rank == 0) bench::Report("gloo", bytes, size, bench::Median(per_op));
  }
  barrier();
  return 0;
}
