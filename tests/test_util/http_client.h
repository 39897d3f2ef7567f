// A raw HTTP/1.1 client over a loopback TCP connection, for tests of the serving HTTP endpoint:
// every call is bounded by a timeout, so a server that does not answer fails a test instead of
// hanging it.
#ifndef ESCALA_TESTS_TEST_UTIL_HTTP_CLIENT_H_
#define ESCALA_TESTS_TEST_UTIL_HTTP_CLIENT_H_

#include <chrono>
#include <string>
#include <string_view>

namespace escala::testing {

struct HttpResponse {
  int status = 0;  // 0: no complete response
  std::string head;
  std::string body;
  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
};

// One connection to 127.0.0.1:`port` (or to `host`:port, an IPv4 or IPv6 literal).
class RawConnection {
 public:
  explicit RawConnection(int port, std::chrono::milliseconds timeout = std::chrono::seconds(2),
                         const std::string& host = "127.0.0.1");
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view bytes);
  // Ends what this side sends (the server reads EOF).
  void ShutdownWrite();
  // Reads one response: the head and, unless `head_only` (an answer to HEAD), a Content-Length
  // body. status 0 when none is complete within `timeout`.
  HttpResponse Read(std::chrono::milliseconds timeout = std::chrono::seconds(2),
                    bool head_only = false);
  // True when the server closes the connection (EOF or reset) within `timeout`; bytes it sends
  // meanwhile are discarded.
  bool WaitClosed(std::chrono::milliseconds timeout);

 private:
  // Appends what arrives before `deadline` to pending_; false on timeout, EOF or error.
  bool Fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string pending_;
};

// GET `path` with Connection: close; status 0 when no answer within `timeout`.
HttpResponse HttpGet(int port, const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_HTTP_CLIENT_H_
