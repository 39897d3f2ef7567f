// What the kernel says about memory: the machine's available memory and this process's peak
// resident set, read from /proc (Linux). Both return 0 where /proc cannot be read.
#ifndef ESCALA_CORE_MEMORY_INFO_H_
#define ESCALA_CORE_MEMORY_INFO_H_

#include <cstdint>

namespace escala {

// MemAvailable of /proc/meminfo: what new allocations can take without swapping, in bytes.
std::uint64_t AvailableMemoryBytes();

// VmHWM of /proc/self/status: the largest resident set this process has had, in bytes.
std::uint64_t PeakResidentBytes();

}  // namespace escala

#endif  // ESCALA_CORE_MEMORY_INFO_H_
