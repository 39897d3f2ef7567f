#include "test_util/http_client.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace escala::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

bool WaitFor(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, MillisLeft(deadline));
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

// A non-blocking connect bounded by `timeout`; -1 when it does not complete.
int ConnectWithin(const std::string& host, int port, std::chrono::milliseconds timeout) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return -1;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const auto deadline = Clock::now() + timeout;
  int err = 0;
  socklen_t err_len = sizeof(err);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 &&
      (errno != EINPROGRESS || !WaitFor(fd, POLLOUT, deadline) ||
       ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    const std::size_t start = pos + 2;
    const std::size_t end = head.find("\r\n", start);
    const std::string_view line(head.data() + start,
                                (end == std::string::npos ? head.size() : end) - start);
    const std::size_t colon = line.find(':');
    if (colon == name.size() && ::strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return std::string(value);
    }
    pos = end;
  }
  return "";
}

RawConnection::RawConnection(int port, std::chrono::milliseconds timeout, const std::string& host)
    : fd_(ConnectWithin(host, port, timeout)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (fd_ >= 0 && !bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd_, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return fd_ >= 0;
}

void RawConnection::ShutdownWrite() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawConnection::Fill(Clock::time_point deadline) {
  if (fd_ < 0 || !WaitFor(fd_, POLLIN, deadline)) return false;
  char buf[16384];
  const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) return false;
  pending_.append(buf, static_cast<std::size_t>(n));
  return true;
}

HttpResponse RawConnection::Read(std::chrono::milliseconds timeout, bool head_only) {
  const auto deadline = Clock::now() + timeout;
  HttpResponse r;
  std::size_t end;
  while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return r;
  }
  r.head = pending_.substr(0, end + 2);
  const std::string length = r.Header("Content-Length");
  const std::size_t body = head_only || length.empty() ? 0 : std::stoul(length);
  while (pending_.size() < end + 4 + body) {
    if (!Fill(deadline)) return r;
  }
  r.body = pending_.substr(end + 4, body);
  pending_.erase(0, end + 4 + body);
  r.status = r.head.size() > 12 ? std::stoi(r.head.substr(9, 3)) : 0;
  return r;
}

bool RawConnection::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (fd_ >= 0 && WaitFor(fd_, POLLIN, deadline)) {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

HttpResponse HttpGet(int port, const std::string& path, std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  RawConnection c(port, timeout);
  if (!c.Send("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) {
    return {};
  }
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (Clock::now() - start));
  return c.Read(left < std::chrono::milliseconds(0) ? std::chrono::milliseconds(0) : left);
}

}  // namespace escala::testing
