// Open Inference Protocol tensors <-> escala batches: request validation and decoding, response
// encoding, model metadata. Protobuf only (no gRPC headers), so it is unit-tested directly.
#ifndef ESCALA_SRC_SERVING_CODEC_H_
#define ESCALA_SRC_SERVING_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/features/pipeline.h"
#include "escala/io/bundle.h"
#include "inference/open_inference.pb.h"

namespace escala::serving::internal {

// The tensors a served model accepts and produces.
struct ModelSignature {
  data::Schema inputs;
  bool matrix_input = false;  // every input numeric: "features" [-1, n] is accepted
  models::Task task = models::Task::kBinary;
  std::int64_t num_classes = 0;
  std::vector<std::string> class_names;                      // index -> label text
  std::vector<std::pair<std::string, std::string>> outputs;  // name, datatype
  // Columns of the "contributions" output (TreeSHAP, trees only), 0 when the model has none.
  std::int64_t contribution_width = 0;

  // What a model trained elsewhere keeps of its own signature (an ONNX graph; empty otherwise):
  // metadata reports its inputs, its outputs go by its names, and its one input's name is
  // accepted for the matrix form besides "features".
  struct TensorInfo {
    std::string name, datatype;
    std::vector<std::int64_t> shape;
  };
  std::string platform = "escala_bundle";
  std::vector<TensorInfo> graph_inputs;
  std::string matrix_name;
  std::vector<std::pair<std::string, std::string>> output_names;  // canonical -> wire name
  std::vector<std::int64_t> prediction_shape = {-1};              // of the "prediction" output
  std::vector<std::int64_t> label_values;  // a graph's int64 labels per class; empty: BYTES

  // The wire name of a canonical output ("prediction", "probabilities", "label"), and back.
  const std::string& WireName(const std::string& canonical) const;
  const std::string& Canonical(const std::string& wire) const;
};

ModelSignature SignatureOf(const io::ModelBundle& bundle);

void FillMetadata(const ModelSignature& sig, const std::string& name,
                  const std::vector<std::string>& versions, inference::ModelMetadataResponse* out);

// Per-call memory for decoded views (string views of BYTES elements, aligned copies, masks).
struct DecodeScratch {
  std::vector<std::vector<std::string_view>> strings;
  std::vector<std::vector<std::uint8_t>> missing;
  std::vector<std::vector<float>> aligned;
};

inline constexpr std::int64_t kMaxRows = 1 << 22;

// Validates the request's inputs against the signature and views them as a RawBatch (no copy of
// numeric data unless misaligned). Throws escala::Error(kInvalidArgument) naming the field:
// "inputs[1] ('island'): datatype FP32 but the column is categorical (send BYTES)".
features::RawBatch DecodeRequest(const inference::ModelInferRequest& request,
                                 const ModelSignature& sig, DecodeScratch& scratch);

struct OutputSelection {
  bool probabilities = false;
  bool label = false;
  bool class_index = false;
  bool prediction = false;
  bool contributions = false;
};
// Empty request outputs: all of them but contributions, computed only when asked for. Unknown
// names: kInvalidArgument.
OutputSelection SelectOutputs(const inference::ModelInferRequest& request,
                              const ModelSignature& sig);

// Appends the selected outputs for `predictions` (Predictor output: values, P(y=1) or class
// probabilities) as raw_output_contents; `contributions` (rows x sig.contribution_width) when
// selected.
void EncodeOutputs(const ModelSignature& sig, const OutputSelection& sel,
                   ConstMatrixViewF predictions, inference::ModelInferResponse* response,
                   const MatrixF* contributions = nullptr);

// Element size of a datatype name (0 for BYTES, -1 for unknown).
int ElementSize(std::string_view datatype);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_CODEC_H_
