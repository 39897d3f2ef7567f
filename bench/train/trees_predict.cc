// Batch prediction with a tree bundle's model (W6: the 200,000 test rows of W0), the model alone
// as XGBoost's inplace_predict is timed alone: threads across row blocks, as every caller of
// Model::Predict gets them. Prints "median_seconds rows_per_second" over RUNS runs.
//
//   bench_trees_predict BUNDLE X.npy RUNS THREADS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "escala/core/parallel.h"
#include "escala/data/npy.h"
#include "escala/io/bundle.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BUNDLE X.npy RUNS THREADS\n", argv[0]);
    return 2;
  }
  escala::SetNumThreads(std::stoi(argv[4]));
  const auto bundle = escala::io::ModelBundle::Load(argv[1]);
  const escala::MatrixF x = escala::data::ReadNpyMatrix(argv[2]);
  const escala::models::Model& model = *bundle.model;
  escala::MatrixF out(x.rows(), model.num_outputs());
  auto ws = model.NewWorkspace();
  std::vector<double> seconds;
  for (int r = 0; r < std::stoi(argv[3]); ++r) {
    const auto start = std::chrono::steady_clock::now();
    model.Predict(std::as_const(x).view(), out.view(), *ws);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("%.4f %.0f\n", median, static_cast<double>(x.rows()) / median);
  return 0;
}
