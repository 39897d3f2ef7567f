#include <fmt/format.h>

#include "cli/commands.h"
#include "core/simd/kernels.h"
#include "escala/config.h"
#include "escala/core/parallel.h"
#include "escala/gpu/device.h"

namespace escala::cli {

std::string VersionString() {
  return fmt::format("escala {} (CUDA backend: {}; CPU baseline {}, kernels {})",
                     ESCALA_VERSION_STRING, ESCALA_WITH_CUDA ? "yes" : "no", ESCALA_ARCH_BASELINE,
                     simd::IsaName(simd::Kernels().isa));
}

void RegisterInfo(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show the build configuration, threads and GPU devices");
  cmd->callback([] {
    fmt::print("{}\n", VersionString());
    fmt::print("threads:       {} (cores available: {})\n", NumThreads(), HardwareConcurrency());
    fmt::print("CUDA built in: {}\n", gpu::BuiltWithCuda() ? "yes" : "no");
    const auto devices = gpu::ListDevices();
    fmt::print("CUDA devices:  {}\n", devices.size());
    for (const auto& d : devices) {
      fmt::print("  [{}] {} (sm_{}{}, {:.1f} GiB, {} SMs)\n", d.index, d.name, d.compute_major,
                 d.compute_minor, static_cast<double>(d.total_memory_bytes) / (1 << 30),
                 d.multiprocessors);
    }
  });
}

}  // namespace escala::cli
