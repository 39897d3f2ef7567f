// W6: MLP training throughput on a GPU through escala's Trainer and CUDA backend, and where the
// time goes: the GEMMs of one step timed alone with the same cuBLAS calls, and cuBLAS's peak on
// a large square GEMM measured in the same run and precision.
//
//   escala_bench_gpu --sizes 784,1024,1024,10 --batch 1024 --precision fp32 [--epochs 4]
//                    [--steps-per-epoch 32] [--device 0]
//
// Prints one line of key=value pairs. Samples/s is the median over epochs after the first
// (which includes cuBLAS's and the driver's first-use costs); data are resident on the device,
// as the PyTorch peer's are.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "blas.h"
#include "cuda_check.h"
#include "escala/core/communicator.h"
#include "escala/gpu/device.h"
#include "escala/gpu/train.h"
#include "escala/models/factory.h"
#include "escala/train/trainer.h"
#include "memory.h"

namespace {

using namespace escala;

std::vector<std::int64_t> ParseSizes(const std::string& s) {
  std::vector<std::int64_t> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t comma = s.find(',', pos);
    out.push_back(std::stoll(s.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Milliseconds per call of fn, timed with CUDA events over `reps` calls after 3 warm-ups.
template <typename F>
double TimeMs(cudaStream_t stream, int reps, F&& fn) {
  for (int i = 0; i < 3; ++i) fn();
  gpu::internal::Event start(true), stop(true);
  start.Record(stream);
  for (int i = 0; i < reps; ++i) fn();
  stop.Record(stream);
  CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return static_cast<double>(ms) / reps;
}

int Main(int argc, char** argv) {
  std::string sizes_text = "784,1024,1024,10";
  std::int64_t batch = 1024;
  std::string precision = "fp32";
  int epochs = 4;
  std::int64_t steps_per_epoch = 32;
  int device = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--sizes")
      sizes_text = v;
    else if (k == "--batch")
      batch = std::stoll(v);
    else if (k == "--precision")
      precision = v;
    else if (k == "--epochs")
      epochs = std::stoi(v);
    else if (k == "--steps-per-epoch")
      steps_per_epoch = std::stoll(v);
    else if (k == "--device")
      device = std::stoi(v);
    else
      Throw(ErrorCode::kInvalidArgument, "unknown flag {}", k);
  }
  const auto sizes = ParseSizes(sizes_text);
  ESCALA_CHECK(sizes.size() >= 2, kInvalidArgument, "--sizes needs at least two layer widths");
  const std::int64_t d = sizes.front();
  const std::int64_t k = sizes.back();
  const bool tf32 = gpu::ParsePrecision(precision) == gpu::Precision::kTf32;

  // Synthetic data: standard normal features, random labels (binary for one output, else k
  // classes). Throughput does not depend on what is learnt.
  const std::int64_t n = batch * steps_per_epoch;
  MatrixF x(n, d);
  std::vector<float> y(static_cast<std::size_t>(n));
  {
    std::mt19937_64 rng(1);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (std::int64_t i = 0; i < n * d; ++i) x.data()[i] = g(rng);
    for (auto& v : y) v = static_cast<float>(rng() % static_cast<std::uint64_t>(k == 1 ? 2 : k));
  }
  models::ModelSpec spec;
  spec.kind = "mlp";
  spec.task = k == 1 ? models::Task::kBinary : models::Task::kMulticlass;
  spec.num_features = d;
  spec.num_classes = k == 1 ? 2 : static_cast<int>(k);
  spec.hidden.assign(sizes.begin() + 1, sizes.end() - 1);
  spec.activation = models::Activation::kReLU;
  auto model = models::MakeModel(spec);

  train::TrainOptions o;
  o.progress = false;
  o.epochs = epochs;
  o.batch_size = batch;
  o.optimizer.name = "adam";
  o.optimizer.lr = 1e-3f;
  gpu::CudaTrainOptions co;
  co.device = device;
  co.precision = tf32 ? gpu::Precision::kTf32 : gpu::Precision::kFp32;
  co.data = gpu::DataPlacement::kResident;
  o.backend = gpu::CudaBackend(co);
  auto comm = MakeSelfCommunicator();
  const auto result =
      train::Trainer(*model, o, *comm).Fit({std::as_const(x).view(), y, {}}, nullptr);
  std::vector<double> rates;
  for (std::size_t e = 1; e < result.history.size(); ++e) {
    rates.push_back(result.history[e].samples_per_second);
  }
  if (rates.empty()) rates.push_back(result.history.back().samples_per_second);
  std::sort(rates.begin(), rates.end());
  const double samples_per_s = rates[rates.size() / 2];
  const double step_ms = 1e3 * static_cast<double>(batch) / samples_per_s;

  // The GEMMs of one step, alone: forward X W per layer, backward dW = A^T dZ per layer and
  // dX = dZ W^T for all but the first.
  gpu::internal::UseDevice(device);
  gpu::internal::Stream stream;
  gpu::internal::Blas blas(device, stream.get(), tf32);
  std::int64_t widest = 1;
  for (auto s : sizes) widest = std::max(widest, s);
  const auto rows = static_cast<std::size_t>(batch);
  gpu::internal::DeviceBuffer<float> a(device, rows * static_cast<std::size_t>(widest));
  gpu::internal::DeviceBuffer<float> b(device, rows * static_cast<std::size_t>(widest));
  std::size_t max_w = 1;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    max_w = std::max(max_w, static_cast<std::size_t>(sizes[l] * sizes[l + 1]));
  }
  gpu::internal::DeviceBuffer<float> w(device, max_w), gw(device, max_w);
  CUDA_CHECK(cudaMemset(a.data(), 0, a.bytes()));
  CUDA_CHECK(cudaMemset(b.data(), 0, b.bytes()));
  CUDA_CHECK(cudaMemset(w.data(), 0, w.bytes()));
  double flops = 0;
  const int m = static_cast<int>(batch);
  auto step_gemms = [&] {
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
      const int in = static_cast<int>(sizes[l]), out = static_cast<int>(sizes[l + 1]);
      blas.Gemm(false, false, m, out, in, 1.0f, a.data(), in, w.data(), out, 0.0f, b.data(), out);
      blas.Gemm(true, false, in, out, m, 1.0f, a.data(), in, b.data(), out, 0.0f, gw.data(), out);
      if (l > 0) {
        blas.Gemm(false, true, m, in, out, 1.0f, b.data(), out, w.data(), out, 0.0f, a.data(), in);
      }
    }
  };
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double in = static_cast<double>(sizes[l]), out = static_cast<double>(sizes[l + 1]);
    flops += 2.0 * static_cast<double>(batch) * in * out * (l > 0 ? 3 : 2);
  }
  const double gemm_ms = TimeMs(stream.get(), 20, step_gemms);

