// Private LIBSVM reading over CSV-style inputs (whole files or byte ranges), for datasets.
#ifndef ESCALA_SRC_DATA_LIBSVM_INTERNAL_H_
#define ESCALA_SRC_DATA_LIBSVM_INTERNAL_H_

#include <vector>

#include "data/csv_source.h"
#include "escala/data/csr.h"
#include "escala/data/libsvm.h"
#include "escala/data/read_report.h"

namespace escala::data::internal {

// Line-splitting options (no quotes, no header) for LIBSVM inputs.
CsvOptions LibsvmLineOptions();

// Parses the inputs in parallel into *out (replacing it); skipped rows go to *report.
// expected_bytes (0 if unknown) sizes the output once.
void ReadLibsvmInputs(std::vector<CsvInput> inputs, const LibsvmOptions& options, bool row_ids,
                      std::uint64_t expected_bytes, SparseData* out, ReadReport* report);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_LIBSVM_INTERNAL_H_
