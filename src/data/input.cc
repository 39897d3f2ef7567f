#include "data/input.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <unistd.h>
#include <zlib.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include "core/simd/kernels.h"
#include "escala/core/error.h"

namespace escala::data::internal {
namespace {

int OpenForRead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) Throw(ErrorCode::kNotFound, "{}: no such file", path);
    ThrowErrno(err, "cannot open {}", path);
  }
  return fd;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::uint64_t FileSize(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) ThrowErrno(errno, "cannot stat {}", path);
  if (S_ISDIR(st.st_mode)) Throw(ErrorCode::kInvalidArgument, "{} is a directory", path);
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

bool IsGzipData(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

bool IsGzipFile(const std::string& path) {
  Fd fd(OpenForRead(path));
  char magic[2];
  const ssize_t n = ::pread(fd.get(), magic, 2, 0);
  return n == 2 && IsGzipData(std::string_view(magic, 2));
}

// ---------------------------------------------------------------------------------------------
// FileBytes

FileBytes FileBytes::Open(const std::string& path) {
  Fd fd(OpenForRead(path));
  const std::uint64_t size = FileSize(fd.get(), path);
  FileBytes out;
  if (size == 0) return out;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) ThrowErrno(errno, "cannot memory-map {}", path);
  ::madvise(map, size, MADV_SEQUENTIAL);
  ::madvise(map, size, MADV_WILLNEED);
  out.map_ = map;
  out.map_size_ = size;
  out.data_ = static_cast<const char*>(map);
  out.size_ = size;
  if (IsGzipData(out.view())) {
    std::vector<char> plain = Gunzip(out.view(), path);
    out.Reset();
    out.owned_ = std::move(plain);
    out.data_ = out.owned_.data();
    out.size_ = out.owned_.size();
    out.compressed_ = true;
  }
  return out;
}

FileBytes::~FileBytes() {
  Reset();
}

void FileBytes::Reset() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  data_ = nullptr;
  size_ = 0;
  owned_.clear();
  compressed_ = false;
}

FileBytes::FileBytes(FileBytes&& other) noexcept {
  *this = std::move(other);
}

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this != &other) {
    Reset();
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    owned_ = std::move(other.owned_);
    compressed_ = std::exchange(other.compressed_, false);
    size_ = std::exchange(other.size_, 0);
    data_ = owned_.empty() ? other.data_ : owned_.data();
    other.data_ = nullptr;
    other.owned_.clear();
  }
  return *this;
}

// ---------------------------------------------------------------------------------------------
// Gzip decoding

namespace {

class Inflater {
 public:
  explicit Inflater(std::string name) : name_(std::move(name)) {
    std::memset(&zs_, 0, sizeof(zs_));
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
      Throw(ErrorCode::kResourceExhausted, "{}: cannot initialise zlib", name_);
    }
  }
  ~Inflater() { inflateEnd(&zs_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Decompresses from `in` (advancing it) into out; returns bytes produced. Sets *eof when the
  // input is exhausted at a member boundary. `final_input` says no more input will follow.
  std::size_t Run(std::string_view* in, char* out, std::size_t n, bool final_input, bool* eof) {
    *eof = false;
    std::size_t produced = 0;
    while (produced < n) {
      if (member_done_) {
        // Another gzip member may follow (concatenated .gz files); trailing zeros are padding.
        while (!in->empty() && (*in)[0] == '\0') in->remove_prefix(1);
        if (in->empty()) {
          if (final_input) *eof = true;
          return produced;
        }
        if (inflateReset(&zs_) != Z_OK) Fail("cannot reset zlib stream");
        member_done_ = false;
      }
      if (in->empty()) {
        if (final_input) {
          Throw(ErrorCode::kInvalidArgument,
                "{}: truncated gzip data (stream ends at compressed byte offset {} before its "
                "end-of-stream marker)",
                name_, consumed_);
        }
        return produced;
      }
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in->data()));
      zs_.avail_in = static_cast<uInt>(std::min<std::size_t>(in->size(), 1u << 30));
      zs_.next_out = reinterpret_cast<Bytef*>(out + produced);
      zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - produced, 1u << 30));
      const uInt avail_in_before = zs_.avail_in;
      const uInt avail_out_before = zs_.avail_out;
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      const std::size_t used = avail_in_before - zs_.avail_in;
      in->remove_prefix(used);
      consumed_ += used;
      produced += avail_out_before - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        continue;
      }
      if (rc == Z_BUF_ERROR) {
        // No progress possible: need more input or more output space.
        if (!in->empty() && produced < n) Fail("corrupt gzip data");
        continue;
      }
      if (rc != Z_OK) {
        Fail(zs_.msg != nullptr ? zs_.msg : "corrupt gzip data");
      }
    }
    return produced;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    Throw(ErrorCode::kInvalidArgument, "{}: invalid gzip data near compressed byte offset {}: {}",
          name_, consumed_, what);
  }

  std::string name_;
  z_stream zs_;
  bool member_done_ = false;
  std::uint64_t consumed_ = 0;
};

}  // namespace

