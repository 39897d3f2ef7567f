// Small, fully-fitted model bundles for serving and scoring tests, built in memory.
#ifndef ESCALA_TESTS_TEST_UTIL_BUNDLES_H_
#define ESCALA_TESTS_TEST_UTIL_BUNDLES_H_

#include <memory>
#include <string>

#include "escala/io/bundle.h"

namespace escala::testing {

// A logistic model over `features` numeric columns f0.. (standardised), trained on synthetic
// data; every input is numeric, so the "features" matrix form is accepted.
std::shared_ptr<io::ModelBundle> NumericLogisticBundle(int features = 8, std::uint64_t seed = 1);

// A softmax model over a numeric column "x", a numeric column "y" and a categorical column
// "color" (red, green, blue), classes "a", "b", "c".
std::shared_ptr<io::ModelBundle> MixedSoftmaxBundle(std::uint64_t seed = 1);

// Boosted trees (binary, classes "no", "yes") over a numeric column "x" with missing values, a
// numeric "y" and a categorical "color", through the trees' default pipeline.
std::shared_ptr<io::ModelBundle> MixedTreesBundle(std::uint64_t seed = 1);

// A linear regression over "x" and "y".
std::shared_ptr<io::ModelBundle> RegressionBundle();

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_BUNDLES_H_
