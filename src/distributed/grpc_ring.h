// The gRPC ring communicator (backend "grpc-ring"). Private: users get it from
// distributed::Connect().
#ifndef ESCALA_SRC_DIST_GRPC_RING_H_
#define ESCALA_SRC_DIST_GRPC_RING_H_

#include <chrono>
#include <memory>
#include <vector>

#include "distributed/transport.h"
#include "escala/core/communicator.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/coordinator.h"
#include "escala/distributed/job.h"

namespace escala::distributed::internal {

// The peers rank `rank` of `world` exchanges frames with: ring neighbours, the partners of
// recursive doubling (with the fold for a world that is not a power of two), and rank +- 2^k
// (dissemination barrier, binomial-tree broadcast from any root). Sorted, without `rank`.
std::vector<int> LinkedPeers(int rank, int world);

// Builds the communicator over a connected transport. `session` (may be null in tests) relays
// failures both ways; `hosted` is the coordinator this process runs, stopped after the others
// finished (at most `linger`) when the communicator is destroyed.
std::unique_ptr<Communicator> MakeGrpcRing(std::unique_ptr<Transport> transport,
                                           std::shared_ptr<JobSession> session,
                                           std::unique_ptr<Coordinator> hosted,
                                           const RingOptions& options,
                                           std::chrono::milliseconds linger);

}  // namespace escala::distributed::internal

#endif  // ESCALA_SRC_DIST_GRPC_RING_H_
