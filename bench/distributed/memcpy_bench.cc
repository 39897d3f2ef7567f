// The physical reference of the all-reduce table: single-thread memcpy bandwidth (64 MiB).
#include <cstring>
#include <vector>

#include "bench_common.h"

int main() {
  const std::size_t bytes = 64 << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  std::vector<double> times;
  for (int rep = 0; rep < bench::Repetitions() + 2; ++rep) {
    const double t0 = bench::Now();
    std::memcpy(b.data(), a.data(), bytes);
    times.push_back(bench::Now() - t0);
    a[static_cast<std::size_t>(rep)] = b[static_cast<std::size_t>(rep) + 1];
  }
  const double s = bench::Median(times);
  std::printf("RESULT memcpy %zu %.9f %.4f 1\n", bytes, s, static_cast<double>(bytes) / s / 1e9);
  return 0;
}