std::vector<char> Gunzip(std::string_view bytes, const std::string& name) {
  std::vector<char> out;
  // The trailer holds the size modulo 2^32 of the last member: a good first guess.
  std::size_t guess = bytes.size() * 4;
  if (bytes.size() >= 18) {
    std::uint32_t isize = 0;
    std::memcpy(&isize, bytes.data() + bytes.size() - 4, 4);
    // A corrupt or truncated trailer can claim anything: deflate cannot expand more than ~1032x.
    if (isize >= bytes.size() && isize / 1100 < bytes.size()) guess = std::size_t{isize} + 1;
  }
  out.resize(std::max<std::size_t>(guess, 4096));
  Inflater inflater(name);
  std::string_view in = bytes;
  std::size_t size = 0;
  for (;;) {
    if (size == out.size()) out.resize(out.size() * 2);
    bool eof = false;
    size += inflater.Run(&in, out.data() + size, out.size() - size, true, &eof);
    if (eof) break;
  }
  out.resize(size);
  out.shrink_to_fit();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Byte sources

namespace {

class PlainSource final : public ByteSource {
 public:
  PlainSource(const std::string& path, std::uint64_t offset)
      : path_(path), fd_(OpenForRead(path)), pos_(offset) {}
  std::size_t Read(char* out, std::size_t n) override {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_.get(), out + done, n - done, static_cast<off_t>(pos_));
      if (r < 0) {
        if (errno == EINTR) continue;
        ThrowErrno(errno, "cannot read {} at byte offset {}", path_, pos_);
      }
      if (r == 0) break;
      done += static_cast<std::size_t>(r);
      pos_ += static_cast<std::uint64_t>(r);
    }
    return done;
  }
  std::uint64_t position() const override { return pos_; }

 private:
  std::string path_;
  Fd fd_;
  std::uint64_t pos_;
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(const std::string& path, std::uint64_t offset)
      : raw_(path, 0), inflater_(path), buffer_(1 << 20) {
    std::vector<char> skip(1 << 16);
    while (pos_ < offset) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(skip.size(), offset - pos_));
      if (Read(skip.data(), want) == 0) break;
    }
  }
  std::size_t Read(char* out, std::size_t n) override {
    std::size_t done = 0;
    while (done < n && !eof_) {
      if (pending_.empty() && !raw_eof_) {
        const std::size_t got = raw_.Read(buffer_.data(), buffer_.size());
        raw_eof_ = got < buffer_.size();
        pending_ = std::string_view(buffer_.data(), got);
      }
      bool eof = false;
      done += inflater_.Run(&pending_, out + done, n - done, raw_eof_, &eof);
      if (eof) eof_ = true;
    }
    pos_ += done;
    return done;
  }
  std::uint64_t position() const override { return pos_; }

 private:
  PlainSource raw_;
  Inflater inflater_;
  std::vector<char> buffer_;
  std::string_view pending_;
  bool raw_eof_ = false;
  bool eof_ = false;
  std::uint64_t pos_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> OpenByteSource(const std::string& path, std::uint64_t offset) {
  if (IsGzipFile(path)) return std::make_unique<GzipSource>(path, offset);
  return std::make_unique<PlainSource>(path, offset);
}

// ---------------------------------------------------------------------------------------------
// Output

