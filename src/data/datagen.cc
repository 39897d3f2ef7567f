#include "escala/data/datagen.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>

#include <fast_float/fast_float.h>

#include "data/input.h"
#include "data/ordered_stages.h"
#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/npy.h"

namespace escala::data {
namespace {

// The scale of the signal in the class probabilities, and the share of it that is nonlinear
// (angle t: cos(t) linear, sin(t) pairwise interactions).
constexpr double kSignalScale = 6.0;
constexpr double kNonlinearAngle = 0.5;

std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A small counter-based generator: the stream for (seed, key) is fixed.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t key) : state_(Mix(Mix(seed) ^ Mix(key + 0x2545f491))) {}
  std::uint64_t Next() { return Mix(state_ += 0x9e3779b97f4a7c15ULL); }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double Normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    // Box-Muller on (0, 1] x [0, 1).
    const double u = 1.0 - Uniform();
    const double v = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u));
    const double a = 2.0 * std::numbers::pi * v;
    spare_ = r * std::sin(a);
    have_spare_ = true;
    return r * std::cos(a);
  }
  std::uint64_t Below(std::uint64_t n) { return Next() % n; }  // n is small: bias negligible

 private:
  std::uint64_t state_;
  double spare_ = 0;
  bool have_spare_ = false;
};

struct Model {
  int d = 0, k = 0, r = 0, signals = 1, pairs = 0;
  std::vector<int> informative, redundant, noise;  // output columns
  std::vector<double> w;                           // signals x k, unit rows
  std::vector<double> mix;                         // r x k, unit rows
  std::vector<int> pair_a, pair_b;
  std::vector<double> signs;  // signals x pairs
};

Model MakeModel(const SynthOptions& o) {
  Model m;
  m.d = o.features;
  m.k = o.informative;
  m.r = std::min(m.k / 2, m.d - m.k);
  m.signals = o.task == SynthTask::kClassification && o.classes > 2 ? o.classes : 1;
  m.pairs = std::max(1, m.k / 2);
  Rng rng(o.seed, 0x6d6f64656cULL);  // "model"
  std::vector<int> cols(static_cast<std::size_t>(m.d));
  for (int i = 0; i < m.d; ++i) cols[static_cast<std::size_t>(i)] = i;
  for (std::size_t i = cols.size(); i > 1; --i) std::swap(cols[i - 1], cols[rng.Below(i)]);
  m.informative.assign(cols.begin(), cols.begin() + m.k);
  m.redundant.assign(cols.begin() + m.k, cols.begin() + m.k + m.r);
  m.noise.assign(cols.begin() + m.k + m.r, cols.end());
  auto unit_rows = [&](int rows, std::vector<double>* out) {
    out->resize(static_cast<std::size_t>(rows * m.k));
    for (int i = 0; i < rows; ++i) {
      double norm = 0;
      for (int j = 0; j < m.k; ++j) {
        const double v = rng.Normal();
        (*out)[static_cast<std::size_t>(i * m.k + j)] = v;
        norm += v * v;
      }
      norm = std::sqrt(norm);
      for (int j = 0; j < m.k; ++j) (*out)[static_cast<std::size_t>(i * m.k + j)] /= norm;
    }
  };
  unit_rows(m.signals, &m.w);
  unit_rows(m.r, &m.mix);
  // Interactions: products of distinct informative features (pairs drawn from a permutation;
  // with k == 1 the single feature is squared and centred).
  std::vector<int> f(static_cast<std::size_t>(m.k));
  for (int i = 0; i < m.k; ++i) f[static_cast<std::size_t>(i)] = i;
  for (std::size_t i = f.size(); i > 1; --i) std::swap(f[i - 1], f[rng.Below(i)]);
  for (int p = 0; p < m.pairs; ++p) {
    m.pair_a.push_back(f[static_cast<std::size_t>((2 * p) % m.k)]);
    m.pair_b.push_back(f[static_cast<std::size_t>((2 * p + 1) % m.k)]);
  }
  for (int s = 0; s < m.signals * m.pairs; ++s) m.signs.push_back(rng.Below(2) ? 1.0 : -1.0);
  return m;
}

// Rounds to 6 significant digits: the value a CSV file holds, as the CSV reader parses it.
float Round6(double v, char* buf, char** end) {
  const auto r = std::to_chars(buf, buf + 32, v, std::chars_format::general, 6);
  *end = r.ptr;
  float f;
  fast_float::from_chars(buf, r.ptr, f);
  return f;
}

