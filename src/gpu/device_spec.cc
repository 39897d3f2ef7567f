// Device specifications and the local-rank rule: plain C++, part of both the CUDA and the
// CPU-only build (the rule is tested without a GPU).
#include <charconv>

#include "escala/core/error.h"
#include "escala/gpu/device.h"
#include "escala/gpu/train.h"

namespace escala::gpu {

DeviceSpec ParseDeviceSpec(std::string_view text) {
  DeviceSpec spec;
  if (text == "cpu") return spec;
  spec.cuda = true;
  if (text == "cuda" || text == "gpu") return spec;
  constexpr std::string_view kPrefix = "cuda:";
  if (text.substr(0, kPrefix.size()) == kPrefix) {
    const std::string_view num = text.substr(kPrefix.size());
    int index = -1;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
    if (ec == std::errc() && end == num.data() + num.size() && !num.empty() && index >= 0) {
      spec.index = index;
      return spec;
    }
  }
  Throw(ErrorCode::kInvalidArgument, "unknown device '{}' (expected cpu, cuda or cuda:N)", text);
}

int ResolveDeviceIndex(const DeviceSpec& spec, int local_rank, int device_count) {
  ESCALA_CHECK(spec.cuda, kInvalidArgument, "device spec is not a CUDA device");
  ESCALA_CHECK(device_count > 0, kUnavailable, "no CUDA device is available");
  if (spec.index >= 0) {
    ESCALA_CHECK(spec.index < device_count, kNotFound,
                 "CUDA device {} does not exist ({} device(s) visible)", spec.index, device_count);
    return spec.index;
  }
  if (device_count == 1) return 0;
  ESCALA_CHECK(local_rank >= 0 && local_rank < device_count, kNotFound,
               "local rank {} has no CUDA device of its own ({} visible); start at most one "
               "worker per GPU on each node, or name the device with --device cuda:N",
               local_rank, device_count);
  return local_rank;
}

Precision ParsePrecision(std::string_view text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "tf32") return Precision::kTf32;
  Throw(ErrorCode::kInvalidArgument, "unknown precision '{}' (expected fp32 or tf32)", text);
}

}  // namespace escala::gpu
