// The one place escala errors become gRPC statuses (and back, for the client). Internal
// failures are logged in full and reach the caller as a generic message, so that no paths or
// internal details leak.
#ifndef ESCALA_SRC_SERVING_GRPC_STATUS_H_
#define ESCALA_SRC_SERVING_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "escala/core/error.h"

namespace escala::serving::internal {

grpc::Status ToGrpcStatus(const Status& status);
// From a status a server sent (client side).
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_GRPC_STATUS_H_
