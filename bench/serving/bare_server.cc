// The baseline for the serving benchmark: a bare C++ gRPC server implementing ModelInfer with the
// same callback API and the same response shape as escala serve, but returning a constant — the
// cost of gRPC itself. Prints "port N" and serves until SIGTERM/SIGINT.
#include <cstdio>
#include <cstring>
#include <signal.h>
#include <string>

#include <grpcpp/grpcpp.h>

#include "inference/open_inference.grpc.pb.h"

namespace {

class Bare final : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    resp->set_model_name(req->model_name());
    resp->set_model_version("1");
    const std::int64_t rows =
        req->inputs_size() > 0 && req->inputs(0).shape_size() > 0 ? req->inputs(0).shape(0) : 1;
    auto* o = resp->add_outputs();
    o->set_name("probabilities");
    o->set_datatype("FP32");
    o->add_shape(rows);
    o->add_shape(2);
    std::string* raw = resp->add_raw_output_contents();
    raw->resize(static_cast<std::size_t>(rows) * 8);
    const float p[2] = {0.25f, 0.75f};
    for (std::int64_t i = 0; i < rows; ++i) std::memcpy(raw->data() + i * 8, p, 8);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:0";
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Bare service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(256 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("port %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown();
  return 0;
}
