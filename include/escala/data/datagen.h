// Synthetic datasets for demos, tests and benchmarks, in the spirit of scikit-learn's
// make_classification / make_regression, streamed to disk so that 10^8 rows never sit in memory.
//
// Rows are independent: row i is generated from a counter-based generator keyed by (seed, i), so
// the output is the same for any thread count, and any row range can be generated on its own
// (start_row) with the same underlying model: a training set and a test set are two ranges of
// one seed. The model (which features are informative, the weights) depends only on the seed and
// the shape options.
//
// Features: `informative` standard-normal features carry the signal; up to as many "redundant"
// features are noisy linear combinations of them (correlated columns, as in real data); the rest
// are independent standard-normal noise; columns are placed in a seeded random order.
// The signal of a row is s = cos(t) * linear + sin(t) * interactions, where `linear` is a random
// unit linear function of the informative features and `interactions` a normalised sum of random
// pairwise products of them (t = 0.5: a linear model explains part of the signal, a nonlinear model
// more). Classification: binary labels are drawn from sigmoid(6 s); with C > 2 classes, from a
// softmax over C such signals; a fraction `noise` of labels is then replaced by uniformly random
// classes. Regression: y = 10 s + noise * N(0, 1).
//
// Thread-safety: reentrant; generation runs in parallel on oneTBB.
#ifndef ESCALA_DATA_DATAGEN_H_
#define ESCALA_DATA_DATAGEN_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "escala/core/matrix.h"

namespace escala::data {

enum class SynthTask { kClassification, kRegression };

struct SynthOptions {
  SynthTask task = SynthTask::kClassification;
  std::int64_t rows = 1000;
  std::int64_t start_row = 0;  // generate rows [start_row, start_row + rows)
  int features = 20;
  int informative = 10;
  int classes = 2;
  double noise = 0.0;  // label noise fraction (classification) or noise std (regression)
  std::uint64_t seed = 42;
};

// Validates options; throws kInvalidArgument naming the bad option.
void ValidateSynthOptions(const SynthOptions& options);

// Generates rows [first, first + features.rows()) relative to options.start_row into `features`
// (n x options.features) and `labels` (n): exactly the values the files hold (6 significant
// digits). Deterministic in (options, row index).
void GenerateSynthetic(const SynthOptions& options, std::int64_t first, MatrixView<float> features,
                       std::span<float> labels);

struct SynthWriteStats {
  std::int64_t rows = 0;
  std::uint64_t bytes = 0;  // bytes written (compressed size for .gz)
  double seconds = 0;
};

// Streams the dataset to `path`: .csv or .csv.gz (header f0..f{d-1},label, values with 6
// significant digits), or .npy (float32 features, labels in <stem>.labels.npy; the values are those
// the CSV would give after parsing, so both forms hold the same data). Writes atomically.
// `progress` (optional) is called with rows written so far.
SynthWriteStats WriteSynthetic(const SynthOptions& options, const std::string& path,
                               const std::function<void(std::int64_t)>& progress = {});

}  // namespace escala::data

#endif  // ESCALA_DATA_DATAGEN_H_
