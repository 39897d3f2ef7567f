// Open Inference Protocol requests, decode path: a serialized inference.ModelInferRequest is
// parsed, then validated and decoded as the server does (DecodeRequest, SelectOutputs) against
// two model signatures: mixed numeric and categorical columns, and all-numeric (which also
// accepts the "features" matrix form). Every decoded value is read back, so that a view past the
// end of a tensor is reported by the address sanitizer.
#include <cstdint>
#include <string_view>

#include "fuzz_proto.h"
#include "fuzz_util.h"
#include "serving/codec.h"

namespace {

using escala::data::DataType;
using escala::features::RawBatch;
using escala::features::RawColumn;
using escala::serving::internal::ModelSignature;

ModelSignature MixedSignature() {
  ModelSignature sig;
  sig.inputs = escala::data::Schema({{"x", DataType::kFloat32, ""},
                                     {"y", DataType::kFloat64, ""},
                                     {"n", DataType::kInt64, ""},
                                     {"color", DataType::kCategorical, ""}});
  sig.task = escala::models::Task::kMulticlass;
  sig.num_classes = 3;
  sig.class_names = {"a", "b", "c"};
  sig.outputs = {{"probabilities", "FP32"}, {"label", "BYTES"}, {"class_index", "INT64"}};
  return sig;
}

ModelSignature NumericSignature() {
  ModelSignature sig;
  sig.inputs = escala::data::Schema({{"f0", DataType::kFloat32, ""},
                                     {"f1", DataType::kFloat32, ""},
                                     {"f2", DataType::kFloat32, ""}});
  sig.matrix_input = true;
  sig.task = escala::models::Task::kRegression;
  sig.outputs = {{"prediction", "FP32"}};
  return sig;
}

// Reads row `i` of `c` the way the pipeline would; returns something so it is not optimised out.
double Touch(const RawColumn& c, std::int64_t i) {
  const std::int64_t at = i * c.stride;
  double v = c.missing != nullptr ? c.missing[i] : 0;
  switch (c.kind) {
    case RawColumn::Kind::kFloat32:
      return v + static_cast<const float*>(c.values)[at];
    case RawColumn::Kind::kFloat64:
      return v + static_cast<const double*>(c.values)[at];
    case RawColumn::Kind::kInt64:
      return v + static_cast<double>(static_cast<const std::int64_t*>(c.values)[at]);
    case RawColumn::Kind::kInt32:
    case RawColumn::Kind::kCodes:
      return v + static_cast<const std::int32_t*>(c.values)[at];
    case RawColumn::Kind::kStrings: {
      const std::string_view s = static_cast<const std::string_view*>(c.values)[at];
      for (const char ch : s) v += ch;
      return v;
    }
  }
  return v;
}

void DecodeAndTouch(const inference::ModelInferRequest& request, const ModelSignature& sig) {
  escala::serving::internal::DecodeScratch scratch;
  escala::fuzz::ExpectOnlyEscalaErrors([&] {
    const RawBatch batch = escala::serving::internal::DecodeRequest(request, sig, scratch);
    volatile double sink = 0;
    for (const RawColumn& c : batch.columns) {
      for (std::int64_t i = 0; i < batch.rows; ++i) sink = sink + Touch(c, i);
    }
  });
  escala::fuzz::ExpectOnlyEscalaErrors(
      [&] { escala::serving::internal::SelectOutputs(request, sig); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  escala::fuzz::SilenceProtobufLog();
  static const ModelSignature mixed = MixedSignature();
  static const ModelSignature numeric = NumericSignature();
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  DecodeAndTouch(request, mixed);
  DecodeAndTouch(request, numeric);
  return 0;
}
