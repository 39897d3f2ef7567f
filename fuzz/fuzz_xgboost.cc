// XGBoost model files (JSON and UBJSON) read into a tree ensemble: the parser, the checks of
// every array against the others, the tree walk from the root. A file that is accepted must then
// predict: a few rows (zeros, NaN, large values, category codes) go through every tree.
#include <cmath>
#include <cstdint>
#include <string>

#include "escala/models/xgboost.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const auto bytes = fuzz::AsText(data, size);
  fuzz::ExpectOnlyEscalaErrors([&] {
    const models::XgboostModel m = models::ParseXgboostModel(bytes, "fuzz.json");
    const std::int64_t d = m.ensemble->num_features();
    if (d > 4096) return;  // a huge declared width: parsing it was the point
    MatrixF x(4, d), y(4, m.ensemble->num_outputs());
    for (std::int64_t j = 0; j < d; ++j) {
      x(0, j) = 0.0f;
      x(1, j) = NAN;
      x(2, j) = 1e30f;
      x(3, j) = static_cast<float>(j % 7);
    }
    auto ws = m.ensemble->NewWorkspace();
    m.ensemble->Logits(std::as_const(x).view(), y.view(), *ws);
  });
  return 0;
}
