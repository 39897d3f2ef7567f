// ONNX models loaded by escala's runtime (escala/models/onnx.h): the protobuf parse, escala's own
// checks (initializers, inputs, cycles), libonnx's checker and shape inference, opset conversion,
// kernel construction from attributes and the one-row run at load. A graph that loads must then
// run: a few rows (zeros, NaN, large values, small integers) through OnnxModel when it reads as
// a model.
#include <cmath>
#include <cstdint>
#include <string>

#include "escala/core/matrix.h"
#include "escala/models/onnx.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const auto bytes = fuzz::AsText(data, size);
  fuzz::ExpectOnlyEscalaErrors([&] {
    const auto graph = models::OnnxGraph::Load(bytes, "fuzz.onnx");
    const models::OnnxModel model(graph);
    const std::int64_t d = model.num_features();
    if (d > 4096) return;
    MatrixF x(4, d), y(4, model.num_outputs());
    for (std::int64_t j = 0; j < d; ++j) {
      x(0, j) = 0.0f;
      x(1, j) = NAN;
      x(2, j) = 1e30f;
      x(3, j) = static_cast<float>(j % 7);
    }
    auto ws = model.NewWorkspace();
    model.Logits(std::as_const(x).view(), y.view(), *ws);
  });
  return 0;
}
