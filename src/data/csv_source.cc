#include "data/csv_source.h"

#include <algorithm>
#include <cstring>

#include "escala/core/error.h"

namespace escala::data::internal {
namespace {

constexpr std::size_t kMaxRecordBytes = std::size_t{1} << 30;

bool QuoteMode(const CsvOptions& o) {
  return o.quote != '\0' && o.quoted_newlines;
}

// Record-boundary scanner: tracks whether the position is at a record start, inside a quoted
// field, or inside a comment line.
struct Scanner {
  const CsvOptions& o;
  bool at_start = true;
  bool in_quotes = false;
  bool in_comment = false;

  // Scans text[from, to); returns the index just past the first record end at or after index
  // `first`, or 0 if none (the state then reflects position `to`). first >= from.
  std::size_t Scan(std::string_view text, std::size_t from, std::size_t to, std::size_t first) {
    const bool quote_free_block =
        !in_quotes && !in_comment &&
        std::memchr(text.data() + from, o.quote, to - from) == nullptr &&
        (o.comment == '\0' || std::memchr(text.data() + from, o.comment, to - from) == nullptr);
    if (quote_free_block) {
      const std::size_t start = std::max(from, first);
      const void* nl = start < to ? std::memchr(text.data() + start, '\n', to - start) : nullptr;
      if (nl != nullptr) {
        at_start = true;
        return static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1;
      }
      if (to > from) at_start = text[to - 1] == '\n';
      return 0;
    }
    for (std::size_t i = from; i < to; ++i) {
      const char c = text[i];
      if (in_comment) {
        if (c == '\n') {
          in_comment = false;
          at_start = true;
          if (i >= first) return i + 1;
        }
        continue;
      }
      if (at_start && !in_quotes && o.comment != '\0' && c == o.comment) {
        in_comment = true;
        at_start = false;
        continue;
      }
      at_start = false;
      if (c == o.quote) {
        in_quotes = !in_quotes;
      } else if (c == '\n' && !in_quotes) {
        at_start = true;
        if (i >= first) return i + 1;
      }
    }
    return 0;
  }
};

}  // namespace

void ByteBuffer::Reserve(std::size_t n) {
  if (n <= capacity_) return;
  const std::size_t cap = std::max(n, capacity_ + capacity_ / 2);
  std::unique_ptr<char[]> fresh(new char[cap]);
  if (size_ > 0) std::memcpy(fresh.get(), data_.get(), size_);
  data_ = std::move(fresh);
  capacity_ = cap;
}

std::size_t LastRecordEnd(std::string_view text, const CsvOptions& options) {
  if (!QuoteMode(options) || std::memchr(text.data(), options.quote, text.size()) == nullptr) {
    const void* nl = ::memrchr(text.data(), '\n', text.size());
    return nl == nullptr ? 0
                         : static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1;
  }
  Scanner s{options};
  std::size_t last = 0;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = s.Scan(text, pos, text.size(), pos);
    if (end == 0) return last;
    last = end;
    pos = end;
  }
}

std::size_t RecordEndAfter(std::string_view text, std::size_t pos, const CsvOptions& options) {
  if (!QuoteMode(options) || std::memchr(text.data(), options.quote, text.size()) == nullptr) {
    if (pos >= text.size()) return 0;
    const void* nl = std::memchr(text.data() + pos, '\n', text.size() - pos);
    return nl == nullptr ? 0
                         : static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1;
  }
  Scanner s{options};
  return s.Scan(text, 0, text.size(), pos);
}

