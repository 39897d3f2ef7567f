#include "escala/distributed/process_tuning.h"

#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <mutex>

#include "distributed/transport.h"

namespace escala::distributed {
namespace {

// The reasons are in process_tuning.h.
bool TuneMallocOnce() {
#ifdef __GLIBC__
  static std::once_flag once;
  static bool tuned = false;
  std::call_once(once, [] {
    if (const char* v = std::getenv("ESCALA_MALLOC_TUNING"); v != nullptr && *v == '0') return;
    if (const char* t = std::getenv("GLIBC_TUNABLES");
        t != nullptr && std::strstr(t, "glibc.malloc.") != nullptr) {
      return;
    }
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    tuned = true;
  });
  return tuned;
#else
  return false;
#endif
}

}  // namespace

ProcessTuningReport TuneProcessForDataPlane(const ProcessTuning& tuning) {
  ProcessTuningReport report;
  report.grpc_engine = tuning.poll_engine ? internal::PreferPollEngine() : "default";
  if (tuning.malloc_thresholds) report.malloc_tuned = TuneMallocOnce();
  return report;
}

}  // namespace escala::distributed
