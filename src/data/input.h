// Private I/O helpers of the data module: memory-mapped and decompressed input, sequential byte
// sources (plain or gzip), atomic output files and a gzip writer.
#ifndef ESCALA_SRC_DATA_INPUT_H_
#define ESCALA_SRC_DATA_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/file_util.h"

namespace escala::data::internal {

// True when the file starts with the gzip magic bytes.
bool IsGzipFile(const std::string& path);
bool IsGzipData(std::string_view bytes);

// The whole content of a file: a read-only memory map for plain files, a decompressed buffer for
// gzip files. Zero-byte files give an empty view.
class FileBytes {
 public:
  static FileBytes Open(const std::string& path);
  FileBytes() = default;
  ~FileBytes();
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  std::string_view view() const { return {data_, size_}; }
  bool compressed() const { return !owned_.empty() || compressed_; }

 private:
  void Reset();
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::vector<char> owned_;
  bool compressed_ = false;
};

// Decompresses gzip data (all members). `name` appears in errors.
std::vector<char> Gunzip(std::string_view bytes, const std::string& name);

// A sequential source of bytes: a plain file read with pread from an offset, or a gzip stream.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns 0 at the end.
  virtual std::size_t Read(char* out, std::size_t n) = 0;
  // Uncompressed offset of the next byte Read returns.
  virtual std::uint64_t position() const = 0;
};
// Opens `path` (gzip detected by magic) positioned at uncompressed offset `offset` (plain files
// seek; gzip files decompress and discard up to it).
std::unique_ptr<ByteSource> OpenByteSource(const std::string& path, std::uint64_t offset = 0);

// Output files are written through the one atomic writer (escala/core/file_util.h).
using AtomicFile = ::escala::AtomicFileWriter;

// Streams gzip-compressed data into an AtomicFile.
class GzipWriter {
 public:
  GzipWriter(AtomicFile* out, int level);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;
  void Write(const void* data, std::size_t n);
  void Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// 1-based line and column (in bytes) of `pos` in `text`, counting lines from text[0] (which is
// on line `first_line`).
struct LineColumn {
  std::int64_t line = 0;
  std::int64_t column = 0;
};
LineColumn Locate(std::string_view text, std::size_t pos, std::int64_t first_line = 1);
// The physical line of `text` holding `pos`, shortened around pos to about `width` characters,
// with control characters escaped, for messages.
std::string LineExcerpt(std::string_view text, std::size_t pos, std::size_t width = 100);
// `text` quoted and shortened for messages.
std::string Quote(std::string_view text, std::size_t width = 60);
// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
// Quote and the line excerpts of messages show the bytes of text that is not as \xNN.
bool IsUtf8(std::string_view s);

// Asks the kernel to back [p, p + n) with transparent huge pages where it can (large output
// buffers written once: far fewer page faults). A hint; failures are ignored.
void AdviseHugePages(void* p, std::size_t n);

// Counts '\n' bytes (vectorised; core/simd/kernels.h).
std::size_t CountNewlines(const char* begin, const char* end);

// One vectorised pass over text: the number of '\n', the offset of the last one (npos if none)
// and whether `quote` occurs ('\0': not looked for).
struct TextScan {
  std::size_t newlines = 0;
  std::size_t last_newline = static_cast<std::size_t>(-1);
  bool has_quote = false;
};
TextScan ScanText(std::string_view text, char quote);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_INPUT_H_
