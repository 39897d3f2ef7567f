// Record-aligned windows of CSV input: the serial first stage of every CSV read.
//
// A CsvWindowSource walks a list of inputs (whole files, byte ranges of files, or text in memory)
// and hands out windows of about `window_bytes` that hold only complete records. Plain files are
// read with pread and gzip files inflated into the window's own buffer (bounded memory, no
// mapping); memory inputs are cut without copying. The cut is quote- and comment-aware, so a
// record never straddles two windows.
#ifndef ESCALA_SRC_DATA_CSV_SOURCE_H_
#define ESCALA_SRC_DATA_CSV_SOURCE_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/input.h"
#include "escala/data/csv.h"

namespace escala::data::internal {

// A growable byte buffer that does not zero what it allocates.
class ByteBuffer {
 public:
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  // Grows capacity to at least n, keeping the first size() bytes.
  void Reserve(std::size_t n);
  void Resize(std::size_t n) {
    Reserve(n);
    size_ = n;
  }
  void swap(ByteBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// One input: a file (or a byte range of it) or text in memory.
struct CsvInput {
  std::string path;         // read from this file unless memory is set
  std::string_view memory;  // whole text (including any header) when reading from memory
  std::string name;         // for messages
  std::uint64_t file_index = 0;
  std::uint64_t data_start = 0;  // first byte after the header
  std::int64_t data_line = 1;    // line number at data_start
  // Records whose first byte lies in [begin, end); begin is clamped to data_start.
  std::uint64_t begin = 0;
  std::uint64_t end = std::numeric_limits<std::uint64_t>::max();
};

struct CsvWindow {
  ByteBuffer buffer;              // owns the bytes of file inputs
  std::string_view data;          // complete records
  std::uint64_t file_offset = 0;  // offset of data[0] in its file
  std::uint64_t file_index = 0;
  int input = 0;                 // index into the source's inputs
  std::int64_t first_line = -1;  // line number of data[0]; -1 until resolved
  // Rows the window can hold at most (one per record end), when the cut already counted them;
  // -1 otherwise.
  std::int64_t row_bound = -1;
};

class CsvWindowSource {
 public:
  CsvWindowSource(std::vector<CsvInput> inputs, const CsvOptions& options,
                  std::size_t window_bytes);
  ~CsvWindowSource();

  // The next window, or false when every input is exhausted.
  bool Next(CsvWindow* w);
  // Restarts from the first input (in `order` if set).
  void Rewind();
  void SetOrder(std::vector<int> order);
  // The line number of data[0] of `w`, counting the file's prefix if it was not known.
  std::int64_t ResolveLine(const CsvWindow& w);
  const CsvInput& input(int i) const { return inputs_[static_cast<std::size_t>(i)]; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct State;
  bool Open(int input);
  bool Fill(std::size_t want);

  std::vector<CsvInput> inputs_;
  const CsvOptions options_;
  std::size_t window_bytes_;
  std::vector<int> order_;
  std::size_t cursor_ = 0;  // position in order_
  std::unique_ptr<State> state_;
  std::uint64_t bytes_ = 0;
};

// The end (offset past the terminator) of the last complete record in `text`, which starts at a
// record start; 0 when none is complete. Quote- and comment-aware.
std::size_t LastRecordEnd(std::string_view text, const CsvOptions& options);
// The end of the record that contains byte `pos` of `text` (which starts at a record start), or
// 0 when that record is not complete in `text`.
std::size_t RecordEndAfter(std::string_view text, std::size_t pos, const CsvOptions& options);

// The offset of the first record that starts at or after `offset` in a file whose records begin
// at data_start (file size if none). With quoted newlines it scans the file from data_start to
// learn whether `offset` lies inside a quoted field.
std::uint64_t FindRecordStart(const std::string& path, std::uint64_t data_start,
                              std::uint64_t offset, const CsvOptions& options);

// Reads the first `max_bytes` (decompressed) of a file.
std::string ReadPrefix(const std::string& path, std::size_t max_bytes);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_CSV_SOURCE_H_
