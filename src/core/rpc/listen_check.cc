#include "core/rpc/listen_check.h"

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sys/socket.h>

namespace escala::internal {
namespace {

// "host:port" / "[v6]:port" -> host and port; false when there is no port.
bool SplitAddress(std::string_view address, std::string* host, std::string* port) {
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *host = std::string(h);
  *port = std::string(address.substr(colon + 1));
  return true;
}

std::string ErrnoReason(int err) {
  switch (err) {
    case EADDRINUSE:
      return "address in use (another process listens there)";
    case EADDRNOTAVAIL:
      return "not an address of this host";
    case EACCES:
      return "permission denied (a privileged port?)";
    default:
      return std::strerror(err);
  }
}

}  // namespace

std::string ListenFailureReason(std::string_view address) {
  std::string host, port;
  if (!SplitAddress(address, &host, &port)) return "not host:port";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.empty() || host == "*" ? nullptr : host.c_str(), port.c_str(),
                               &hints, &found);
  if (rc != 0) return fmt::format("cannot resolve host '{}': {}", host, ::gai_strerror(rc));
  int err = 0;
  for (addrinfo* ai = found; ai != nullptr && err == 0; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) err = errno;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return err == 0 ? "the address is free now" : ErrnoReason(err);
}

}  // namespace escala::internal
