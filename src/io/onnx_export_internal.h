// The parts of the ONNX exporter (src/io/onnx_export*.cc), private to it: the pipeline's ops, an
// expression's program and the model families, each translated into nodes of one graph.
#ifndef ESCALA_SRC_IO_ONNX_EXPORT_INTERNAL_H_
#define ESCALA_SRC_IO_ONNX_EXPORT_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "escala/features/expression.h"
#include "escala/features/pipeline.h"
#include "escala/models/model.h"
#include "io/onnx_graph.h"

namespace escala::io::onnx_internal {

// kFailedPrecondition: "cannot export to ONNX: <what>: <why>".
[[noreturn]] void Refuse(std::string_view what, std::string_view why);

// Adds one graph input per raw column and the pipeline's nodes; returns the float [N, F]
// features tensor the model reads.
std::string ExportPipeline(const features::Pipeline& pipeline, GraphBuilder& g);

// The value of `expr` on the [N, 1] float tensors `columns` (expr.inputs() order), as an [N, 1]
// float tensor; `zeros` makes an [N, 1] tensor of zeros (for an expression of constants).
// `step` names the pipeline step in errors.
std::string ExportExpression(const features::Expression& expr,
                             const std::vector<std::string>& columns, std::string_view step,
                             const std::function<std::string()>& zeros, GraphBuilder& g);

// log1p(x) to within a few ulps from Log: log(u) * x / (u - 1) with u = 1 + x (x where u == 1).
std::string Log1p(const std::string& x, GraphBuilder& g);
// Where(IsNaN(x), NaN, value): `value` made NaN wherever x is.
std::string NanWhere(const std::string& x, const std::string& value, GraphBuilder& g);

// The model's Predict() on the float [N, d] `features`: [N, num_outputs] (values, P(y = 1), or
// class probabilities).
std::string ExportModel(const models::Model& model, const std::string& features, GraphBuilder& g);

}  // namespace escala::io::onnx_internal

#endif  // ESCALA_SRC_IO_ONNX_EXPORT_INTERNAL_H_
