#include "escala/data/npy.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <limits>
#include <unistd.h>

#include "data/input.h"
#include "data/npy_internal.h"
#include "escala/core/error.h"

namespace escala::data {
namespace internal {
namespace {

static_assert(std::endian::native == std::endian::little, "NPY support assumes little-endian");

constexpr char kMagic[] = "\x93NUMPY";
// Headers describe dtype, order and shape in a few hundred bytes; this bounds a hostile one.
constexpr std::size_t kMaxHeaderBytes = std::size_t{1} << 20;
constexpr std::size_t kMagicLen = 6;

[[noreturn]] void Bad(const std::string& name, std::size_t offset, std::string_view what) {
  Throw(ErrorCode::kInvalidArgument, "{}: byte offset {}: {}", name, offset, what);
}

// A minimal parser for the Python dict literal of an NPY header.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::size_t base, const std::string& name)
      : t_(text), base_(base), name_(name) {}

  NpyHeader Parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    Skip();
    Expect('{');
    for (;;) {
      Skip();
      if (Peek() == '}') break;
      const std::size_t key_at = i_;
      const std::string key = String();
      Skip();
      Expect(':');
      Skip();
      if (key == "descr") {
        const std::size_t at = i_;
        const std::string descr = String();
        h.dtype = Dtype(descr, at);
        have_descr = true;
      } else if (key == "fortran_order") {
        const std::size_t at = i_;
        if (Word("True")) {
          Bad(name_, base_ + at, "Fortran-ordered arrays are not supported (save with C order)");
        }
        if (!Word("False")) Bad(name_, base_ + at, "fortran_order must be True or False");
        have_order = true;
      } else if (key == "shape") {
        h.shape = Tuple();
        have_shape = true;
      } else {
        Bad(name_, base_ + key_at, fmt::format("unexpected header key '{}'", key));
      }
      Skip();
      if (Peek() == ',') {
        ++i_;
        continue;
      }
      Skip();
      if (Peek() != '}') Bad(name_, base_ + i_, "expected ',' or '}' in the header dictionary");
    }
    if (!have_descr || !have_order || !have_shape) {
      Bad(name_, base_, "header dictionary lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return h;
  }

 private:
  char Peek() const { return i_ < t_.size() ? t_[i_] : '\0'; }
  void Skip() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t')) ++i_;
  }
  void Expect(char c) {
    if (Peek() != c) Bad(name_, base_ + i_, fmt::format("expected '{}' in the header", c));
    ++i_;
  }
  bool Word(std::string_view w) {
    if (t_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  std::string String() {
    const char q = Peek();
    if (q != '\'' && q != '"') Bad(name_, base_ + i_, "expected a quoted string in the header");
    const std::size_t end = t_.find(q, i_ + 1);
    if (end == std::string_view::npos) Bad(name_, base_ + i_, "unterminated string in the header");
    std::string s(t_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return s;
  }
  std::vector<std::int64_t> Tuple() {
    Expect('(');
    std::vector<std::int64_t> dims;
    for (;;) {
      Skip();
      if (Peek() == ')') {
        ++i_;
        return dims;
      }
      const std::size_t at = i_;
      std::int64_t v = 0;
      if (Peek() < '0' || Peek() > '9') Bad(name_, base_ + at, "expected a dimension in 'shape'");
      while (Peek() >= '0' && Peek() <= '9') {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) {
          Bad(name_, base_ + at, "dimension too large");
        }
        v = v * 10 + (Peek() - '0');
        ++i_;
      }
      if (Peek() == 'L') ++i_;
      dims.push_back(v);
      Skip();
      if (Peek() == ',') {
        ++i_;
      } else if (Peek() != ')') {
        Bad(name_, base_ + i_, "expected ',' or ')' in 'shape'");
      }
    }
  }
  DataType Dtype(const std::string& d, std::size_t at) {
    if (d.size() >= 2 && d[0] == '>' && d != ">i1" && d != ">u1") {
      Bad(name_, base_ + at,
          fmt::format("big-endian dtype '{}' is not supported (use little-endian '<')", d));
    }
    if (d == "<f4" || d == "=f4") return DataType::kFloat32;
    if (d == "<f8" || d == "=f8") return DataType::kFloat64;
    if (d == "<i8" || d == "=i8") return DataType::kInt64;
    Bad(name_, base_ + at,
        fmt::format("unsupported dtype '{}' (supported: '<f4' float32, '<f8' float64, '<i8' "
                    "int64)",
                    d));
  }

  std::string_view t_;
  std::size_t base_;
  const std::string& name_;
  std::size_t i_ = 0;
};

std::string_view DescrOf(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return "<f4";
    case DataType::kFloat64:
      return "<f8";
    case DataType::kInt64:
      return "<i8";
    case DataType::kCategorical:
      break;
  }
  Throw(ErrorCode::kInvalidArgument, "NPY: categorical columns cannot be written");
}

std::string ShapeText(const std::vector<std::int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + ")";
}

// The full header (magic through the final newline), padded so that the data starts at a
// multiple of 64 bytes; at least min_total bytes long (for headers rewritten in place).
std::string MakeHeader(DataType dtype, const std::vector<std::int64_t>& shape,
                       std::size_t min_total = 0) {
  const std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                       DescrOf(dtype), ShapeText(shape));
  for (int version = 1; version <= 2; ++version) {
    const std::size_t prefix = kMagicLen + 2 + (version == 1 ? 2 : 4);
    std::size_t total = prefix + dict.size() + 1;
    total = std::max((total + 63) / 64 * 64, min_total);
    const std::size_t header_len = total - prefix;
    if (version == 1 && header_len > 65535) continue;
    std::string out(kMagic, kMagicLen);
    out.push_back(static_cast<char>(version));
    out.push_back('\0');
    if (version == 1) {
      const auto len = static_cast<std::uint16_t>(header_len);
      out.append(reinterpret_cast<const char*>(&len), 2);
    } else {
      const auto len = static_cast<std::uint32_t>(header_len);
      out.append(reinterpret_cast<const char*>(&len), 4);
    }
    out += dict;
    out.append(total - out.size() - 1, ' ');
    out.push_back('\n');
    return out;
  }
  Throw(ErrorCode::kInvalidArgument, "NPY header too long");
}

std::int64_t Product(const std::vector<std::int64_t>& shape, const std::string& name) {
  std::int64_t n = 1;
  for (const auto d : shape) {
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) {
      Throw(ErrorCode::kInvalidArgument, "{}: array shape {} is too large", name, ShapeText(shape));
    }
    n *= d;
  }
  return n;
}

void PreadAll(int fd, void* dst, std::size_t n, std::uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(errno, "cannot read {}", path);
    }
    if (r == 0) {
      Throw(ErrorCode::kInvalidArgument, "{}: truncated at byte offset {}", path, offset);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

class ReadFd {
 public:
  explicit ReadFd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) {
      if (errno == ENOENT) Throw(ErrorCode::kNotFound, "{}: no such file", path);
      ThrowErrno(errno, "cannot open {}", path);
    }
  }
  ~ReadFd() { ::close(fd_); }
  ReadFd(const ReadFd&) = delete;
  ReadFd& operator=(const ReadFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

template <typename T>
void ConvertTo(const std::byte* src, DataType dtype, std::size_t n, T* dst) {
  switch (dtype) {
    case DataType::kFloat32: {
      const auto* s = reinterpret_cast<const float*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
    case DataType::kFloat64: {
      const auto* s = reinterpret_cast<const double*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
    case DataType::kInt64: {
      const auto* s = reinterpret_cast<const std::int64_t*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(s[i]);
      break;
    }
    case DataType::kCategorical:
      break;
  }
}

}  // namespace

std::int64_t NpyItemSize(DataType dtype) {
  return dtype == DataType::kFloat32 ? 4 : 8;
}

std::int64_t NpyRows(const NpyHeader& h) {
  return h.shape.empty() ? 1 : h.shape[0];
}

std::int64_t NpyCols(const NpyHeader& h) {
  std::int64_t c = 1;
  for (std::size_t i = 1; i < h.shape.size(); ++i) c *= h.shape[i];
  return c;
}

NpyHeader ReadNpyFileHeader(const std::string& path) {
  ReadFd fd(path);
  std::vector<std::byte> head(4096);
  const ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
  if (n < 0) ThrowErrno(errno, "cannot read {}", path);
  head.resize(static_cast<std::size_t>(n));
  std::size_t need = 12;
  if (head.size() >= 10) {
    const auto major = static_cast<unsigned char>(head[6]);
    std::uint32_t len = 0;
    if (major == 1 && head.size() >= 10) {
      std::uint16_t l16;
      std::memcpy(&l16, head.data() + 8, 2);
      need = 10 + l16;
    } else if (head.size() >= 12) {
      std::memcpy(&len, head.data() + 8, 4);
      need = 12 + len;
    }
  }
  // The declared length is trusted only once the magic and version are right, and only up to
  // the file's size and kMaxHeaderBytes: junk named .npy must not make us allocate gigabytes.
  const std::uint64_t size = std::filesystem::file_size(path);
  if (need > head.size() && static_cast<std::size_t>(n) == 4096) {
    if (std::memcmp(head.data(), kMagic, kMagicLen) != 0 || head[6] < std::byte{1} ||
        head[6] > std::byte{3}) {
      ParseNpyHeader(head, path);  // throws: not an NPY file, or an unsupported version
    }
    if (need > kMaxHeaderBytes) {
      Bad(path, 8,
          fmt::format("the NPY header declares {} bytes; more than the {} this reader accepts",
                      need, kMaxHeaderBytes));
    }
    if (need > size) {
      Bad(path, 8,
          fmt::format("truncated NPY header: it declares {} bytes, the file has {}", need, size));
    }
    head.resize(need);
    PreadAll(fd.get(), head.data(), need, 0, path);
  }
  NpyHeader h = ParseNpyHeader(head, path);
  const auto nbytes = static_cast<std::uint64_t>(Product(h.shape, path) * NpyItemSize(h.dtype));
  const auto offset = static_cast<std::uint64_t>(h.data_offset);
  if (size < offset + nbytes) {
    Throw(ErrorCode::kInvalidArgument,
          "{}: truncated: the header promises {} bytes of data from byte offset {}, but the file "
          "ends at byte offset {}",
          path, nbytes, offset, size);
  }
  if (size > offset + nbytes) {
    Throw(ErrorCode::kInvalidArgument,
          "{}: {} unexpected bytes after the array data (which ends at byte offset {})", path,
          size - offset - nbytes, offset + nbytes);
  }
  return h;
}

void ReadNpyRows(const std::string& path, const NpyHeader& h, std::int64_t begin, std::int64_t n,
                 float* dst) {
  const std::int64_t cols = NpyCols(h);
  const std::int64_t item = NpyItemSize(h.dtype);
  const auto count = static_cast<std::size_t>(n * cols);
  ReadFd fd(path);
  const auto offset = static_cast<std::uint64_t>(h.data_offset + begin * cols * item);
  if (h.dtype == DataType::kFloat32) {
    PreadAll(fd.get(), dst, count * 4, offset, path);
    return;
  }
  std::vector<std::byte> buf(std::min<std::size_t>(count, std::size_t{1} << 20) * 8);
  std::size_t done = 0;
  while (done < count) {
    const std::size_t take = std::min(count - done, buf.size() / 8);
    PreadAll(fd.get(), buf.data(), take * 8, offset + done * 8, path);
    ConvertTo(buf.data(), h.dtype, take, dst + done);
    done += take;
  }
}

void WriteNpyRaw(const std::string& path, DataType dtype, const std::vector<std::int64_t>& shape,
                 const void* data, std::size_t bytes) {
  AtomicFile out(path);
  const std::string header = MakeHeader(dtype, shape);
  out.Write(header.data(), header.size());
  out.Write(data, bytes);
  out.Commit();
}

}  // namespace internal

std::int64_t NpyArray::size() const {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

NpyHeader ParseNpyHeader(std::span<const std::byte> bytes, const std::string& name) {
  using internal::Bad;
  if (bytes.size() < 10) {
    Bad(name, bytes.size(),
        fmt::format("truncated NPY header: the file has {} bytes, a header "
                    "needs at least 10",
                    bytes.size()));
  }
  if (std::memcmp(bytes.data(), internal::kMagic, internal::kMagicLen) != 0) {
    Bad(name, 0, "not an NPY file (missing the \\x93NUMPY magic)");
  }
  const auto major = static_cast<int>(bytes[6]);
  if (major < 1 || major > 3) {
    Bad(name, 6,
        fmt::format("unsupported NPY format version {}.{}", major, static_cast<int>(bytes[7])));
  }
  std::size_t prefix = 10;
  std::size_t len = 0;
  if (major == 1) {
    std::uint16_t l;
    std::memcpy(&l, bytes.data() + 8, 2);
    len = l;
  } else {
    if (bytes.size() < 12) Bad(name, bytes.size(), "truncated NPY header length");
    std::uint32_t l;
    std::memcpy(&l, bytes.data() + 8, 4);
    len = l;
    prefix = 12;
  }
  if (bytes.size() < prefix + len) {
    Bad(name, bytes.size(),
        fmt::format("truncated NPY header: it declares {} bytes ending at byte offset {}, the "
                    "file ends at byte offset {}",
                    len, prefix + len, bytes.size()));
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + prefix, len);
  NpyHeader h = internal::HeaderParser(text, prefix, name).Parse();
  h.data_offset = static_cast<std::int64_t>(prefix + len);
  h.major_version = major;
  return h;
}

NpyArray ReadNpy(const std::string& path) {
  const NpyHeader h = internal::ReadNpyFileHeader(path);
  NpyArray a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  const auto bytes = static_cast<std::size_t>(a.size() * internal::NpyItemSize(h.dtype));
  a.data.resize(bytes);
  internal::ReadFd fd(path);
  internal::PreadAll(fd.get(), a.data.data(), bytes, static_cast<std::uint64_t>(h.data_offset),
                     path);
  return a;
}

MatrixF ReadNpyMatrix(const std::string& path) {
  const NpyHeader h = internal::ReadNpyFileHeader(path);
  ESCALA_CHECK(h.shape.size() == 1 || h.shape.size() == 2, kInvalidArgument,
               "{}: expected a 1-D or 2-D array, found shape {}", path,
               internal::ShapeText(h.shape));
  MatrixF m(internal::NpyRows(h), internal::NpyCols(h));
  if (m.size() > 0) internal::ReadNpyRows(path, h, 0, m.rows(), m.data());
  return m;
}

std::vector<float> ReadNpyVector(const std::string& path) {
  const NpyHeader h = internal::ReadNpyFileHeader(path);
  ESCALA_CHECK(h.shape.size() == 1 || (h.shape.size() == 2 && h.shape[1] == 1), kInvalidArgument,
               "{}: expected a 1-D array (or n x 1), found shape {}", path,
               internal::ShapeText(h.shape));
  std::vector<float> v(static_cast<std::size_t>(internal::NpyRows(h)));
  if (!v.empty()) internal::ReadNpyRows(path, h, 0, internal::NpyRows(h), v.data());
  return v;
}

namespace {
template <typename T>
void WriteMatrix(const std::string& path, MatrixView<const T> m, DataType dtype) {
  std::vector<T> packed;
  const T* data = m.data();
  if (!m.contiguous()) {
    packed.resize(static_cast<std::size_t>(m.size()));
    for (std::int64_t i = 0; i < m.rows(); ++i) {
      std::memcpy(packed.data() + i * m.cols(), m.row(i),
                  static_cast<std::size_t>(m.cols()) * sizeof(T));
    }
    data = packed.data();
  }
  internal::WriteNpyRaw(path, dtype, {m.rows(), m.cols()}, data,
                        static_cast<std::size_t>(m.size()) * sizeof(T));
}
}  // namespace

void WriteNpy(const std::string& path, MatrixView<const float> matrix) {
  WriteMatrix(path, matrix, DataType::kFloat32);
}
void WriteNpy(const std::string& path, MatrixView<const double> matrix) {
  WriteMatrix(path, matrix, DataType::kFloat64);
}
void WriteNpy(const std::string& path, MatrixView<const std::int64_t> matrix) {
  WriteMatrix(path, matrix, DataType::kInt64);
}
void WriteNpy(const std::string& path, std::span<const float> values) {
  internal::WriteNpyRaw(path, DataType::kFloat32, {static_cast<std::int64_t>(values.size())},
                        values.data(), values.size_bytes());
}
void WriteNpy(const std::string& path, std::span<const std::int64_t> values) {
  internal::WriteNpyRaw(path, DataType::kInt64, {static_cast<std::int64_t>(values.size())},
                        values.data(), values.size_bytes());
}

// ---------------------------------------------------------------------------------------------
// NpyWriter

struct NpyWriter::Impl {
  explicit Impl(const std::string& path) : file(path) {}
  internal::AtomicFile file;
  std::size_t header_size = 0;
  std::vector<double> scratch;
  bool closed = false;
};

namespace {
std::vector<std::int64_t> WriterShape(std::int64_t rows, std::int64_t cols) {
  if (cols == 0) return {rows};
  return {rows, cols};
}
}  // namespace

NpyWriter::NpyWriter(const std::string& path, std::int64_t cols, DataType dtype)
    : impl_(std::make_unique<Impl>(path)), cols_(cols), dtype_(dtype) {
  ESCALA_CHECK(cols >= 0, kInvalidArgument, "NpyWriter: negative column count {}", cols);
  ESCALA_CHECK(dtype == DataType::kFloat32 || dtype == DataType::kFloat64, kInvalidArgument,
               "NpyWriter writes float32 or float64, not {}", DataTypeName(dtype));
  // Room for the largest row count, so the final header fits in place.
  const std::string header =
      internal::MakeHeader(dtype, WriterShape(std::numeric_limits<std::int64_t>::max(), cols));
  impl_->header_size = header.size();
  impl_->file.Write(header.data(), header.size());
}

NpyWriter::~NpyWriter() = default;

void NpyWriter::Append(MatrixView<const float> rows) {
  ESCALA_CHECK(!impl_->closed, kFailedPrecondition, "NpyWriter: append after Close()");
  ESCALA_CHECK(rows.cols() == std::max<std::int64_t>(cols_, 1), kInvalidArgument,
               "NpyWriter: rows have {} columns, the array has {}", rows.cols(), cols_);
  for (std::int64_t i = 0; i < rows.rows(); ++i) {
    const auto n = static_cast<std::size_t>(rows.cols());
    if (dtype_ == DataType::kFloat32) {
      if (rows.contiguous()) {
        impl_->file.Write(rows.data(), static_cast<std::size_t>(rows.size()) * sizeof(float));
        break;
      }
      impl_->file.Write(rows.row(i), n * sizeof(float));
    } else {
      impl_->scratch.assign(rows.row(i), rows.row(i) + n);
      impl_->file.Write(impl_->scratch.data(), n * sizeof(double));
    }
  }
  rows_ += rows.rows();
}

void NpyWriter::Append(std::span<const float> values) {
  ESCALA_CHECK(cols_ == 0, kInvalidArgument, "NpyWriter: values appended to a 2-D array");
  Append(MatrixView<const float>(values.data(), static_cast<std::int64_t>(values.size()), 1));
}

void NpyWriter::Close() {
  if (impl_->closed) return;
  const std::string header =
      internal::MakeHeader(dtype_, WriterShape(rows_, cols_), impl_->header_size);
  ESCALA_ASSERT(header.size() == impl_->header_size);
  impl_->file.WriteAt(0, header.data(), header.size());
  impl_->file.Commit();
  impl_->closed = true;
}

}  // namespace escala::data
