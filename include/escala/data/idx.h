// IDX files: the format of MNIST and Fashion-MNIST (big-endian header: two zero bytes, a type
// code, the number of dimensions, then one 32-bit size per dimension; data in C order).
// Gzipped files are detected by their magic bytes and decompressed.
//
// Errors on malformed files name the file and the byte offset.
//
// Thread-safety: reentrant.
#ifndef ESCALA_DATA_IDX_H_
#define ESCALA_DATA_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::data {

enum class IdxType : std::uint8_t {
  kUint8 = 0x08,
  kInt8 = 0x09,
  kInt16 = 0x0B,
  kInt32 = 0x0C,
  kFloat32 = 0x0D,
  kFloat64 = 0x0E
};

struct IdxArray {
  IdxType type = IdxType::kUint8;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;  // all elements in C order, native byte order

  std::int64_t size() const;  // number of elements
  double value(std::int64_t i) const;

  // shape[0] rows x product(shape[1:]) columns (a 1-D array gives n x 1), times `scale`
  // (e.g. 1/255 for pixels).
  MatrixF ToMatrix(float scale = 1.0f) const;
  std::vector<float> ToVector() const;
};

IdxArray ReadIdx(const std::string& path);

}  // namespace escala::data

#endif  // ESCALA_DATA_IDX_H_
