// Feature expressions ("ratio = a / (b + 1)"): the parser, then evaluation on a few rows.
#include <cstdint>
#include <vector>

#include "escala/features/expression.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const auto text = fuzz::AsText(data, size);
  fuzz::ExpectOnlyEscalaErrors([&] {
    const auto e = features::Expression::Parse(text, /*require_target=*/false);
    // Values that exercise division by zero, NaN and signs.
    const std::vector<float> col = {0.0f, -1.5f, 2.0f, __builtin_nanf("")};
    std::vector<const float*> cols(e.inputs().size(), col.data());
    std::vector<float> out(col.size());
    features::ExpressionScratch scratch;
    e.Evaluate(cols, static_cast<std::int64_t>(col.size()), out.data(), scratch);
  });
  fuzz::ExpectOnlyEscalaErrors([&] { features::Expression::Parse(text, true); });
  return 0;
}
