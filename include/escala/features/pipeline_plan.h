// The compiled plan of a fitted pipeline, as plain values: the slots (named columns of values,
// numeric or categorical) and the ops over them, in the order Transform() runs them. It is what
// tools that translate a pipeline into another form read (the ONNX exporter,
// escala/io/onnx_export.h), so that they translate what Transform() runs rather than re-deriving
// it from the spec.
//
// Semantics of each op (x is the slot `in`, changed in place unless an output is named):
//   kInputNum   slot `out` = raw input `input` as float32 (missing: NaN)
//   kInputCat   slot `out` = raw input `input`'s category (missing: the missing category)
//   kIndicator  `out` = 1 where `in` is missing (NaN, or the missing category), else 0
//   kImputeNum  x = a where x is NaN
//   kImputeCat  x = the category `fill` where x is missing
//   kAffine     x = (x - a) * b + c
//   kClip       x = min(max(x, a), b), NaN kept
//   kUnary      x = fn(x)
//   kOneHot     `outs`[k] = 1 where x is categories[k] (kMissingCategory: missing), else 0; an
//               unknown category: all 0 (kIgnore), outs[other_index] = 1 (kOther), an error
//   kOrdinal    `outs`[0] = k where x is categories[k]; an unknown category: a (kUseValue), an
//               error (kError)
//   kHash       `outs` = signed feature hashing of the categories of `ins` (escala's own hash)
//   kBucketize  x = the number of boundaries <= x, NaN kept
//   kPoly       `outs`[t] = product of the slots ins[terms[t][j]]
//   kExpr       `out` = expr evaluated on the slots `ins` (in expr->inputs() order)
//
// Thread-safety: a plan is a value; Pipeline::Plan() is const.
#ifndef ESCALA_FEATURES_PIPELINE_PLAN_H_
#define ESCALA_FEATURES_PIPELINE_PLAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "escala/features/expression.h"

namespace escala::features {

// The category name that stands for "missing" in an encoder's categories.
inline constexpr char kMissingCategory[] = "<missing>";

struct PlanSlot {
  std::string name;
  bool categorical = false;
};

struct PlanOp {
  enum class Kind {
    kInputNum,
    kInputCat,
    kIndicator,
    kImputeNum,
    kImputeCat,
    kAffine,
    kClip,
    kUnary,
    kOneHot,
    kOrdinal,
    kHash,
    kBucketize,
    kPoly,
    kExpr
  };
  enum class Unary { kLog1p, kLog, kSqrt, kAbs };
  enum class Unknown { kError, kIgnore, kOther, kUseValue };

  Kind kind = Kind::kInputNum;
  std::string step;  // the step's spec text, "input" for the input ops
  int input = -1;    // kInputNum, kInputCat: the raw input's index in input_schema()
  int in = -1;
  int out = -1;
  std::vector<int> ins;
  std::vector<int> outs;
  float a = 0, b = 0, c = 0;
  Unary fn = Unary::kLog1p;
  std::string fill;
  std::vector<std::string> categories;
  int other_index = -1;
  Unknown unknown = Unknown::kError;
  std::vector<float> boundaries;
  std::vector<std::vector<int>> terms;
  std::shared_ptr<const Expression> expr;
};

struct PipelinePlan {
  std::vector<PlanSlot> slots;
  std::vector<PlanOp> ops;
  std::vector<int> outputs;  // the slots of the output features, in output_names() order
  // NaN reaching the output passes (else Transform() refuses it).
  bool keep_missing = false;
};

}  // namespace escala::features

#endif  // ESCALA_FEATURES_PIPELINE_PLAN_H_
