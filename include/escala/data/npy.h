// NPY files: numpy's binary array format (version 1.0 and 2.0 headers, C order, little-endian
// float32, float64 and int64).
//
// ReadNpy returns any supported array; ReadNpyMatrix converts a 1-D or 2-D array to float32.
// WriteNpy writes atomically (temporary file, fsync, rename). NpyWriter streams rows of a 2-D
// array to disk without knowing the row count in advance, for data larger than memory.
//
// Errors on malformed files name the file and the byte offset.
//
// Thread-safety: functions are reentrant; an NpyWriter is used by one thread at a time.
#ifndef ESCALA_DATA_NPY_H_
#define ESCALA_DATA_NPY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/data/table.h"

namespace escala::data {

// An array read from an NPY file. dtype is kFloat32, kFloat64 or kInt64.
struct NpyArray {
  DataType dtype = DataType::kFloat32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;  // C order, native (little-endian) layout

  std::int64_t size() const;  // number of elements
  template <typename T>
  std::span<const T> as() const {
    return std::span<const T>(reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T));
  }
};

// Byte offset of the data in an NPY file and the array's description, parsed from its header.
struct NpyHeader {
  DataType dtype = DataType::kFloat32;
  std::vector<std::int64_t> shape;
  std::int64_t data_offset = 0;
  int major_version = 1;
};

// Parses the header at the start of `bytes` (at least the whole header). Throws
// kInvalidArgument naming `name` and the byte offset for anything malformed or unsupported.
NpyHeader ParseNpyHeader(std::span<const std::byte> bytes, const std::string& name);

NpyArray ReadNpy(const std::string& path);
// A 2-D array as rows x cols, or a 1-D array as n x 1, converted to float32.
MatrixF ReadNpyMatrix(const std::string& path);
// A 1-D (or n x 1) array as float32 values (labels).
std::vector<float> ReadNpyVector(const std::string& path);

void WriteNpy(const std::string& path, MatrixView<const float> matrix);
void WriteNpy(const std::string& path, MatrixView<const double> matrix);
void WriteNpy(const std::string& path, MatrixView<const std::int64_t> matrix);
// 1-D arrays.
void WriteNpy(const std::string& path, std::span<const float> values);
void WriteNpy(const std::string& path, std::span<const std::int64_t> values);

// Streams a 2-D (rows x cols) or, with cols == 0, a 1-D array of float32 to `path`. The file
// appears under its name only after Close(); a writer destroyed without Close() removes its
// temporary file.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, std::int64_t cols, DataType dtype = DataType::kFloat32);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  // Appends rows (float32 input, converted to the writer's dtype).
  void Append(MatrixView<const float> rows);
  // For 1-D writers.
  void Append(std::span<const float> values);
  // Writes the final header, fsyncs and renames into place.
  void Close();
  std::int64_t rows() const { return rows_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::int64_t cols_;
  DataType dtype_;
  std::int64_t rows_ = 0;
};

}  // namespace escala::data

#endif  // ESCALA_DATA_NPY_H_
