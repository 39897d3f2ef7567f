// Why a server could not listen on an address: the servers (the coordinator, the ring's data
// plane, the serving endpoints) turn SO_REUSEPORT off, so that a second listener on a port fails
// instead of silently sharing it; this names the reason in their errors. Part of the private rpc
// module (src/core/rpc/).
//
// Thread-safety: a free function.
#ifndef ESCALA_SRC_CORE_RPC_LISTEN_CHECK_H_
#define ESCALA_SRC_CORE_RPC_LISTEN_CHECK_H_

#include <string>
#include <string_view>

namespace escala::internal {

// Binds a probe socket (SO_REUSEADDR only) to `address` ("host:port", "[v6]:port") and says why
// that fails: "address in use (another process listens there)", "not an address of this host",
// "permission denied", "cannot resolve host ..."; "the address is free now" when the probe binds.
std::string ListenFailureReason(std::string_view address);

}  // namespace escala::internal

#endif  // ESCALA_SRC_CORE_RPC_LISTEN_CHECK_H_