  // cuBLAS's peak in this precision: an 8192^3 GEMM.
  const int p = 8192;
  gpu::internal::DeviceBuffer<float> pa(device, std::size_t{1} * p * p),
      pb(device, std::size_t{1} * p * p), pc(device, std::size_t{1} * p * p);
  CUDA_CHECK(cudaMemset(pa.data(), 0, pa.bytes()));
  CUDA_CHECK(cudaMemset(pb.data(), 0, pb.bytes()));
  const double peak_ms = TimeMs(stream.get(), 5, [&] {
    blas.Gemm(false, false, p, p, p, 1.0f, pa.data(), p, pb.data(), p, 0.0f, pc.data(), p);
  });
  const double peak_tflops = 2.0 * p * p * static_cast<double>(p) / (peak_ms * 1e-3) / 1e12;
  const double gemm_tflops = flops / (gemm_ms * 1e-3) / 1e12;

  const auto info = gpu::GetDeviceInfo(device);
  fmt::print(
      "escala model={} batch={} precision={} samples_per_s={:.0f} step_ms={:.3f} gemm_ms={:.3f} "
      "gemm_share={:.2f} gemm_tflops={:.1f} peak_tflops={:.1f} device=\"{}\"\n",
      sizes_text, batch, precision, samples_per_s, step_ms, gemm_ms, gemm_ms / step_ms, gemm_tflops,
      peak_tflops, info.name);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escala_bench_gpu: %s\n", e.what());
    return 1;
  }
}
