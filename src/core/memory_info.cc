#include "escala/core/memory_info.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include <sys/mman.h>

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

void AdviseHugePages(void* p, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t kPage = 4096;
  if (p == nullptr || bytes < kLargeBufferBytes) return;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kPage - 1) / kPage * kPage;
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) / kPage * kPage;
  // Advice only: a kernel without THP, or a failed call, leaves the buffer in small pages.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

void AdviseWholeHugePages(void* p, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  const auto begin = (at + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const auto end = (at + bytes) / kHugePageBytes * kHugePageBytes;
  if (p != nullptr && end > begin)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace escala
