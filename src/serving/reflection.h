// gRPC server reflection (grpc.reflection.v1 and v1alpha, ServerReflectionInfo) on the callback
// API, so that tools like grpcurl work without the .proto files.
//
// Why not gRPC's own plugin: it is a synchronous service, and one synchronous service makes the
// server start polling threads that take I/O events from the callback threads serving
// inference (about +30% on 1x1 latency, measured by bench/serving). This one is a generic
// callback service that encodes the reflection messages (a small, stable protobuf schema) by hand
// and answers from the process's generated descriptor pool, without linking
// libgrpc++_reflection, whose generated classes would clash with an application's own copy.
#ifndef ESCALA_SERVING_REFLECTION_H_
#define ESCALA_SERVING_REFLECTION_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>

namespace escala::serving::internal {

// Answers ServerReflectionInfo streams; every other method of the generic service is
// UNIMPLEMENTED. `services` are the fully-qualified service names that list_services reports.
std::unique_ptr<grpc::CallbackGenericService> MakeReflectionService(
    std::vector<std::string> services);

// One reflection request (the wire bytes of a ServerReflectionRequest) answered as the wire bytes
// of a ServerReflectionResponse. `sent` holds the files already sent on this stream (each file
// descriptor goes out once per stream, with its dependencies first).
std::string AnswerReflection(const std::string& request, const std::vector<std::string>& services,
                             std::vector<std::string>* sent);

}  // namespace escala::serving::internal

#endif  // ESCALA_SERVING_REFLECTION_H_
