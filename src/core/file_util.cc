#include "escala/core/file_util.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <signal.h>
#include <unistd.h>
#include <utility>
#include <zlib.h>

#include <fmt/format.h>
#include <sys/stat.h>

#include "escala/core/error.h"
#include "escala/core/fault_injection.h"

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

namespace {

namespace fs = std::filesystem;

fs::path DirectoryOf(const fs::path& target) {
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

// ".NAME.tmp-": the prefix of this destination's temporary files; the writer's pid follows.
std::string TempPrefix(const fs::path& target) {
  return "." + target.filename().string() + ".tmp-";
}

// Removes temporary files of `target` whose writing process is gone (killed mid-write). Another
// live writer's file is left alone. Best effort: errors are ignored.
void RemoveStaleTemps(const fs::path& target) {
  const std::string prefix = TempPrefix(target);
  std::error_code ec;
  for (fs::directory_iterator it(DirectoryOf(target), ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
}

void SyncDirectory(const fs::path& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  const fs::path target(path_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    ESCALA_CHECK(!S_ISDIR(st.st_mode), kInvalidArgument, "{} is a directory, not a file", path_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) ThrowErrno(errno, "cannot open {} for writing", path_);
    return;
  }
  RemoveStaleTemps(target);
  std::random_device rd;
  tmp_ =
      (DirectoryOf(target) / fmt::format("{}{}-{}", TempPrefix(target), ::getpid(), rd() % 1000000))
          .string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) ThrowErrno(errno, "cannot create {} (writing {})", tmp_, path_);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ < 0) return;
  ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::Write(const void* data, std::size_t n) {
  ESCALA_CHECK(fd_ >= 0, kFailedPrecondition, "{} was already committed", path_);
  WriteAll(fd_, std::string_view(static_cast<const char*>(data), n), path_);
  written_ += n;
}

void AtomicFileWriter::WriteAt(std::uint64_t offset, const void* data, std::size_t n) {
  ESCALA_CHECK(fd_ >= 0 && !tmp_.empty(), kFailedPrecondition,
               "{}: cannot write at an offset (committed, or not a regular file)", path_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(errno, "cannot write {}", path_);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

void AtomicFileWriter::Commit() {
  ESCALA_CHECK(fd_ >= 0, kFailedPrecondition, "{} was already committed", path_);
  const int fd = std::exchange(fd_, -1);
  if (tmp_.empty()) {  // a special file written in place
    if (::close(fd) != 0) ThrowErrno(errno, "cannot close {}", path_);
    return;
  }
  int err = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && err == 0) err = errno;
  FaultPoint("write", path_);  // tests of crash safety: the whole file under its temporary name
  if (err == 0 && ::rename(tmp_.c_str(), path_.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp_.c_str());
    ThrowErrno(err, "cannot write {} (through {})", path_, tmp_);
  }
  SyncDirectory(DirectoryOf(fs::path(path_)));
}

void WriteFileAtomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter out(path);
  out.Write(contents);
  out.Commit();
}

void CheckOutputIsNotInput(const std::string& output, const std::string& flag,
                           const std::vector<std::string>& inputs) {
  for (const auto& in : inputs) {
    std::error_code ec;
    ESCALA_CHECK(!fs::equivalent(output, in, ec) || ec, kInvalidArgument,
                 "{} {} is also an input ({}): writing it would destroy the input", flag, output,
                 in);
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
