// Open Inference Protocol REST requests: the bytes up to the first NUL are the JSON, the rest the
// binary tensor data (Triton's extension). Parsed as the REST API does (ParseInferRequest), then
// validated and decoded as the server does against a mixed numeric and categorical signature, and
// a response with every output datatype is printed back both ways.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "serving/codec.h"
#include "serving/json_codec.h"

namespace {

using escala::data::DataType;
using escala::serving::internal::ModelSignature;

ModelSignature MixedSignature() {
  ModelSignature sig;
  sig.inputs = escala::data::Schema({{"x", DataType::kFloat32, ""},
                                     {"n", DataType::kInt64, ""},
                                     {"color", DataType::kCategorical, ""}});
  sig.task = escala::models::Task::kBinary;
  sig.num_classes = 2;
  sig.class_names = {"no", "yes"};
  sig.outputs = {{"probabilities", "FP32"}, {"label", "BYTES"}, {"class_index", "INT64"}};
  return sig;
}

// The parsed request's tensors as a response (raw contents for the first half), printed.
void PrintBack(const inference::ModelInferRequest& request) {
  inference::ModelInferResponse response;
  for (int i = 0; i < request.inputs_size(); ++i) {
    auto* o = response.add_outputs();
    o->set_name(request.inputs(i).name());
    o->set_datatype(request.inputs(i).datatype());
    *o->mutable_shape() = request.inputs(i).shape();
    *o->mutable_contents() = request.inputs(i).contents();
  }
  (void)escala::serving::internal::InferResponseToJson(response);
  (void)escala::serving::internal::InferResponseToBody(response, request);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ModelSignature mixed = MixedSignature();
  const std::string_view text = escala::fuzz::AsText(data, size);
  const std::size_t nul = text.find('\0');
  const std::string_view json = text.substr(0, nul);
  const std::string_view binary = nul == std::string_view::npos ? "" : text.substr(nul + 1);
  escala::fuzz::ExpectOnlyEscalaErrors([&] {
    inference::ModelInferRequest request;
    escala::serving::internal::ParseInferRequest(json, binary, &request);
    PrintBack(request);
    escala::serving::internal::DecodeScratch scratch;
    (void)escala::serving::internal::DecodeRequest(request, mixed, scratch);
    (void)escala::serving::internal::SelectOutputs(request, mixed);
  });
  return 0;
}
