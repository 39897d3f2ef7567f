// The data module's benchmark program: one timed operation per process, so that a driver can
// measure each run's wall time and peak memory from outside (bench/data/run.sh).
//
//   escala_bench_data csv FILE [--label COL] [--mmap] [--repeat N]   CSV -> dense float32
//   escala_bench_data libsvm FILE                           LIBSVM -> CSR
//   escala_bench_data stream SPEC [--block-bytes N]         streaming pass (column sums)
//   escala_bench_data make-libsvm FILE ROWS FEATURES NNZ    writes a synthetic LIBSVM file
//
// Each prints one line "<seconds> <bytes> <rows> <checksum> <peak RSS KiB>" (csv --repeat: one
// per read); --threads N caps the threads.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/csv.h"
#include "escala/data/dataset.h"
#include "escala/data/libsvm.h"
#include "escala/data/stream.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

long PeakRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int Usage() {
  std::fprintf(stderr,
               "usage: escala_bench_data [--threads N] csv FILE [--label COL] [--mmap]\n"
               "       escala_bench_data [--threads N] libsvm FILE\n"
               "       escala_bench_data [--threads N] stream SPEC [--block-bytes N]\n"
               "       escala_bench_data make-libsvm FILE ROWS FEATURES NNZ\n");
  return 2;
}

int Run(std::vector<std::string> args) {
  if (args.size() >= 2 && args[0] == "--threads") {
    escala::SetNumThreads(std::atoi(args[1].c_str()));
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.size() < 2) return Usage();
  const std::string mode = args[0];
  const std::string path = args[1];
  auto flag = [&](const std::string& name) -> std::string {
    for (std::size_t i = 2; i + 1 < args.size(); ++i) {
      if (args[i] == name) return args[i + 1];
    }
    return "";
  };
  auto has = [&](const std::string& name) {
    for (std::size_t i = 2; i < args.size(); ++i) {
      if (args[i] == name) return true;
    }
    return false;
  };
  if (mode == "csv") {
    escala::data::DenseSpec spec;
    spec.label = flag("--label");
    escala::data::CsvOptions o;
    o.memory_map = has("--mmap");
    // --repeat N reads the file N times in this process: the first read pays for fresh memory
    // pages, later ones reuse the memory the previous read released.
    const int repeat = flag("--repeat").empty() ? 1 : std::atoi(flag("--repeat").c_str());
    for (int r = 0; r < repeat; ++r) {
      escala::data::ReadReport report;
      const auto t0 = Clock::now();
      const escala::data::DenseData d = escala::data::ReadCsvDense(path, spec, o, &report);
      const double s = Seconds(t0);
      double checksum = 0;
      for (std::int64_t i = 0; i < d.rows(); i += 997) checksum += d.features(i, 0);
      std::printf("%.4f %lld %lld %.6g %ld\n", s, static_cast<long long>(report.bytes),
                  static_cast<long long>(d.rows()), checksum, PeakRssKb());
    }
    return 0;
  }
  if (mode == "table") {  // the typed table `escala train` reads (the table path)
    escala::data::ReadReport report;
    const auto t0 = Clock::now();
    const escala::data::Table t = escala::data::ReadCsv(path, {}, &report);
    const double s = Seconds(t0);
    double checksum = 0;
    const auto c = t.column(0).f64();
    for (std::size_t i = 0; i < c.size(); i += 997) checksum += c[i];
    std::printf("%.4f %lld %lld %.6g %ld\n", s, static_cast<long long>(report.bytes),
                static_cast<long long>(t.num_rows()), checksum, PeakRssKb());
    return 0;
  }
  if (mode == "libsvm") {
    escala::data::ReadReport report;
    const auto t0 = Clock::now();
    const escala::data::SparseData d = escala::data::ReadLibsvm(path, {}, &report);
    const double s = Seconds(t0);
    double checksum = 0;
    for (const float v : d.x.values) checksum += v;
    std::printf("%.4f %lld %lld %.6g %ld\n", s, static_cast<long long>(report.bytes),
                static_cast<long long>(d.x.rows), checksum, PeakRssKb());
    return 0;
  }
  if (mode == "stream") {
    escala::data::StreamOptions so;
    if (!flag("--block-bytes").empty()) so.block_bytes = std::stoull(flag("--block-bytes"));
    const auto t0 = Clock::now();
    const escala::data::Dataset ds = escala::data::Dataset::Open(path);
    escala::data::DatasetStream stream(ds, {}, so);
    escala::data::DenseData chunk;
    std::vector<double> sums;
    std::int64_t rows = 0;
    while (stream.NextDense({}, &chunk)) {
      sums.resize(static_cast<std::size_t>(chunk.cols()));
      for (std::int64_t i = 0; i < chunk.rows(); ++i) {
        for (std::int64_t j = 0; j < chunk.cols(); ++j)
          sums[static_cast<std::size_t>(j)] += chunk.features(i, j);
      }
      rows += chunk.rows();
    }
    const double s = Seconds(t0);
    double checksum = 0;
    for (const double v : sums) checksum += v;
    std::printf("%.4f %lld %lld %.6g %ld\n", s, static_cast<long long>(stream.report().bytes),
                static_cast<long long>(rows), checksum, PeakRssKb());
    return 0;
  }
  if (mode == "make-libsvm" && args.size() == 5) {
    const long rows = std::atol(args[2].c_str());
    const int features = std::atoi(args[3].c_str());
    const int nnz = std::atoi(args[4].c_str());
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return 1;
    std::mt19937_64 rng(42);
    std::vector<int> idx;
    for (long r = 0; r < rows; ++r) {
      idx.clear();
      while (static_cast<int>(idx.size()) < nnz) {
        idx.push_back(1 + static_cast<int>(rng() % static_cast<unsigned>(features)));
        std::sort(idx.begin(), idx.end());
        idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
      }
      std::fprintf(f, "%d", (rng() & 1) ? 1 : -1);
      for (const int i : idx) {
        std::fprintf(f, " %d:%.6g", i, std::ldexp(static_cast<double>(rng() >> 11), -53));
      }
      std::fputc('\n', f);
    }
    return std::fclose(f) == 0 ? 0 : 1;
  }
  return Usage();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escala_bench_data: %s\n", e.what());
    return 1;
  }
}
