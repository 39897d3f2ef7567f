// Feature-module benchmarks (bench/features/run.sh drives this):
//   stats      Summarize() over a CSV already parsed into memory (what pandas describe()+corr()
//              compute), seconds per pass
//   transform  a pipeline (impute + standardize + one-hot of 3 categorical columns) over a
//              1,000,000-row table, rows/s
// Prints "name seconds" lines, one per repetition.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "escala/core/communicator.h"
#include "escala/data/csv.h"
#include "escala/features/pipeline.h"
#include "escala/features/summary.h"

namespace {
double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: features_bench CSV REPS\n");
    return 2;
  }
  const int reps = std::atoi(argv[2]);
  auto comm = escala::MakeSelfCommunicator();
  const auto table = escala::data::ReadCsv(argv[1]);
  escala::features::SummaryOptions so;
  so.duplicates = false;  // pandas describe()/corr() do not look for duplicates either
  for (int r = 0; r < reps; ++r) {
    const auto t = std::chrono::steady_clock::now();
    const auto s = escala::features::Summarize(table, so, *comm);
    std::printf("stats %.4f\n", Since(t));
    if (s.columns.empty()) return 1;
  }
  // A table with 16 numeric columns (some missing) and 3 categorical ones.
  const std::int64_t n = 1'000'000;
  std::vector<escala::data::Column> cols;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> g;
  for (int j = 0; j < 16; ++j) {
    escala::data::Column c("x" + std::to_string(j), escala::data::DataType::kFloat32, n);
    for (std::int64_t i = 0; i < n; ++i)
      c.mutable_f32()[static_cast<std::size_t>(i)] = static_cast<float>(g(rng));
    for (std::int64_t i = j; i < n; i += 97) c.SetMissing(i);
    cols.push_back(std::move(c));
  }
  for (int j = 0; j < 3; ++j) {
    escala::data::Column c("c" + std::to_string(j), escala::data::DataType::kCategorical, n);
    for (int k = 0; k < 8; ++k) c.mutable_dictionary().push_back("v" + std::to_string(k));
    for (std::int64_t i = 0; i < n; ++i)
      c.mutable_codes()[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng() % 8);
    cols.push_back(std::move(c));
  }
  const escala::data::Table t(cols);
  auto p =
      escala::features::Pipeline::FromSpec("impute(median) | standardize | onehot(c0, c1, c2)");
  p.Fit(t, {}, *comm);
  escala::MatrixF out;
  p.Transform(t, &out);  // warm-up
  for (int r = 0; r < reps; ++r) {
    const auto s = std::chrono::steady_clock::now();
    p.Transform(t, &out);
    std::printf("transform %.4f\n", Since(s));
  }
  return 0;
}