std::uint64_t FindRecordStart(const std::string& path, std::uint64_t data_start,
                              std::uint64_t offset, const CsvOptions& options) {
  if (offset <= data_start) return data_start;
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::vector<char> block(kBlock);
  if (!QuoteMode(options)) {
    // Records start after every newline: find the first one at or after offset - 1.
    auto src = OpenByteSource(path, offset - 1);
    std::uint64_t pos = offset - 1;
    for (;;) {
      const std::size_t n = src->Read(block.data(), block.size());
      if (n == 0) return pos;
      const void* nl = std::memchr(block.data(), '\n', n);
      if (nl != nullptr) {
        return pos + static_cast<std::uint64_t>(static_cast<const char*>(nl) - block.data()) + 1;
      }
      pos += n;
    }
  }
  // Quoted newlines: learn the state at `offset` by scanning from the first record.
  auto src = OpenByteSource(path, data_start);
  Scanner s{options};
  std::uint64_t pos = data_start;
  for (;;) {
    const std::size_t n = src->Read(block.data(), block.size());
    if (n == 0) return pos;
    const std::string_view text(block.data(), n);
    const std::uint64_t block_end = pos + n;
    if (block_end <= offset) {
      s.Scan(text, 0, n, n);  // advance the state over the whole block
      pos = block_end;
      continue;
    }
    const std::size_t rel = offset > pos ? static_cast<std::size_t>(offset - pos) : 0;
    if (rel > 0) {
      // Advance the state to `offset` without reporting record ends before it.
      s.Scan(text, 0, rel, rel);
    }
    if (s.at_start && !s.in_quotes && !s.in_comment) return pos + rel;
    const std::size_t end = s.Scan(text, rel, n, rel);
    if (end != 0) return pos + end;
    pos = block_end;
    // The record continues into the next block; its end is the next record start.
    for (;;) {
      const std::size_t m = src->Read(block.data(), block.size());
      if (m == 0) return pos;
      const std::size_t e = s.Scan(std::string_view(block.data(), m), 0, m, 0);
      if (e != 0) return pos + e;
      pos += m;
    }
  }
}

