// Process-wide settings for a fast gRPC data plane, applied only when the program asks for them.
//
// Two settings make the gRPC ring communicator markedly faster (docs/distributed.md, "Data plane"),
// but each changes the whole process, not just escala's connections, so the library never applies
// them on its own (distributed::Connect changes nothing process-wide):
//
//  * gRPC's "poll" I/O engine (GRPC_POLL_STRATEGY=poll). With the default epoll1 engine every
//    thread that waits in gRPC (the callback API's threads, synchronous calls) may pick up the
//    data plane's socket events and hand them to the communicator's thread: two context switches
//    per message, which doubled small-message latency in our measurements. With "poll" each
//    completion queue polls only its own calls' sockets. The engine is chosen when gRPC starts,
//    so this must happen before anything in the process uses gRPC; it is skipped when
//    GRPC_POLL_STRATEGY is already set or gRPC already started.
//  * glibc malloc's mmap threshold (32 MiB) and trim threshold (256 MiB). gRPC allocates a fresh
//    buffer for every socket read; with glibc's defaults, buffers of a few hundred KiB go back to
//    the kernel as soon as they are freed and are page-faulted in again on the next read, which on
//    a virtual machine costs more than the transfer itself. Skipped when GLIBC_TUNABLES sets
//    glibc.malloc options or ESCALA_MALLOC_TUNING=0, and on other C libraries.
//
// A program that joins distributed jobs calls TuneProcessForDataPlane() once, early (the `escala`
// command does, before it connects a worker); an embedding program that runs its own gRPC
// services decides for itself.
//
// Thread-safety: may be called from any thread; each setting is applied at most once per process.
#ifndef ESCALA_DIST_PROCESS_TUNING_H_
#define ESCALA_DIST_PROCESS_TUNING_H_

#include <string>

namespace escala::distributed {

struct ProcessTuning {
  bool poll_engine = true;        // select gRPC's "poll" engine (see above)
  bool malloc_thresholds = true;  // raise glibc malloc's mmap and trim thresholds (see above)
};

// What is in effect after TuneProcessForDataPlane.
struct ProcessTuningReport {
  // "poll" (selected here or earlier), the value GRPC_POLL_STRATEGY had, or "default" (gRPC had
  // already started, or poll_engine was off).
  std::string grpc_engine;
  bool malloc_tuned = false;
};

ProcessTuningReport TuneProcessForDataPlane(const ProcessTuning& tuning = {});

}  // namespace escala::distributed

#endif  // ESCALA_DIST_PROCESS_TUNING_H_
