// HTTP/1.1 request framing as the REST endpoint reads it: the bytes are requests one after another
// (pipelining); each head is parsed (ParseRequestHead), and a chunked body is decoded twice, at
// once and in pieces whose sizes the input's bytes choose. The two decodings must agree, what a
// decoder consumes must lie within what it was given, and a body must stay within its limit.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "serving/http_parse.h"

namespace {

using escala::serving::internal::ChunkedBody;
using escala::serving::internal::ParseRequestHead;
using escala::serving::internal::ParseResult;
using escala::serving::internal::RequestHead;

constexpr std::size_t kMaxBody = 1 << 12;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Decoded {
  ChunkedBody::Status status = ChunkedBody::Status::kMore;
  std::size_t used = 0;
  std::string body;
};

// Decodes `in` in pieces of 1 + (byte % 16) bytes, the sizes read from `in` itself (all at once
// when `whole`).
Decoded Decode(std::string_view in, bool whole) {
  ChunkedBody decoder;
  Decoded d;
  std::size_t at = 0;
  while (at < in.size() && d.status == ChunkedBody::Status::kMore) {
    const std::size_t n =
        whole ? in.size() : std::min(in.size() - at, 1 + static_cast<std::size_t>(in[at]) % 16);
    std::size_t used = 0;
    d.status = decoder.Feed(in.substr(at, n), &used, &d.body, kMaxBody);
    Check(used <= n && (used == n || d.status != ChunkedBody::Status::kMore));
    Check(d.body.size() <= kMaxBody);
    at += used;
  }
  d.used = at;
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest = escala::fuzz::AsText(data, size);
  for (int requests = 0; requests < 8 && !rest.empty(); ++requests) {
    RequestHead h;
    if (ParseRequestHead(rest, &h) != ParseResult::kOk) return 0;
    Check(h.size <= rest.size());
    rest.remove_prefix(h.size);
    if (!h.chunked || h.codings != 1 || h.has_length) {
      rest.remove_prefix(std::min(rest.size(), h.content_length));
      continue;
    }
    const Decoded once = Decode(rest, true), pieces = Decode(rest, false);
    Check(once.status == pieces.status && once.body == pieces.body);
    if (once.status != ChunkedBody::Status::kDone) return 0;
    Check(once.used == pieces.used);
    rest.remove_prefix(once.used);
  }
  return 0;
}
