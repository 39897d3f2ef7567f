// Private NPY helpers for datasets and streams: the header of a file and reading a row range.
#ifndef ESCALA_SRC_DATA_NPY_INTERNAL_H_
#define ESCALA_SRC_DATA_NPY_INTERNAL_H_

#include <cstdint>
#include <string>

#include "escala/data/npy.h"

namespace escala::data::internal {

// Parses the header of an NPY file and checks that the file holds all of its data.
NpyHeader ReadNpyFileHeader(const std::string& path);
std::int64_t NpyItemSize(DataType dtype);
// Rows of a 1-D or 2-D array: shape[0] and the product of the rest (1 for 1-D).
std::int64_t NpyRows(const NpyHeader& h);
std::int64_t NpyCols(const NpyHeader& h);
// Reads rows [begin, begin + n) converted to float32 into dst (n x cols).
void ReadNpyRows(const std::string& path, const NpyHeader& h, std::int64_t begin, std::int64_t n,
                 float* dst);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_NPY_INTERNAL_H_
