#include "escala/core/file_util.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <unistd.h>
#include <zlib.h>

#include <sys/stat.h>

#include "escala/core/error.h"

namespace escala {
namespace {

void WriteAll(int fd, std::string_view data, const std::string& path) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(errno, "write {}", path);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void PutU32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t GetLE(std::string_view s, std::size_t off, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |=
        static_cast<std::uint64_t>(static_cast<unsigned char>(s[off + static_cast<std::size_t>(i)]))
        << (8 * i);
  }
  return v;
}

constexpr std::size_t kHeaderSize = 8 + 4 + 8 + 4;

}  // namespace

void WriteFileAtomic(const std::string& path, std::string_view contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::random_device rd;
  const std::string tmp =
      (dir / (".tmp-" + target.filename().string() + "-" + std::to_string(rd()))).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) ThrowErrno(errno, "create {}", tmp);
  try {
    WriteAll(fd, contents, tmp);
    if (::fsync(fd) != 0) ThrowErrno(errno, "fsync {}", tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ThrowErrno(err, "close {}", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ThrowErrno(err, "rename {} to {}", tmp, path);
  }
  // Make the rename itself durable.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) Throw(ErrorCode::kNotFound, "{}: no such file", path);
    ThrowErrno(errno, "open {}", path);
  }
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ThrowErrno(err, "read {}", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::uint32_t Crc32(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large inputs in pieces.
  std::size_t off = 0;
  while (off < data.size()) {
    const std::size_t n = std::min<std::size_t>(data.size() - off, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + off), static_cast<uInt>(n));
    off += n;
  }
  return static_cast<std::uint32_t>(crc);
}

std::string FramePayload(std::string_view magic, std::uint32_t version, std::string_view payload) {
  ESCALA_ASSERT(magic.size() == 8);
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.append(magic);
  PutU32(out, version);
  PutU64(out, payload.size());
  PutU32(out, Crc32(payload));
  out.append(payload);
  return out;
}

std::string_view UnframePayload(std::string_view file, std::string_view magic,
                                std::uint32_t* version, std::string_view what) {
  ESCALA_CHECK(file.size() >= 8 && file.substr(0, 8) == magic, kDataLoss,
               "{}: not a {} file (wrong magic bytes)", what, magic);
  ESCALA_CHECK(file.size() >= kHeaderSize, kDataLoss, "{}: truncated header ({} of {} bytes)", what,
               file.size(), kHeaderSize);
  *version = static_cast<std::uint32_t>(GetLE(file, 8, 4));
  const std::uint64_t length = GetLE(file, 12, 8);
  const auto crc = static_cast<std::uint32_t>(GetLE(file, 20, 4));
  const std::uint64_t have = file.size() - kHeaderSize;
  ESCALA_CHECK(have >= length, kDataLoss,
               "{}: truncated: header says {} payload bytes, file has {}", what, length, have);
  ESCALA_CHECK(have == length, kDataLoss, "{}: {} unexpected bytes after the payload", what,
               have - length);
  const std::string_view payload = file.substr(kHeaderSize, length);
  const std::uint32_t actual = Crc32(payload);
  ESCALA_CHECK(actual == crc, kDataLoss, "{}: checksum mismatch (stored {:08x}, computed {:08x})",
               what, crc, actual);
  return payload;
}

}  // namespace escala
