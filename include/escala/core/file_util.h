// Durable file writes and checksummed record files.
//
// WriteFileAtomic() writes to a temporary file in the same directory, fsyncs it, renames it over
// the destination and fsyncs the directory: a crash at any moment leaves either the old file or
// the new one, never a truncated mix. Model bundles and training checkpoints use it.
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

namespace escala {

// Throws kIo (with strerror) on failure; the destination is then untouched.
void WriteFileAtomic(const std::string& path, std::string_view contents);

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
