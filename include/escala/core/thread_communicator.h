// In-process communicators whose ranks are threads: for tests of every distributed code path
// without processes or sockets, and for multi-threaded data-parallel training in one process.
//
// Collectives meet in shared memory. Reductions are element-partitioned (rank r reduces slice r
// of every buffer, reading ranks in order 0..N-1), so results are deterministic and identical on
// every rank. A rank that does not arrive before the deadline poisons the whole group: the
// waiting ranks fail with kDeadlineExceeded naming the missing ranks, and any later call on any
// rank fails with kAborted.
//
// Thread-safety: each rank's communicator is used by one thread, as Communicator says; the group
// itself is internally synchronised.
#ifndef ESCALA_CORE_THREAD_COMMUNICATOR_H_
#define ESCALA_CORE_THREAD_COMMUNICATOR_H_

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "escala/core/communicator.h"

namespace escala {

// Creates `world` connected communicators; element r is rank r. Each may be moved to its thread.
std::vector<std::unique_ptr<Communicator>> MakeThreadGroup(
    int world, std::chrono::milliseconds default_timeout = std::chrono::minutes(5));

// Runs fn(comm) on `world` threads, one per rank, and joins them. If any rank throws, the group
// is aborted (so no rank hangs) and the first error is rethrown after all threads have ended.
void RunOnThreadRanks(int world, const std::function<void(Communicator& comm)>& fn,
                      std::chrono::milliseconds default_timeout = std::chrono::minutes(5));

}  // namespace escala

#endif  // ESCALA_CORE_THREAD_COMMUNICATOR_H_