// Row `row` (absolute): features into x (d values, already rounded), label into *y.
void GenerateRow(const SynthOptions& o, const Model& m, std::int64_t row, float* x, float* y,
                 double* z /* k scratch */) {
  Rng rng(o.seed, static_cast<std::uint64_t>(row));
  char buf[32];
  char* end;
  for (int j = 0; j < m.k; ++j) {
    z[j] = rng.Normal();
    x[m.informative[static_cast<std::size_t>(j)]] = Round6(z[j], buf, &end);
  }
  for (int i = 0; i < m.r; ++i) {
    double v = 0;
    for (int j = 0; j < m.k; ++j) v += m.mix[static_cast<std::size_t>(i * m.k + j)] * z[j];
    v = 0.95 * v + std::sqrt(1.0 - 0.95 * 0.95) * rng.Normal();
    x[m.redundant[static_cast<std::size_t>(i)]] = Round6(v, buf, &end);
  }
  for (const int c : m.noise) x[c] = Round6(rng.Normal(), buf, &end);
  // Signals.
  const double ca = std::cos(kNonlinearAngle);
  const double sa = std::sin(kNonlinearAngle);
  double s[64];
  double* sig = m.signals <= 64 ? s : nullptr;
  std::vector<double> big;
  if (sig == nullptr) {
    big.resize(static_cast<std::size_t>(m.signals));
    sig = big.data();
  }
  for (int c = 0; c < m.signals; ++c) {
    double lin = 0;
    for (int j = 0; j < m.k; ++j) lin += m.w[static_cast<std::size_t>(c * m.k + j)] * z[j];
    double inter = 0;
    for (int p = 0; p < m.pairs; ++p) {
      const int a = m.pair_a[static_cast<std::size_t>(p)];
      const int b = m.pair_b[static_cast<std::size_t>(p)];
      const double prod = a == b ? (z[a] * z[a] - 1.0) / std::numbers::sqrt2 : z[a] * z[b];
      inter += m.signs[static_cast<std::size_t>(c * m.pairs + p)] * prod;
    }
    inter /= std::sqrt(static_cast<double>(m.pairs));
    sig[c] = ca * lin + sa * inter;
  }
  const double u_label = rng.Uniform();
  const double u_noise = rng.Uniform();
  const double u_class = rng.Uniform();
  const double gauss = rng.Normal();
  if (o.task == SynthTask::kRegression) {
    *y = Round6(10.0 * sig[0] + o.noise * gauss, buf, &end);
    return;
  }
  int label;
  if (o.classes <= 2) {
    const double p = 1.0 / (1.0 + std::exp(-kSignalScale * sig[0]));
    label = u_label < p ? 1 : 0;
  } else {
    double mx = sig[0];
    for (int c = 1; c < m.signals; ++c) mx = std::max(mx, sig[c]);
    double total = 0;
    for (int c = 0; c < m.signals; ++c) total += std::exp(kSignalScale * (sig[c] - mx));
    double acc = 0;
    label = m.signals - 1;
    for (int c = 0; c < m.signals; ++c) {
      acc += std::exp(kSignalScale * (sig[c] - mx)) / total;
      if (u_label < acc) {
        label = c;
        break;
      }
    }
  }
  if (u_noise < o.noise) {
    label = std::min(o.classes - 1, static_cast<int>(u_class * std::max(2, o.classes)));
  }
  *y = static_cast<float>(label);
}

enum class OutKind { kCsv, kCsvGz, kNpy };

OutKind KindOf(const std::string& path) {
  auto ends = [&](std::string_view e) {
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".csv.gz")) return OutKind::kCsvGz;
  if (ends(".csv")) return OutKind::kCsv;
  if (ends(".npy")) return OutKind::kNpy;
  Throw(ErrorCode::kInvalidArgument,
        "cannot tell the output format of '{}': use a .csv, .csv.gz or .npy name", path);
}

}  // namespace

void ValidateSynthOptions(const SynthOptions& o) {
  ESCALA_CHECK(o.rows >= 0, kInvalidArgument, "--rows must be >= 0, got {}", o.rows);
  ESCALA_CHECK(o.start_row >= 0, kInvalidArgument, "--start-row must be >= 0, got {}", o.start_row);
  ESCALA_CHECK(o.features >= 1, kInvalidArgument, "--features must be >= 1, got {}", o.features);
  ESCALA_CHECK(o.informative >= 1 && o.informative <= o.features, kInvalidArgument,
               "--informative must be in [1, features={}], got {}", o.features, o.informative);
  ESCALA_CHECK(o.task == SynthTask::kRegression || (o.classes >= 2 && o.classes <= 1000),
               kInvalidArgument, "--classes must be in [2, 1000], got {}", o.classes);
  ESCALA_CHECK(o.noise >= 0 && (o.task == SynthTask::kRegression || o.noise <= 1), kInvalidArgument,
               "--noise must be a fraction in [0, 1] for classification (>= 0 for regression), "
               "got {}",
               o.noise);
}

