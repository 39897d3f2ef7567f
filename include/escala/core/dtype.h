// Element types that cross module boundaries: collective buffers, NPY arrays, tensors.
#ifndef ESCALA_CORE_DTYPE_H_
#define ESCALA_CORE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace escala {

enum class DType : std::uint8_t { kFloat32, kFloat64, kInt64, kInt32, kUInt8 };

constexpr std::size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kInt64:
      return 8;
    case DType::kInt32:
      return 4;
    case DType::kUInt8:
      return 1;
  }
  return 0;
}

// "float32", "float64", "int64", "int32", "uint8".
std::string_view DTypeName(DType t);

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<std::int64_t> {
  static constexpr DType value = DType::kInt64;
};
template <>
struct DTypeOf<std::int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<std::uint8_t> {
  static constexpr DType value = DType::kUInt8;
};

template <typename T>
inline constexpr DType kDTypeOf = DTypeOf<T>::value;

}  // namespace escala

#endif  // ESCALA_CORE_DTYPE_H_
