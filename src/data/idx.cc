#include "escala/data/idx.h"

#include <cstring>
#include <limits>

#include "data/input.h"
#include "escala/core/error.h"

namespace escala::data {
namespace {

int ElementSize(IdxType t) {
  switch (t) {
    case IdxType::kUint8:
    case IdxType::kInt8:
      return 1;
    case IdxType::kInt16:
      return 2;
    case IdxType::kInt32:
    case IdxType::kFloat32:
      return 4;
    case IdxType::kFloat64:
      return 8;
  }
  return 0;
}

bool ValidType(unsigned code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D ||
         code == 0x0E;
}

}  // namespace

std::int64_t IdxArray::size() const {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

double IdxArray::value(std::int64_t i) const {
  const std::byte* p = data.data() + i * ElementSize(type);
  switch (type) {
    case IdxType::kUint8:
      return static_cast<double>(static_cast<std::uint8_t>(*p));
    case IdxType::kInt8:
      return static_cast<double>(static_cast<std::int8_t>(*p));
    case IdxType::kInt16: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case IdxType::kInt32: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case IdxType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case IdxType::kFloat64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
  return 0;
}

MatrixF IdxArray::ToMatrix(float scale) const {
  const std::int64_t rows = shape.empty() ? 0 : shape[0];
  const std::int64_t cols = rows == 0 ? 0 : size() / rows;
  MatrixF m(rows, shape.size() <= 1 ? 1 : cols);
  float* out = m.data();
  const std::int64_t n = m.size();
  if (type == IdxType::kUint8) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]) * scale;
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(value(i)) * scale;
  }
  return m;
}

std::vector<float> IdxArray::ToVector() const {
  std::vector<float> v(static_cast<std::size_t>(size()));
  for (std::int64_t i = 0; i < size(); ++i)
    v[static_cast<std::size_t>(i)] = static_cast<float>(value(i));
  return v;
}

IdxArray ReadIdx(const std::string& path) {
  const internal::FileBytes file = internal::FileBytes::Open(path);
  const std::string_view bytes = file.view();
  const std::string where = file.compressed() ? " (decompressed)" : "";
  auto fail = [&](std::size_t offset, const std::string& what) {
    Throw(ErrorCode::kInvalidArgument, "{}: byte offset {}{}: {}", path, offset, where, what);
  };
  if (bytes.empty()) fail(0, "empty file");
  if (bytes.size() < 4) {
    fail(bytes.size(),
         fmt::format("truncated IDX header: {} bytes, the magic number needs 4", bytes.size()));
  }
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  if (u[0] != 0 || u[1] != 0) {
    fail(0, fmt::format("not an IDX file: the magic number must start with two zero bytes, "
                        "found {:02x} {:02x}",
                        u[0], u[1]));
  }
  if (!ValidType(u[2])) {
    fail(2, fmt::format("unsupported IDX element type 0x{:02x} (expected 0x08 uint8, 0x09 int8, "
                        "0x0B int16, 0x0C int32, 0x0D float32 or 0x0E float64)",
                        u[2]));
  }
  const int ndim = u[3];
  if (ndim == 0) fail(3, "an IDX array needs at least one dimension");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndim);
  if (bytes.size() < header) {
    fail(bytes.size(), fmt::format("truncated IDX header: {} dimensions need {} header bytes, "
                                   "the file has {}",
                                   ndim, header, bytes.size()));
  }
  IdxArray a;
  a.type = static_cast<IdxType>(u[2]);
  std::int64_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    const unsigned char* p = u + 4 + 4 * d;
    const std::int64_t dim = (std::int64_t{p[0]} << 24) | (std::int64_t{p[1]} << 16) |
                             (std::int64_t{p[2]} << 8) | std::int64_t{p[3]};
    a.shape.push_back(dim);
    if (dim != 0 && count > std::numeric_limits<std::int64_t>::max() / 16 / dim) {
      fail(4 + 4 * static_cast<std::size_t>(d), "dimensions too large");
    }
    count *= dim;
  }
  const int es = ElementSize(a.type);
  const auto need = static_cast<std::size_t>(count * es);
  const std::size_t have = bytes.size() - header;
  if (have < need) {
    fail(bytes.size(), fmt::format("truncated IDX data: shape needs {} bytes after the {}-byte "
                                   "header, the file has {}",
                                   need, header, have));
  }
  if (have > need) {
    fail(header + need, fmt::format("{} unexpected bytes after the IDX data", have - need));
  }
  a.data.resize(need);
  // A zero dimension makes an empty array, whose data() may be null: memcpy must not see it.
  if (need > 0) std::memcpy(a.data.data(), bytes.data() + header, need);
  // IDX stores multi-byte elements big-endian.
  if (es > 1) {
    for (std::size_t i = 0; i < need; i += static_cast<std::size_t>(es)) {
      std::byte* e = a.data.data() + i;
      for (int k = 0; k < es / 2; ++k) std::swap(e[k], e[es - 1 - k]);
    }
  }
  return a;
}

}  // namespace escala::data
