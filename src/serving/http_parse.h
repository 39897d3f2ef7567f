// HTTP/1.1 request framing for the endpoint's event loop (http_endpoint.cc): the head parser
// and the chunked-body decoder, on byte buffers only, so that tests and the fuzzer drive them
// without sockets. Internal to the serving module.
#ifndef ESCALA_SERVING_HTTP_PARSE_H_
#define ESCALA_SERVING_HTTP_PARSE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace escala::serving::internal {

// What a request head says about the request and its body. Views into the parsed buffer.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  bool keep_alive = true;
  bool has_length = false;
  bool http10 = false;
  bool has_transfer_encoding = false;  // any Transfer-Encoding header, even an empty one
  int codings = 0;                     // its codings, over all its headers
  int chunked_codings = 0;             // how many of them are "chunked"
  bool chunked = false;                // the last of them is "chunked"
  bool expect_continue = false;        // Expect: 100-continue
  std::size_t content_length = 0;      // SIZE_MAX when it does not fit
  std::string_view inference_header_length;
  std::size_t size = 0;  // bytes of the head, leading empty lines and final CRLF CRLF included
};

enum class ParseResult { kIncomplete, kOk, kBad, kBadVersion };

// Parses the head at the start of `buf` (empty lines before it are skipped, as RFC 9112 asks):
// kIncomplete until its final CRLF CRLF has arrived.
ParseResult ParseRequestHead(std::string_view buf, RequestHead* h);

// Decodes a chunked body (RFC 9112, section 7.1) as it arrives, in any pieces: hex chunk sizes
// (extensions ignored), the data, then trailer fields, which are discarded. A size line, the
// extensions together and the trailers together may each take 4 KiB; the decoded body may not
// exceed the caller's limit. A CR, LF or other control byte inside a line, whitespace after a
// size without an extension, or a trailer line that is not "name: value" is malformed (a proxy
// that reads them otherwise would frame the body differently). Pieces of one body give the same
// result whatever their boundaries.
class ChunkedBody {
 public:
  enum class Status { kMore, kDone, kBad, kTooLarge };

  // Consumes from `in` what belongs to the body (*used bytes: all of it unless done or failed),
  // appending its data to *body, which may not exceed max_body bytes.
  Status Feed(std::string_view in, std::size_t* used, std::string* body, std::size_t max_body);

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer };
  static constexpr std::size_t kMaxLine = 4096;  // a size line or the trailers, CRLFs included

  Status EndLine(std::size_t have, std::size_t max_body);
  Status ChunkSize(std::string_view line, std::size_t have, std::size_t max_body);
  Status Trailer(std::string_view line);

  State state_ = State::kSize;
  std::string line_;
  std::size_t remaining_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t extension_bytes_ = 0;  // of every size line, the hex digits and CRLF left out
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SERVING_HTTP_PARSE_H_
