// Fault injection for tests of crash safety: named points in escala's long operations where a
// test can make a worker die as a crashed or OOM-killed process would (SIGKILL to itself, no
// cleanup), chosen through the environment of the process:
//
//   ESCALA_FAULT=<point>[:<path suffix>][@<rank>]
//
//   rendezvous       a worker of a distributed job joined its round, before the data plane
//                    connects (distributed::Connect)
//   pipeline_fit     training from a table, before the feature pipeline is fitted (TrainTable)
//   write:<suffix>   a file whose path ends with <suffix> was written in full under its temporary
//                    name, before the rename that publishes it (WriteFileAtomic), e.g.
//                    write:.bundle, write:checkpoint.ckpt
//
// @<rank> limits it to one rank (ESCALA_RANK, else RANK; 0 without either). A fault fires on the
// first attempt of a job only (ESCALA_RESTART_COUNT 0 or unset), so that `escala launch
// --max-restarts` can show the restarted job finishing. Without ESCALA_FAULT a point costs one
// getenv; the points sit at phase boundaries, never in per-row loops.
//
// Thread-safety: FaultPoint may be called from any thread.
#ifndef ESCALA_CORE_FAULT_INJECTION_H_
#define ESCALA_CORE_FAULT_INJECTION_H_

#include <string_view>

namespace escala {

// Dies here when ESCALA_FAULT names `point` (and a suffix of `path`), this rank and attempt.
void FaultPoint(std::string_view point, std::string_view path = {});

}  // namespace escala

#endif  // ESCALA_CORE_FAULT_INJECTION_H_
