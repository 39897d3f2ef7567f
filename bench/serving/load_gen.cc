// Closed-loop gRPC load generator for ModelInfer: C connections x S outstanding requests each,
// every request carrying the same `rows x features` FP32 "features" tensor. Prints one line:
//   requests/s rows/s p50_us p99_us errors
// Used by bench/serving/run.sh against escala serve, a bare server returning a constant, and a
// Python grpcio server, with identical requests.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "inference/open_inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "127.0.0.1:8001";
  std::string model = "m";
  int rows = 1;
  int features = 64;
  int connections = 16;
  int streams = 8;
  double seconds = 10;
  double warmup = 2;
};

struct Stream {
  inference::GRPCInferenceService::Stub* stub;
  const inference::ModelInferRequest* request;
  inference::ModelInferResponse response;
  std::unique_ptr<grpc::ClientContext> ctx;
  Clock::time_point start;
};

struct Shared {
  Clock::time_point measure_from, stop_at;
  std::mutex mu;
  std::vector<std::uint32_t> latencies_us;  // guarded by mu
  std::atomic<long> errors{0};
  std::atomic<long> outstanding{0};
};

void Issue(Stream* s, Shared* sh);

void OnDone(Stream* s, Shared* sh, const grpc::Status& status) {
  const auto now = Clock::now();
  if (!status.ok()) {
    if (sh->errors.fetch_add(1) == 0) {
      std::fprintf(stderr, "load_gen: first error: code %d: %s\n",
                   static_cast<int>(status.error_code()), status.error_message().c_str());
    }
  } else if (s->start >= sh->measure_from && now <= sh->stop_at) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - s->start).count();
    std::lock_guard lock(sh->mu);
    sh->latencies_us.push_back(static_cast<std::uint32_t>(us));
  }
  if (now < sh->stop_at) {
    Issue(s, sh);
  } else {
    sh->outstanding.fetch_sub(1);
  }
}

void Issue(Stream* s, Shared* sh) {
  s->ctx = std::make_unique<grpc::ClientContext>();
  s->response.Clear();
  s->start = Clock::now();
  s->stub->async()->ModelInfer(s->ctx.get(), s->request, &s->response,
                               [s, sh](grpc::Status st) { OnDone(s, sh, st); });
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--target")
      o.target = v;
    else if (k == "--model")
      o.model = v;
    else if (k == "--rows")
      o.rows = std::atoi(v.c_str());
    else if (k == "--features")
      o.features = std::atoi(v.c_str());
    else if (k == "--connections")
      o.connections = std::atoi(v.c_str());
    else if (k == "--streams")
      o.streams = std::atoi(v.c_str());
    else if (k == "--seconds")
      o.seconds = std::atof(v.c_str());
    else if (k == "--warmup")
      o.warmup = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  inference::ModelInferRequest request;
  request.set_model_name(o.model);
  auto* in = request.add_inputs();
  in->set_name("features");
  in->set_datatype("FP32");
  in->add_shape(o.rows);
  in->add_shape(o.features);
  std::vector<float> values(static_cast<std::size_t>(o.rows * o.features));
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>((i * 37) % 17) / 8.0f - 1.0f;
  request.add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int c = 0; c < o.connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("escala.bench.connection", c);  // distinct args: a distinct TCP connection
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(
        grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(inference::GRPCInferenceService::NewStub(channels.back()));
  }
  Shared sh;
  const auto t0 = Clock::now();
  sh.measure_from = t0 + std::chrono::milliseconds(static_cast<long>(o.warmup * 1000));
  sh.stop_at = sh.measure_from + std::chrono::milliseconds(static_cast<long>(o.seconds * 1000));
  std::vector<std::unique_ptr<Stream>> streams;
  for (int c = 0; c < o.connections; ++c) {
    for (int s = 0; s < o.streams; ++s) {
      auto st = std::make_unique<Stream>();
      st->stub = stubs[static_cast<std::size_t>(c)].get();
      st->request = &request;
      streams.push_back(std::move(st));
    }
  }
  sh.outstanding = static_cast<long>(streams.size());
  for (auto& s : streams) Issue(s.get(), &sh);
  while (sh.outstanding.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (Clock::now() > sh.stop_at + std::chrono::seconds(30)) break;  // bounded
  }
  std::vector<std::uint32_t> lat;
  {
    std::lock_guard lock(sh.mu);
    lat = sh.latencies_us;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty()
               ? 0u
               : lat[std::min(lat.size() - 1,
                              static_cast<std::size_t>(p * static_cast<double>(lat.size())))];
  };
  const double rps = static_cast<double>(lat.size()) / o.seconds;
  std::printf("%.0f %.0f %u %u %ld\n", rps, rps * o.rows, pct(0.5), pct(0.99), sh.errors.load());
  return sh.errors.load() == 0 ? 0 : 1;
}
