// Server metrics: per model and version counters and a latency histogram, rendered as
// Prometheus text. Updates are lock-free (atomics); rendering takes a registry lock.
#ifndef ESCALA_SRC_SERVING_METRICS_H_
#define ESCALA_SRC_SERVING_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace escala::serving::internal {

struct ModelMetrics {
  static constexpr std::array<double, 14> kBucketsUs = {50,    100,   200,   500, 1000,  2000, 5000,
                                                        10000, 20000, 50000, 1e5, 2.5e5, 1e6,  1e7};
  std::atomic<std::uint64_t> success{0};
  std::atomic<std::uint64_t> failure{0};
  std::atomic<std::uint64_t> inferences{0};  // rows
  std::atomic<std::uint64_t> executions{0};  // model calls (batches)
  std::atomic<std::uint64_t> queue_us{0};
  std::atomic<std::uint64_t> compute_us{0};
  std::atomic<std::uint64_t> request_us{0};
  std::atomic<std::uint64_t> last_inference_ms{0};
  std::array<std::atomic<std::uint64_t>, kBucketsUs.size() + 1> latency{};  // + Inf

  void ObserveLatency(std::uint64_t us);
};

class MetricsRegistry {
 public:
  // Stable pointer for (model, version); created on first use.
  ModelMetrics* For(const std::string& model, const std::string& version);
  void CountLoadFailure(const std::string& model);
  void SetReady(bool ready) { ready_.store(ready); }
  std::string Render() const;
  // Snapshot for ModelStatistics.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, m] : models_) fn(key.first, key.second, *m);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ModelMetrics>>
      models_;                                          // guarded by mu_
  std::map<std::string, std::uint64_t> load_failures_;  // guarded by mu_
  std::atomic<bool> ready_{false};
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_METRICS_H_
