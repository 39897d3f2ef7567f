// The worker process of the multi-process distributed tests. It finds its place through
// distributed::WorkerEnv (as a real program would under `escala launch`, torchrun, Slurm or
// mpirun), connects with distributed::Connect, and then:
//   distributed_worker sweep                 every collective over element counts x dtypes x ops,
//                                     checked against a serial reference
//   distributed_worker loop <iters> <count>  all-reduces in a loop (fault tests); with
//                                     DIST_WORKER_DIE_RANK=r and DIST_WORKER_DIE_AT=k, rank r
//                                     SIGKILLs itself before iteration k (only on the restart
//                                     DIST_WORKER_DIE_ON_RESTART, default 0)
//   distributed_worker hold <seconds>        barriers every 50 ms for that long
// Exit status: 0 on success, 3 on an escala error (printed), 4 on a wrong result.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <signal.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "escala/distributed/connect.h"
#include "escala/distributed/process_tuning.h"

namespace {

using escala::Communicator;
using escala::ReduceOp;

int Env(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

template <typename T>
T Value(int rank, std::size_t i) {
  return static_cast<T>(
      static_cast<std::int64_t>((i * 7 + static_cast<std::size_t>(rank) * 13) % 101) - 50);
}

[[noreturn]] void WrongResult(const std::string& what) {
  std::fprintf(stderr, "distributed_worker: WRONG RESULT: %s\n", what.c_str());
  std::exit(4);
}

template <typename T>
void SweepAllReduce(Communicator& comm, std::size_t count) {
  const int world = comm.size();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    std::vector<T> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = Value<T>(comm.rank(), i);
    comm.AllReduce(std::span<T>(data), op);
    for (std::size_t i = 0; i < count; ++i) {
      T acc = Value<T>(0, i);
      for (int r = 1; r < world; ++r) {
        const T v = Value<T>(r, i);
        acc = op == ReduceOp::kMax   ? std::max(acc, v)
              : op == ReduceOp::kMin ? std::min(acc, v)
                                     : acc + v;
      }
      if (op == ReduceOp::kAvg) acc /= static_cast<T>(world);
      const bool ok = std::is_floating_point_v<T>
                          ? std::fabs(static_cast<double>(data[i] - acc)) <=
                                1e-5 * (1 + std::fabs(static_cast<double>(acc)))
                          : data[i] == acc;
      if (!ok) {
        WrongResult(fmt::format("rank {} allreduce {} count {} index {}: {} != {}", comm.rank(),
                                escala::ReduceOpName(op), count, i, static_cast<double>(data[i]),
                                static_cast<double>(acc)));
      }
    }
  }
}

void Sweep(Communicator& comm) {
  const int world = comm.size();
  // Empty, one, primes around the chunk and segment boundaries, and a large count.
  for (std::size_t count :
       {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{31},
        std::size_t{257}, std::size_t{4099}, std::size_t{65537}, std::size_t{262147}}) {
    SweepAllReduce<float>(comm, count);
    SweepAllReduce<double>(comm, count);
    SweepAllReduce<std::int64_t>(comm, count);
    SweepAllReduce<std::int32_t>(comm, count);
  }
  for (int root = 0; root < world; ++root) {
    std::vector<double> b(70001, comm.rank() == root ? root + 0.5 : -1.0);
    comm.Broadcast(std::span<double>(b), root);
    for (double v : b) {
      if (v != root + 0.5) WrongResult(fmt::format("broadcast from {}: {}", root, v));
    }
  }
  std::vector<std::int64_t> mine(5003, comm.rank());
  auto all = comm.AllGather(std::span<const std::int64_t>(mine));
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i] != static_cast<std::int64_t>(i / mine.size())) WrongResult("allgather");
  }
  std::vector<std::byte> v(static_cast<std::size_t>(comm.rank()) * 10007,
                           static_cast<std::byte>(comm.rank()));
  auto allv = comm.AllGatherV(v);
  for (int r = 0; r < world; ++r) {
    if (allv[static_cast<std::size_t>(r)].size() != static_cast<std::size_t>(r) * 10007) {
      WrongResult("allgatherv size");
    }
  }
  comm.Barrier();
  std::printf("sweep ok rank %d/%d\n", comm.rank(), world);
}

void Loop(Communicator& comm, int iterations, std::size_t count) {
  const int die_rank = Env("DIST_WORKER_DIE_RANK", -1);
  const int die_at = Env("DIST_WORKER_DIE_AT", -1);
  const bool die_now = Env("ESCALA_RESTART_COUNT", 0) == Env("DIST_WORKER_DIE_ON_RESTART", 0);
  std::vector<float> data(count);
  for (int it = 0; it < iterations; ++it) {
    if (comm.rank() == die_rank && it == die_at && die_now) {
      std::fprintf(stderr, "distributed_worker rank %d: killing myself at iteration %d\n",
                   comm.rank(), it);
      raise(SIGKILL);
    }
    std::fill(data.begin(), data.end(), static_cast<float>(comm.rank() + it));
    comm.AllReduce(std::span<float>(data), ReduceOp::kSum);
    const float expect = static_cast<float>(comm.size() * it + comm.size() * (comm.size() - 1) / 2);
    if (data.front() != expect || data.back() != expect) {
      WrongResult(fmt::format("iteration {}: {} != {}", it, data.front(), expect));
    }
    if (it % 10 == 0) {
      std::printf("iteration %d\n", it);
      std::fflush(stdout);
    }
  }
  std::printf("loop ok rank %d\n", comm.rank());
}

void Hold(Communicator& comm, int seconds) {
  std::printf("holding rank %d\n", comm.rank());
  std::fflush(stdout);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    comm.Barrier();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("hold ok rank %d\n", comm.rank());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "sweep";
  try {
    const auto env = escala::distributed::WorkerEnv::FromEnvironment();
    escala::distributed::TuneProcessForDataPlane();  // as `escala train` does
    auto comm =
        escala::distributed::Connect(env, escala::distributed::ConnectOptions::FromEnvironment());
    std::printf("connected rank %d/%d\n", comm->rank(), comm->size());
    std::fflush(stdout);
    if (mode == "sweep") {
      Sweep(*comm);
    } else if (mode == "loop") {
      Loop(*comm, argc > 2 ? std::atoi(argv[2]) : 100,
           argc > 3 ? static_cast<std::size_t>(std::atol(argv[3])) : 1000);
    } else if (mode == "hold") {
      Hold(*comm, argc > 2 ? std::atoi(argv[2]) : 5);
    } else {
      std::fprintf(stderr, "distributed_worker: unknown mode '%s'\n", mode.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distributed_worker: error: %s\n", e.what());
    return 3;
  }
  return 0;
}
