#include "escala/data/dense.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "escala/core/error.h"

namespace escala::data {

std::vector<std::string> ResolveFeatures(const Schema& schema, const DenseSpec& spec) {
  if (!spec.label.empty()) {
    const int i = schema.Index(spec.label);
    ESCALA_CHECK(IsNumeric(schema.field(i).type), kInvalidArgument,
                 "label column '{}' is categorical; a numeric label is needed (encode the "
                 "classes as numbers, or give the column type float32)",
                 spec.label);
  }
  for (const auto& name : spec.exclude) schema.Index(name);
  std::vector<std::string> features;
  if (spec.features.empty()) {
    const std::unordered_set<std::string_view> excluded(spec.exclude.begin(), spec.exclude.end());
    for (const auto& f : schema.fields()) {
      if (f.name == spec.label || excluded.count(f.name) > 0) continue;
      features.push_back(f.name);
    }
  } else {
    features = spec.features;
  }
  std::unordered_set<std::string_view> listed;
  listed.reserve(features.size());
  for (std::size_t k = 0; k < features.size(); ++k) {
    const int i = schema.Index(features[k]);
    const std::string& why = schema.field(i).evidence;
    ESCALA_CHECK(
        IsNumeric(schema.field(i).type), kInvalidArgument,
        "column '{}' is categorical{}; exclude it, give its type (--column-type {}:float32 "
        "with --on-error skip), or encode it with a feature pipeline",
        features[k], why.empty() ? "" : " (first non-numeric value at " + why + ")", features[k]);
    ESCALA_CHECK(features[k] != spec.label, kInvalidArgument,
                 "column '{}' is both the label and a feature", features[k]);
    ESCALA_CHECK(listed.insert(features[k]).second, kInvalidArgument,
                 "feature column '{}' is listed twice", features[k]);
  }
  return features;
}

DenseData ToDense(const Table& table, const DenseSpec& spec) {
  DenseData out;
  out.feature_names = ResolveFeatures(table.schema(), spec);
  CopyColumnsToMatrix(table, out.feature_names, &out.features);
  if (!spec.label.empty()) {
    out.label_name = spec.label;
    out.labels = ColumnToFloat(table, spec.label);
  }
  out.row_ids.assign(table.row_ids().begin(), table.row_ids().end());
  return out;
}

}  // namespace escala::data
