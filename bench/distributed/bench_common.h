// Shared by the all-reduce benchmark programs (escala, Gloo, MPI): the sizes, how many
// iterations each size runs, and the output format read by run_allreduce.sh.
#ifndef ESCALA_BENCH_DIST_BENCH_COMMON_H_
#define ESCALA_BENCH_DIST_BENCH_COMMON_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline std::vector<std::size_t> Sizes() {
  if (const char* s = std::getenv("BENCH_SIZES")) {
    std::vector<std::size_t> out;
    std::string t(s);
    std::size_t pos = 0;
    while (pos < t.size()) {
      auto comma = t.find(',', pos);
      if (comma == std::string::npos) comma = t.size();
      out.push_back(std::stoull(t.substr(pos, comma - pos)));
      pos = comma + 1;
    }
    return out;
  }
  return {4096, 1 << 20, 16 << 20, 64 << 20};
}

// Enough iterations per timed repetition that one repetition takes ~0.1-0.5 s.
inline int Iterations(std::size_t bytes) {
  if (bytes <= (64 << 10)) return 2000;
  if (bytes <= (1 << 20)) return 100;
  if (bytes <= (16 << 20)) return 12;
  return 4;
}

inline int Repetitions() {
  const char* s = std::getenv("BENCH_REPS");
  return s != nullptr ? std::max(1, std::atoi(s)) : 7;
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One line per size: "<peer> <bytes> <median seconds per op> <bus GB/s> <ranks>".
inline void Report(const char* peer, std::size_t bytes, int ranks, double seconds) {
  const double bus = 2.0 * (ranks - 1) / ranks * static_cast<double>(bytes) / seconds / 1e9;
  std::printf("RESULT %s %zu %.9f %.4f %d\n", peer, bytes, seconds, bus, ranks);
  std::fflush(stdout);
}

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace bench

#endif  // ESCALA_BENCH_DIST_BENCH_COMMON_H_
