// Exporting a model bundle to ONNX: the fitted feature pipeline and the model as one ONNX graph
// that computes what io::Predictor::Predict computes, for runtimes other than escala's.
//
// The graph has one input per raw column of the bundle's input schema, named as the column, of
// shape [N, 1]: tensor(float) for a numeric column (NaN: missing), tensor(string) for a
// categorical one (the empty string: missing). Its outputs:
//   regression      "prediction"     float [N, 1]  (the target scaling applied)
//   classification  "probabilities"  float [N, C]  (binary: [1 - p, p])
//                   "label"          string [N]    (the bundle's class name: argmax, or
//                                                   p >= 0.5 for binary, as Predictor::Classes)
// It uses only the default-domain and ai.onnx.ml operators listed in docs/serving.md ("Exporting to
// ONNX"), at the default-domain opset asked for (13..17) and ai.onnx.ml opset 3.
//
// What differs from Predict: where Predict refuses a row (an unseen category under
// unknown=error, a missing or infinite feature the pipeline was not fitted to keep), the graph
// computes a value (the unseen category encodes as no category; NaN flows on). Numbers match
// Predict to float32 rounding (GEMMs and sums in another order).
//
// Errors: kInvalidArgument for an opset out of range; kFailedPrecondition naming the pipeline step,
// expression or model that cannot be expressed with those operators (hash(), the % operator, an
// unknown model kind), and for a graph that libonnx's checker or strict shape inference rejects.
// The file is written atomically (WriteFileAtomic): on any error no file is written.
//
// Thread-safety: the functions read the bundle only; concurrent calls are safe.
#ifndef ESCALA_IO_ONNX_EXPORT_H_
#define ESCALA_IO_ONNX_EXPORT_H_

#include <string>

#include "escala/io/bundle.h"

namespace escala::io {

struct OnnxExportOptions {
  // The default domain's opset (ai.onnx), 13 to 17.
  int opset = 17;
  // The graph's name in the file; empty: the bundle's name, or "escala".
  std::string graph_name;
};

inline constexpr int kOnnxMinOpset = 13;
inline constexpr int kOnnxMaxOpset = 17;

// The serialized onnx.ModelProto of `bundle`, checked (onnx::checker::check_model and strict
// shape inference) before it is returned.
std::string ExportOnnx(const ModelBundle& bundle, const OnnxExportOptions& options = {});

// ExportOnnx() written atomically to `path`.
void ExportOnnxFile(const ModelBundle& bundle, const std::string& path,
                    const OnnxExportOptions& options = {});

}  // namespace escala::io

#endif  // ESCALA_IO_ONNX_EXPORT_H_
