// Closed-loop HTTP/1.1 load generator for the REST API's infer endpoint: C keep-alive
// connections, one request outstanding on each, every request the same POST body. Prints one line
// in load_gen's format:
//   requests/s rows/s p50_us p99_us errors
// Used by bench/serving/rest.sh beside load_gen (gRPC) against the same escala serve.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int port = 8002;
  std::string path = "/v2/models/m/infer";
  std::string body_file;
  int rows = 1;
  int connections = 1;
  double seconds = 10;
  double warmup = 2;
};

struct Shared {
  Clock::time_point measure_from, stop_at;
  std::mutex mu;
  std::vector<std::uint32_t> latencies_us;  // guarded by mu
  std::atomic<long> errors{0};
};

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  return fd;
}

bool SendAll(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one response (head and Content-Length body) from `fd`, keeping what follows in `buf`;
// its status, or 0 on a closed or broken connection.
int ReadResponse(int fd, std::string& buf) {
  std::size_t head_end;
  char chunk[16384];
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return 0;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  const int status = buf.size() > 12 ? std::atoi(buf.c_str() + 9) : 0;
  const std::size_t cl = buf.find("Content-Length: ");
  const std::size_t length =
      cl < head_end ? std::strtoull(buf.c_str() + cl + 16, nullptr, 10) : std::size_t{0};
  const std::size_t total = head_end + 4 + length;
  while (buf.size() < total) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return 0;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  buf.erase(0, total);
  return status;
}

void Connection(const Options& o, const std::string& request, Shared& s) {
  int fd = Connect(o.port);
  std::string buf;
  std::vector<std::uint32_t> mine;
  while (Clock::now() < s.stop_at) {
    const auto start = Clock::now();
    const bool ok = fd >= 0 && SendAll(fd, request) && ReadResponse(fd, buf) == 200;
    const auto end = Clock::now();
    if (!ok) {
      s.errors.fetch_add(1);
      if (fd >= 0) ::close(fd);
      fd = Connect(o.port);
      buf.clear();
      continue;
    }
    if (start >= s.measure_from) {
      mine.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
    }
  }
  if (fd >= 0) ::close(fd);
  std::lock_guard lock(s.mu);
  s.latencies_us.insert(s.latencies_us.end(), mine.begin(), mine.end());
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") o.port = std::atoi(v.c_str());
    if (k == "--path") o.path = v;
    if (k == "--body") o.body_file = v;
    if (k == "--rows") o.rows = std::atoi(v.c_str());
    if (k == "--connections") o.connections = std::atoi(v.c_str());
    if (k == "--seconds") o.seconds = std::atof(v.c_str());
    if (k == "--warmup") o.warmup = std::atof(v.c_str());
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::ifstream in(o.body_file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr,
                 "usage: rest_load_gen --port P --body FILE [--path /v2/models/m/infer] "
                 "[--rows R] [--connections C] [--seconds S] [--warmup W]\n");
    return 2;
  }
  std::stringstream body;
  body << in.rdbuf();
  const std::string request = "POST " + o.path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.str().size()) + "\r\n\r\n" + body.str();
  Shared s;
  const auto now = Clock::now();
  s.measure_from =
      now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  s.stop_at = s.measure_from +
              std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&] { Connection(o, request, s); });
  }
  for (auto& t : threads) t.join();
  auto& lat = s.latencies_us;
  std::sort(lat.begin(), lat.end());
  const auto pct = [&](double q) {
    return lat.empty() ? 0u
                       : lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * lat.size()))];
  };
  const double rps = static_cast<double>(lat.size()) / o.seconds;
  std::printf("%.0f %.0f %u %u %ld\n", rps, rps * o.rows, pct(0.5), pct(0.99), s.errors.load());
  return 0;
}
