#include "serving/http_parse.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <strings.h>
#include <system_error>

namespace escala::serving::internal {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "METHOD SP target SP HTTP/1.x"; HTTP/1.0 closes unless the headers ask to keep alive.
ParseResult ParseRequestLine(std::string_view line, RequestHead* h) {
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) return ParseResult::kBad;
  h->method = line.substr(0, sp1);
  h->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version.find_first_of(" \t") != std::string_view::npos) return ParseResult::kBad;
  if (version == "HTTP/1.1") return ParseResult::kOk;
  if (version == "HTTP/1.0") {
    h->http10 = true;
    h->keep_alive = false;
    return ParseResult::kOk;
  }
  return version.starts_with("HTTP/") ? ParseResult::kBadVersion : ParseResult::kBad;
}

// Connection tokens; "close" wins over "keep-alive".
void ParseConnection(std::string_view value, RequestHead* h, bool* saw_close) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view token = Trim(value.substr(0, comma));
    if (IEquals(token, "close")) *saw_close = true;
    if (IEquals(token, "keep-alive")) h->keep_alive = true;
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
}

// Decimal digits; two Content-Length headers must agree.
ParseResult ParseContentLength(std::string_view value, RequestHead* h) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) {
    return ParseResult::kBad;
  }
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec == std::errc::result_out_of_range) n = std::numeric_limits<std::size_t>::max();
  if (h->has_length && h->content_length != n) return ParseResult::kBad;
  h->has_length = true;
  h->content_length = n;
  return ParseResult::kOk;
}

// Transfer-Encoding's codings, in order; a later header continues the list.
void ParseTransferEncoding(std::string_view value, RequestHead* h) {
  h->has_transfer_encoding = true;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view coding = Trim(value.substr(0, comma));
    if (!coding.empty()) {
      ++h->codings;
      h->chunked = IEquals(coding, "chunked");
      h->chunked_codings += h->chunked ? 1 : 0;
    }
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
}

ParseResult ParseHeader(std::string_view line, RequestHead* h, bool* saw_close) {
  const std::size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos || line.front() == ' ' ||
      line.front() == '\t') {
    return ParseResult::kBad;  // no name, or obsolete line folding
  }
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = Trim(line.substr(colon + 1));
  if (name.find_first_of(" \t") != std::string_view::npos) return ParseResult::kBad;
  if (IEquals(name, "connection")) ParseConnection(value, h, saw_close);
  if (IEquals(name, "transfer-encoding")) ParseTransferEncoding(value, h);
  if (IEquals(name, "content-length")) return ParseContentLength(value, h);
  if (IEquals(name, "inference-header-content-length")) h->inference_header_length = value;
  if (IEquals(name, "expect") && IEquals(value, "100-continue")) h->expect_continue = true;
  return ParseResult::kOk;
}

// A byte that may not appear inside a chunk's size line or a trailer line: CR, LF, other controls.
bool HasControl(std::string_view line) {
  return std::any_of(line.begin(), line.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return (u < 0x20 && ch != '\t') || u == 0x7f;
  });
}

}  // namespace

ParseResult ParseRequestHead(std::string_view buf, RequestHead* h) {
  std::size_t start = 0;
  while (buf.substr(start).starts_with("\r\n")) start += 2;
  const std::size_t end = buf.find("\r\n\r\n", start);
  if (end == std::string_view::npos) return ParseResult::kIncomplete;
  *h = RequestHead{};
  h->size = end + 4;
  std::string_view rest = buf.substr(start, end + 2 - start);  // lines, each ending in CRLF
  std::size_t eol = rest.find("\r\n");
  ParseResult r = ParseRequestLine(rest.substr(0, eol), h);
  bool saw_close = false;
  for (rest.remove_prefix(eol + 2); r == ParseResult::kOk && !rest.empty();
       rest.remove_prefix(eol + 2)) {
    eol = rest.find("\r\n");
    r = ParseHeader(rest.substr(0, eol), h, &saw_close);
  }
  if (saw_close) h->keep_alive = false;
  return r;
}

ChunkedBody::Status ChunkedBody::Feed(std::string_view in, std::size_t* used, std::string* body,
                                      std::size_t max_body) {
  std::size_t at = 0;
  Status status = Status::kMore;
  while (at < in.size() && status == Status::kMore) {
    if (state_ == State::kData) {
      const std::size_t take = std::min(remaining_, in.size() - at);
      body->append(in.substr(at, take));
      at += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataEnd;
      continue;
    }
    if (line_.size() >= kMaxLine) {
      status = Status::kBad;
      break;
    }
    line_.push_back(in[at++]);
    if (line_.size() >= 2 && line_.ends_with("\r\n")) status = EndLine(body->size(), max_body);
  }
  *used = at;
  return status;
}

// A whole line (CRLF included) of the current state.
ChunkedBody::Status ChunkedBody::EndLine(std::size_t have, std::size_t max_body) {
  const std::string_view line(line_.data(), line_.size() - 2);
  if (HasControl(line)) return Status::kBad;
  Status status = Status::kMore;
  switch (state_) {
    case State::kSize:
      status = ChunkSize(line, have, max_body);
      break;
    case State::kDataEnd:  // the CRLF after a chunk's data
      status = line.empty() ? Status::kMore : Status::kBad;
      state_ = State::kSize;
      break;
    case State::kTrailer:
      status = Trailer(line);
      break;
    case State::kData:
      break;
  }
  line_.clear();
  return status;
}

// A trailer field ("name: value", discarded), or the empty line that ends the body.
ChunkedBody::Status ChunkedBody::Trailer(std::string_view line) {
  if (line.empty()) return Status::kDone;
  trailer_bytes_ += line.size() + 2;
  const std::size_t colon = line.find(':');
  const bool field = colon != 0 && colon != std::string_view::npos &&
                     line.substr(0, colon).find_first_of(" \t") == std::string_view::npos;
  return field && trailer_bytes_ <= kMaxLine ? Status::kMore : Status::kBad;
}

// "1a;name=value": the next chunk's size in hex; 0 ends the data.
ChunkedBody::Status ChunkedBody::ChunkSize(std::string_view line, std::size_t have,
                                           std::size_t max_body) {
  const std::size_t semicolon = line.find(';');
  std::string_view digits = line.substr(0, semicolon);
  while (semicolon != std::string_view::npos && !digits.empty() &&
         (digits.back() == ' ' || digits.back() == '\t')) {
    digits.remove_suffix(1);  // whitespace before an extension only, none before the size
  }
  extension_bytes_ += line.size() - digits.size();
  if (extension_bytes_ > kMaxLine) return Status::kBad;
  std::size_t size = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
  if (digits.empty() || digits.front() == '-' || digits.front() == '+') return Status::kBad;
  if (ec == std::errc::result_out_of_range) return Status::kTooLarge;
  if (ec != std::errc() || end != digits.data() + digits.size()) return Status::kBad;
  if (size > max_body - std::min(have, max_body)) return Status::kTooLarge;
  remaining_ = size;
  state_ = size == 0 ? State::kTrailer : State::kData;
  return Status::kMore;
}

}  // namespace escala::serving::internal