std::string ReadPrefix(const std::string& path, std::size_t max_bytes) {
  auto src = OpenByteSource(path, 0);
  std::string out(max_bytes, '\0');
  const std::size_t n = src->Read(out.data(), max_bytes);
  out.resize(n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// CsvWindowSource

struct CsvWindowSource::State {
  int input = -1;
  std::unique_ptr<ByteSource> src;
  ByteBuffer pending;      // file bytes from pos on
  std::uint64_t pos = 0;   // file offset of the next record
  std::int64_t line = -1;  // line number at pos, -1 if unknown
  bool eof = false;        // the byte source is exhausted
  bool done = false;       // the input is finished
  std::size_t want = 0;    // window size to try (grows for long records)
};

CsvWindowSource::CsvWindowSource(std::vector<CsvInput> inputs, const CsvOptions& options,
                                 std::size_t window_bytes)
    : inputs_(std::move(inputs)), options_(options), window_bytes_(window_bytes) {
  for (int i = 0; i < static_cast<int>(inputs_.size()); ++i) order_.push_back(i);
}

CsvWindowSource::~CsvWindowSource() = default;

void CsvWindowSource::Rewind() {
  cursor_ = 0;
  state_.reset();
}

void CsvWindowSource::SetOrder(std::vector<int> order) {
  order_ = std::move(order);
  Rewind();
}

bool CsvWindowSource::Open(int i) {
  const CsvInput& in = inputs_[static_cast<std::size_t>(i)];
  auto s = std::make_unique<State>();
  s->input = i;
  s->want = window_bytes_;
  const std::uint64_t begin = std::max(in.begin, in.data_start);
  if (in.memory.data() != nullptr || in.path.empty()) {
    if (begin <= in.data_start) {
      s->pos = in.data_start;
    } else if (begin >= in.memory.size()) {
      s->pos = in.memory.size();
    } else {
      // Same rule as for files: the first record starting at or after `begin`.
      const std::string_view data = in.memory.substr(in.data_start);
      const std::size_t rel = static_cast<std::size_t>(begin - in.data_start);
      const std::size_t end = rel == 0 ? 0 : RecordEndAfter(data, rel - 1, options_);
      s->pos = end == 0 ? in.memory.size() : in.data_start + end;
    }
  } else {
    s->pos = FindRecordStart(in.path, in.data_start, begin, options_);
    s->src = OpenByteSource(in.path, s->pos);
  }
  s->line = s->pos == in.data_start ? in.data_line : -1;
  state_ = std::move(s);
  return true;
}

bool CsvWindowSource::Fill(std::size_t want) {
  State& s = *state_;
  while (s.pending.size() < want && !s.eof) {
    s.pending.Reserve(want);
    const std::size_t room = want - s.pending.size();
    const std::size_t n = s.src->Read(s.pending.data() + s.pending.size(), room);
    s.pending.Resize(s.pending.size() + n);
    if (n < room) s.eof = true;
  }
  return s.eof;
}

bool CsvWindowSource::Next(CsvWindow* w) {
  for (;;) {
    if (!state_ || state_->done) {
      if (cursor_ >= order_.size()) return false;
      Open(order_[cursor_++]);
      continue;
    }
    State& s = *state_;
    const CsvInput& in = inputs_[static_cast<std::size_t>(s.input)];
    const bool memory = s.src == nullptr;
    std::string_view text;
    bool at_eof;
    if (memory) {
      const std::string_view rest =
          s.pos < in.memory.size() ? in.memory.substr(static_cast<std::size_t>(s.pos)) : "";
      at_eof = rest.size() <= s.want;
      text = rest.substr(0, s.want);
    } else {
      at_eof = Fill(s.want);
      text = std::string_view(s.pending.data(), s.pending.size());
    }
    if (in.end <= s.pos) {
      s.done = true;
      continue;
    }
    std::size_t cut = 0;
    bool last = false;
    std::int64_t newlines = -1;  // in text[0, cut), when known from the scan
    if (in.end - s.pos > text.size() && !at_eof) {
      // The common case, one pass: without quotes every newline ends a record.
      const TextScan scan = ScanText(text, QuoteMode(options_) ? options_.quote : '\0');
      if (!scan.has_quote) {
        cut = scan.last_newline == static_cast<std::size_t>(-1) ? 0 : scan.last_newline + 1;
        newlines = static_cast<std::int64_t>(scan.newlines);
      } else {
        cut = LastRecordEnd(text, options_);
      }
    } else if (in.end - s.pos <= text.size()) {
      cut = RecordEndAfter(text, static_cast<std::size_t>(in.end - 1 - s.pos), options_);
      if (cut == 0 && at_eof) cut = text.size();
      last = cut != 0;
    }
    if (!last && at_eof) {
      cut = text.size();
      last = true;
    }
    if (cut == 0) {
      if (at_eof || text.empty()) {
        s.done = true;
        continue;
      }
      if (s.want >= kMaxRecordBytes) {
        Throw(ErrorCode::kResourceExhausted,
              "{}: a record starting at byte offset {} is longer than {} MiB (an unterminated "
              "quoted field?)",
              in.name, s.pos, kMaxRecordBytes >> 20);
      }
      s.want *= 2;
      continue;
    }
    w->file_offset = s.pos;
    w->file_index = in.file_index;
    w->input = s.input;
    w->first_line = s.line;
    if (memory) {
      w->data = text.substr(0, cut);
    } else {
      // The pending buffer becomes the window; the partial record after the cut moves to the
      // window's previous buffer, which becomes the new pending buffer.
      w->buffer.swap(s.pending);
      const std::size_t tail = w->buffer.size() - cut;
      s.pending.Resize(tail);
      if (tail > 0) std::memcpy(s.pending.data(), w->buffer.data() + cut, tail);
      w->buffer.Resize(cut);
      w->data = std::string_view(w->buffer.data(), cut);
    }
    if (newlines < 0 && s.line >= 0) {
      newlines = static_cast<std::int64_t>(CountNewlines(w->data.data(), w->data.data() + cut));
    }
    if (s.line >= 0) s.line += newlines;
    // A window cut after its last newline holds at most one record per newline.
    w->row_bound = newlines >= 0 && w->data.back() == '\n' ? newlines : -1;
    s.pos += cut;
    bytes_ += cut;
    s.want = window_bytes_;
    if (last) s.done = true;
    return true;
  }
}

std::int64_t CsvWindowSource::ResolveLine(const CsvWindow& w) {
  if (w.first_line >= 0) return w.first_line;
  const CsvInput& in = inputs_[static_cast<std::size_t>(w.input)];
  if (in.memory.data() != nullptr || in.path.empty()) {
    const std::string_view prefix = in.memory.substr(0, static_cast<std::size_t>(w.file_offset));
    return 1 +
           static_cast<std::int64_t>(CountNewlines(prefix.data(), prefix.data() + prefix.size()));
  }
  auto src = OpenByteSource(in.path, 0);
  std::vector<char> block(std::size_t{1} << 20);
  std::uint64_t left = w.file_offset;
  std::int64_t line = 1;
  while (left > 0) {
    const std::size_t n = src->Read(
        block.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, block.size())));
    if (n == 0) break;
    line += static_cast<std::int64_t>(CountNewlines(block.data(), block.data() + n));
    left -= n;
  }
  return line;
}

}  // namespace escala::data::internal
