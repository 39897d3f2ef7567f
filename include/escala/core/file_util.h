// Durable file writes and checksummed record files.
//
// AtomicFileWriter and WriteFileAtomic() write to a temporary file in the same directory, fsync
// it, rename it over the destination and fsync the directory: a crash at any moment leaves
// either the old file or the new one, never a truncated mix. Every file escala writes (bundles,
// checkpoints, converted data, scores, reports) goes through them.
//
// A "framed" file is a small header (magic, format version, payload length, CRC-32 of the
// payload) followed by the payload, so that readers can tell a truncated or corrupted file from
// a valid one and say which it is.
//
// Thread-safety: functions are independent; concurrent writers to the same path race (the last
// rename wins, and each rename is atomic).
#ifndef ESCALA_CORE_FILE_UTIL_H_
#define ESCALA_CORE_FILE_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace escala {

// Writes one file atomically: data goes to a temporary file beside `path` (".NAME.tmp-PID-N");
// Commit() fsyncs it, renames it over `path` and fsyncs the directory. Destroyed without
// Commit(), it removes the temporary file. Opening one also removes temporary files of the same
// destination left by processes that no longer run (a writer killed with SIGKILL).
//
// A destination that exists and is not a regular file (/dev/null, a FIFO, /dev/stdout) is
// written in place instead: renaming over it would replace the device node. A directory is
// refused. Every failure throws kIo (or kInvalidArgument for a directory) naming the path, and
// leaves the destination untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void Write(const void* data, std::size_t n);
  void Write(std::string_view data) { Write(data.data(), data.size()); }
  // Overwrites bytes at an absolute offset (e.g. a header written last). Not for special files.
  void WriteAt(std::uint64_t offset, const void* data, std::size_t n);
  std::uint64_t bytes_written() const { return written_; }
  void Commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_;  // empty: writing a special file in place
  int fd_ = -1;
  std::uint64_t written_ = 0;
};

// Throws kIo (with strerror) on failure; the destination is then untouched.
void WriteFileAtomic(const std::string& path, std::string_view contents);

// Throws kInvalidArgument when `output` (given by `flag`, e.g. "--out") names the same file as
// one of `inputs`: writing it would destroy the input. Inputs that do not exist are ignored.
void CheckOutputIsNotInput(const std::string& output, const std::string& flag,
                           const std::vector<std::string>& inputs);

// Reads a whole file. Throws kNotFound if it does not exist, kIo on other failures.
std::string ReadFileToString(const std::string& path);

struct FramedHeader {
  std::string magic;  // exactly 8 bytes, identifies the file kind ("ESCALAMB", ...)
  std::uint32_t version = 0;
};

// magic (8) | version (u32 LE) | payload length (u64 LE) | crc32 (u32 LE) | payload.
std::string FramePayload(std::string_view magic, std::uint32_t version, std::string_view payload);

// Validates and strips the frame. `what` names the file in errors. Throws kDataLoss for a wrong
// magic ("not an escala model bundle"), a truncated file (payload shorter than the header says)
// or a checksum mismatch; *version receives the stored format version.
std::string_view UnframePayload(std::string_view file, std::string_view magic,
                                std::uint32_t* version, std::string_view what);

// CRC-32 (zlib polynomial) of data.
std::uint32_t Crc32(std::string_view data);

}  // namespace escala

#endif  // ESCALA_CORE_FILE_UTIL_H_
