// What the kernel says about memory: the machine's available memory and this process's peak
// resident set, read from /proc (Linux), both 0 where /proc cannot be read; and advice for large
// buffers.
#ifndef ESCALA_CORE_MEMORY_INFO_H_
#define ESCALA_CORE_MEMORY_INFO_H_

#include <cstddef>
#include <cstdint>

namespace escala {

// MemAvailable of /proc/meminfo: what new allocations can take without swapping, in bytes.
std::uint64_t AvailableMemoryBytes();

// VmHWM of /proc/self/status: the largest resident set this process has had, in bytes.
std::uint64_t PeakResidentBytes();

// Advises the kernel to back a buffer of kLargeBufferBytes or more with transparent huge pages
// (madvise MADV_HUGEPAGE over its whole 4 KiB pages; honoured where the THP mode is `madvise` or
// `always`); does nothing for smaller buffers, and the buffer is the same either way. Filling a
// feature matrix of hundreds of MiB then takes a page fault per 2 MiB rather than per 4 KiB: on a
// virtual machine those faults cost a sixth of `escala train`'s transform of W0. Matrix and the
// table's columns advise their storage.
inline constexpr std::size_t kLargeBufferBytes = std::size_t{8} << 20;
void AdviseHugePages(void* p, std::size_t bytes) noexcept;

// A transparent huge page (x86-64, and arm64 with 4 KiB pages).
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// Advises huge pages for the whole 2 MiB pages inside [p, p + bytes) only, at any size: a buffer
// that starts on a huge page and is filled from its start then commits at most what 4 KiB pages
// would, plus the unfilled rest of the last huge page it reaches; its tail past the last whole
// huge page stays in 4 KiB pages. The table's columns (DefaultInitAllocator) use it.
void AdviseWholeHugePages(void* p, std::size_t bytes) noexcept;

}  // namespace escala

#endif  // ESCALA_CORE_MEMORY_INFO_H_
