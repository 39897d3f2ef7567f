// Small synthetic datasets for trainer tests, deterministic by seed.
#ifndef ESCALA_TESTS_TEST_UTIL_SYNTHETIC_H_
#define ESCALA_TESTS_TEST_UTIL_SYNTHETIC_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::testing {

struct SyntheticData {
  MatrixF x;
  std::vector<float> y;
};

// classes == 0: regression y = x.w + noise; classes == 2: y ~ Bernoulli(sigmoid(x.w));
// classes > 2: y = argmax(x W + gumbel noise).
inline SyntheticData MakeSynthetic(std::int64_t n, std::int64_t d, int classes, std::uint64_t seed,
                                   float noise = 0.5f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(1e-6f, 1.0f);
  const int k = classes > 2 ? classes : 1;
  std::vector<float> w(static_cast<std::size_t>(d * k));
  for (float& v : w) v = g(rng);
  SyntheticData s;
  s.x.Resize(n, d);
  s.y.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) s.x(i, j) = g(rng);
    std::vector<float> z(static_cast<std::size_t>(k), 0.0f);
    for (int c = 0; c < k; ++c) {
      for (std::int64_t j = 0; j < d; ++j)
        z[static_cast<std::size_t>(c)] += s.x(i, j) * w[static_cast<std::size_t>(j * k + c)];
    }
    float& y = s.y[static_cast<std::size_t>(i)];
    if (classes == 0) {
      y = z[0] + noise * g(rng);
    } else if (classes == 2) {
      y = u(rng) < 1.0f / (1.0f + std::exp(-z[0])) ? 1.0f : 0.0f;
    } else {
      int best = 0;
      float bv = -1e30f;
      for (int c = 0; c < k; ++c) {
        const float v = z[static_cast<std::size_t>(c)] - noise * std::log(-std::log(u(rng)));
        if (v > bv) {
          bv = v;
          best = c;
        }
      }
      y = static_cast<float>(best);
    }
  }
  return s;
}

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_SYNTHETIC_H_