struct GzipWriter::Impl {
  AtomicFile* out;
  z_stream zs{};
  std::vector<unsigned char> buffer = std::vector<unsigned char>(1 << 20);
  bool finished = false;

  void Pump(int flush) {
    int rc;
    do {
      zs.next_out = buffer.data();
      zs.avail_out = static_cast<uInt>(buffer.size());
      rc = deflate(&zs, flush);
      if (rc == Z_STREAM_ERROR) Throw(ErrorCode::kInternal, "zlib deflate failed");
      out->Write(buffer.data(), buffer.size() - zs.avail_out);
    } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  }
};

GzipWriter::GzipWriter(AtomicFile* out, int level) : impl_(std::make_unique<Impl>()) {
  impl_->out = out;
  if (deflateInit2(&impl_->zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    Throw(ErrorCode::kResourceExhausted, "cannot initialise zlib for {}", out->path());
  }
}

GzipWriter::~GzipWriter() {
  deflateEnd(&impl_->zs);
}

void GzipWriter::Write(const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const std::size_t take = std::min<std::size_t>(n, 1u << 30);
    impl_->zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    impl_->zs.avail_in = static_cast<uInt>(take);
    impl_->Pump(Z_NO_FLUSH);
    p += take;
    n -= take;
  }
}

void GzipWriter::Finish() {
  if (impl_->finished) return;
  impl_->zs.next_in = nullptr;
  impl_->zs.avail_in = 0;
  impl_->Pump(Z_FINISH);
  impl_->finished = true;
}

// ---------------------------------------------------------------------------------------------
// Messages

void AdviseHugePages(void* p, std::size_t n) {
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

std::size_t CountNewlines(const char* begin, const char* end) {
  return simd::Kernels().count_newlines(begin, end);
}

TextScan ScanText(std::string_view text, char quote) {
  const simd::ScanResult scan =
      simd::Kernels().scan_text(text.data(), text.data() + text.size(), quote);
  TextScan r;
  r.newlines = scan.newlines;
  r.last_newline = scan.last_newline;
  r.has_quote = scan.has_quote;
  return r;
}

LineColumn Locate(std::string_view text, std::size_t pos, std::int64_t first_line) {
  pos = std::min(pos, text.size());
  LineColumn lc;
  lc.line = first_line + static_cast<std::int64_t>(CountNewlines(text.data(), text.data() + pos));
  const std::size_t line_start = text.rfind('\n', pos == 0 ? std::string_view::npos : pos - 1);
  const std::size_t begin = (pos == 0 || line_start == std::string_view::npos) ? 0 : line_start + 1;
  lc.column = static_cast<std::int64_t>(pos - begin) + 1;
  return lc;
}

namespace {
void AppendEscaped(std::string* out, std::string_view s) {
  const bool text = IsUtf8(s);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (u < 0x20 || u == 0x7f || (u >= 0x80 && !text)) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\x");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
}
}  // namespace

std::string LineExcerpt(std::string_view text, std::size_t pos, std::size_t width) {
  pos = std::min(pos, text.size());
  std::size_t begin = pos == 0 ? 0 : text.rfind('\n', pos - 1);
  begin = (pos == 0 || begin == std::string_view::npos) ? 0 : begin + 1;
  std::size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  if (end > begin && text[end - 1] == '\r') --end;
  std::string out;
  std::size_t from = begin;
  std::size_t to = end;
  if (to - from > width) {
    from = pos > begin + width / 2 ? pos - width / 2 : begin;
    to = std::min(end, from + width);
  }
  if (from > begin) out.append("...");
  AppendEscaped(&out, text.substr(from, to - from));
  if (to < end) out.append("...");
  return out;
}

bool IsUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if ((*p & 0xE0) == 0xC0) {
      n = 1, cp = *p & 0x1F;
    } else if ((*p & 0xF0) == 0xE0) {
      n = 2, cp = *p & 0x0F;
    } else if ((*p & 0xF8) == 0xF0) {
      n = 3, cp = *p & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

std::string Quote(std::string_view text, std::size_t width) {
  std::string out = "'";
  AppendEscaped(&out, text.substr(0, width));
  if (text.size() > width) out.append("...");
  out.push_back('\'');
  return out;
}

}  // namespace escala::data::internal
