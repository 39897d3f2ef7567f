// Labels of a table: which task a label column calls for, its classes (merged over all ranks),
// and its encoding as floats for the trainers.
#ifndef ESCALA_TRAIN_LABELS_H_
#define ESCALA_TRAIN_LABELS_H_

#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/table.h"
#include "escala/features/sketches.h"
#include "escala/models/model.h"

namespace escala::train {

// Class labels of a classification label column, merged over all ranks: sorted strings
// (categorical) or numbers in increasing order, formatted as text.
std::vector<std::string> ClassNames(const data::Table& table, const std::string& label,
                                    Communicator& comm);

// Label values as floats: class indices for classification (class_names non-empty), the numbers
// for regression. Throws kInvalidArgument for a missing label or an unknown class, naming the row.
std::vector<float> EncodeLabels(const data::Table& table, const std::string& label,
                                const std::vector<std::string>& class_names);

// Logs a warning (rank 0) when a label looks like a header or count line read as data: a few
// non-numeric values among numbers, or classes seen once among many rows.
void WarnIfLabelLooksWrong(const data::Table& table, const std::string& label, Communicator& comm);

// The task for model `kind` and `task` ("auto", "regression", "binary", "multiclass"; only an
// mlp takes one, the linear kinds imply theirs) on this label, and its classes (empty for
// regression). "auto": a categorical label, or one with at most 20 distinct integer values, is a
// class label; anything else a regression target. Throws kInvalidArgument naming the label when
// the data cannot train that task (one class, a categorical regression target...).
models::Task ResolveTask(std::string_view kind, std::string_view task, const data::Table& table,
                         const std::string& label, Communicator& comm,
                         std::vector<std::string>* classes);

// A label column over a shard read in chunks: the rows, and the label's distinct values as a
// one-column table, on which ResolveTask decides as it would on the whole column (at most 65537
// values are kept, and a fractional one whenever there is one). Missing labels are not values.
struct LabelScan {
  data::Table distinct;
  std::int64_t rows = 0;
  features::NumericSummary values;  // a numeric label's moments (this rank's)
};
LabelScan ScanLabels(data::TableChunks& chunks, const std::string& label);

// The chunks of `inner` without the rows whose label is missing (the table path's
// drop_missing_labels), counting those it drops.
class LabelledRows final : public data::TableChunks {
 public:
  LabelledRows(data::TableChunks& inner, std::string label)
      : inner_(inner), label_(std::move(label)) {}
  const data::Schema& schema() const override { return inner_.schema(); }
  void ForEachChunk(const std::function<void(const data::Table&)>& visit) override;
  // Rows dropped by the last pass.
  std::int64_t dropped() const { return dropped_; }

 private:
  data::TableChunks& inner_;
  std::string label_;
  std::int64_t dropped_ = 0;
};

}  // namespace escala::train

#endif  // ESCALA_TRAIN_LABELS_H_