void GenerateSynthetic(const SynthOptions& options, std::int64_t first, MatrixView<float> features,
                       std::span<float> labels) {
  ValidateSynthOptions(options);
  ESCALA_CHECK(features.cols() == options.features, kInvalidArgument,
               "GenerateSynthetic: {} columns for {} features", features.cols(), options.features);
  ESCALA_CHECK(static_cast<std::int64_t>(labels.size()) == features.rows(), kInvalidArgument,
               "GenerateSynthetic: {} labels for {} rows", labels.size(), features.rows());
  const Model m = MakeModel(options);
  ParallelFor(static_cast<std::size_t>(features.rows()), 1024, [&](std::size_t b, std::size_t e) {
    std::vector<double> z(static_cast<std::size_t>(m.k));
    for (std::size_t i = b; i < e; ++i) {
      const auto row = static_cast<std::int64_t>(i);
      GenerateRow(options, m, options.start_row + first + row, features.row(row), &labels[i],
                  z.data());
    }
  });
}

SynthWriteStats WriteSynthetic(const SynthOptions& options, const std::string& path,
                               const std::function<void(std::int64_t)>& progress) {
  ValidateSynthOptions(options);
  const OutKind kind = KindOf(path);
  const Model m = MakeModel(options);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr std::int64_t kBlock = 8192;
  const std::int64_t blocks = (options.rows + kBlock - 1) / kBlock;
  const int d = options.features;
  const bool integer_labels = options.task == SynthTask::kClassification;

  struct Token {
    std::int64_t block = 0;
    std::int64_t n = 0;
    MatrixF x;
    std::vector<float> y;
    std::string text;
    std::vector<double> z;
  };
  const int threads = NumThreads();
  std::vector<Token> tokens(static_cast<std::size_t>(threads <= 1 ? 1 : 2 * threads + 1));
  std::vector<void*> ptrs;
  for (auto& t : tokens) ptrs.push_back(&t);

  std::unique_ptr<internal::AtomicFile> csv;
  std::unique_ptr<internal::GzipWriter> gz;
  std::unique_ptr<NpyWriter> npy_x, npy_y;
  std::string labels_path;
  if (kind == OutKind::kNpy) {
    labels_path = path.substr(0, path.size() - 4) + ".labels.npy";
    npy_x = std::make_unique<NpyWriter>(path, d);
    npy_y = std::make_unique<NpyWriter>(labels_path, 0);
  } else {
    csv = std::make_unique<internal::AtomicFile>(path);
    if (kind == OutKind::kCsvGz) gz = std::make_unique<internal::GzipWriter>(csv.get(), 1);
    std::string header;
    for (int j = 0; j < d; ++j) header += fmt::format("f{},", j);
    header += "label\n";
    if (gz) {
      gz->Write(header.data(), header.size());
    } else {
      csv->Write(header.data(), header.size());
    }
  }
  std::int64_t next = 0;
  std::int64_t written = 0;
  internal::RunOrderedStages(
      ptrs,
      [&](void* p) {
        if (next >= blocks) return false;
        auto* t = static_cast<Token*>(p);
        t->block = next++;
        t->n = std::min(kBlock, options.rows - t->block * kBlock);
        return true;
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        t->x.Resize(t->n, d);
        t->y.resize(static_cast<std::size_t>(t->n));
        t->z.resize(static_cast<std::size_t>(m.k));
        const std::int64_t first = options.start_row + t->block * kBlock;
        for (std::int64_t i = 0; i < t->n; ++i) {
          GenerateRow(options, m, first + i, t->x.row(i), &t->y[static_cast<std::size_t>(i)],
                      t->z.data());
        }
        if (kind == OutKind::kNpy) return;
        // Format: the same 6-significant-digit text the values were rounded through.
        t->text.resize(static_cast<std::size_t>(t->n) * static_cast<std::size_t>(d + 1) * 16);
        char* out = t->text.data();
        for (std::int64_t i = 0; i < t->n; ++i) {
          const float* row = t->x.row(i);
          for (int j = 0; j < d; ++j) {
            out = std::to_chars(out, out + 32, static_cast<double>(row[j]),
                                std::chars_format::general, 6)
                      .ptr;
            *out++ = ',';
          }
          const float y = t->y[static_cast<std::size_t>(i)];
          if (integer_labels) {
            out = std::to_chars(out, out + 32, static_cast<int>(y)).ptr;
          } else {
            out =
                std::to_chars(out, out + 32, static_cast<double>(y), std::chars_format::general, 6)
                    .ptr;
          }
          *out++ = '\n';
        }
        t->text.resize(static_cast<std::size_t>(out - t->text.data()));
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        if (kind == OutKind::kNpy) {
          npy_x->Append(t->x.view());
          npy_y->Append(std::span<const float>(t->y));
        } else if (gz) {
          gz->Write(t->text.data(), t->text.size());
        } else {
          csv->Write(t->text.data(), t->text.size());
        }
        written += t->n;
        if (progress) progress(written);
      });
  SynthWriteStats stats;
  if (kind == OutKind::kNpy) {
    npy_x->Close();
    npy_y->Close();
    stats.bytes = std::filesystem::file_size(path) + std::filesystem::file_size(labels_path);
  } else {
    if (gz) gz->Finish();
    stats.bytes = csv->bytes_written();
    csv->Commit();
  }
  stats.rows = written;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace escala::data
