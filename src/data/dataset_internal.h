// Private helpers shared by datasets and streams.
#ifndef ESCALA_SRC_DATA_DATASET_INTERNAL_H_
#define ESCALA_SRC_DATA_DATASET_INTERNAL_H_

#include <span>
#include <string>
#include <vector>

#include "data/csv_source.h"
#include "escala/data/dataset.h"
#include "escala/data/npy.h"

namespace escala::data::internal {

// One CSV/LIBSVM input per file range of a plan.
std::vector<CsvInput> CsvInputsFor(const Dataset& ds, const std::vector<FileRange>& plan,
                                   std::span<const std::uint64_t> data_start,
                                   std::span<const std::int64_t> data_line);
// The rows [*first, *last) of an NPY file whose first bytes lie in the range.
void NpyRowRange(const FileRange& r, const NpyHeader& h, std::int64_t* first, std::int64_t* last);
// "<stem>.labels.npy" for "<stem>.npy".
std::string NpyLabelsPath(const std::string& path);
// A dense read's columns as a table: float32 features, then its label column when it has one.
Table DenseToTable(const DenseData& d);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_DATASET_INTERNAL_H_
