#include "escala/core/memory_info.h"

#include <fstream>
#include <string>
#include <string_view>

namespace escala {

namespace {

// The value of a "Key:   1234 kB" line of a /proc file, in bytes; 0 if absent.
std::uint64_t ProcKilobytes(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 ||
        line[key.size()] != ':') {
      continue;
    }
    try {
      return std::stoull(line.substr(key.size() + 1)) * 1024;
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

}  // namespace

std::uint64_t AvailableMemoryBytes() {
  return ProcKilobytes("/proc/meminfo", "MemAvailable");
}

std::uint64_t PeakResidentBytes() {
  return ProcKilobytes("/proc/self/status", "VmHWM");
}

}  // namespace escala
