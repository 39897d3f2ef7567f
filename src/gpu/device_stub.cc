// The GPU entry points of a build without CUDA: each fails with a clear error instead of a
// missing symbol, so that CPU-only programs link and `--device cuda` explains itself.
#include "escala/core/error.h"
#include "escala/gpu/device.h"
#include "escala/gpu/nccl.h"
#include "escala/gpu/train.h"

namespace escala::gpu {
namespace {
[[noreturn]] void NoCuda(std::string_view what) {
  Throw(ErrorCode::kUnimplemented,
        "{}: escala was built without CUDA (configure with ESCALA_WITH_CUDA=ON where nvcc is "
        "installed)",
        what);
}
}  // namespace

bool BuiltWithCuda() {
  return false;
}
int DeviceCount() {
  return 0;
}
DeviceInfo GetDeviceInfo(int) {
  NoCuda("GetDeviceInfo");
}
std::vector<DeviceInfo> ListDevices() {
  return {};
}
void RequireDevice(std::string_view what) {
  NoCuda(what);
}
int SelectDevice(const DeviceSpec&, int) {
  NoCuda("--device cuda");
}
void VectorAdd(const float*, const float*, float*, std::size_t, int) {
  NoCuda("VectorAdd");
}
train::BackendFactory CudaBackend(const CudaTrainOptions&) {
  NoCuda("the CUDA training backend");
}
std::unique_ptr<Communicator> MakeNcclCommunicator(std::unique_ptr<Communicator>,
                                                   const NcclBootstrap&, const NcclOptions&) {
  NoCuda("the NCCL communicator");
}

}  // namespace escala::gpu
