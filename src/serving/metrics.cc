#include "serving/metrics.h"

#include <fmt/format.h>

namespace escala::serving::internal {

void ModelMetrics::ObserveLatency(std::uint64_t us) {
  request_us.fetch_add(us, std::memory_order_relaxed);
  std::size_t b = 0;
  while (b < kBucketsUs.size() && static_cast<double>(us) > kBucketsUs[b]) ++b;
  latency[b].fetch_add(1, std::memory_order_relaxed);
}

ModelMetrics* MetricsRegistry::For(const std::string& model, const std::string& version) {
  std::lock_guard lock(mu_);
  auto& slot = models_[{model, version}];
  if (!slot) slot = std::make_unique<ModelMetrics>();
  return slot.get();
}

void MetricsRegistry::CountLoadFailure(const std::string& model) {
  std::lock_guard lock(mu_);
  ++load_failures_[model];
}

namespace {

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string MetricsRegistry::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto labels = [](const std::pair<std::string, std::string>& k) {
    return fmt::format("model=\"{}\",version=\"{}\"", Escape(k.first), Escape(k.second));
  };
  auto counter = [&](const char* name, const char* help,
                     std::atomic<std::uint64_t> ModelMetrics::*field) {
    family(name, "counter", help);
    for (const auto& [k, m] : models_) {
      out += fmt::format("{}{{{}}} {}\n", name, labels(k),
                         ((*m).*field).load(std::memory_order_relaxed));
    }
  };
  family("escala_server_ready", "gauge", "1 while the server reports ready");
  out += fmt::format("escala_server_ready {}\n", ready_.load() ? 1 : 0);
  counter("escala_inference_request_success_total", "Inference requests that succeeded",
          &ModelMetrics::success);
  counter("escala_inference_request_failure_total", "Inference requests that failed",
          &ModelMetrics::failure);
  counter("escala_inference_count_total", "Rows inferred (a batch of n rows counts n)",
          &ModelMetrics::inferences);
  counter("escala_inference_exec_count_total", "Model executions (dynamic batches count once)",
          &ModelMetrics::executions);
  counter("escala_inference_queue_duration_us_total",
          "Cumulative time requests waited in the batching queue, microseconds",
          &ModelMetrics::queue_us);
  counter("escala_inference_compute_duration_us_total",
          "Cumulative pipeline and model time, microseconds", &ModelMetrics::compute_us);
  family("escala_inference_request_duration_us", "histogram",
         "Request latency inside the server, microseconds");
  for (const auto& [k, m] : models_) {
    std::uint64_t cum = 0;
    for (std::size_t b = 0; b < ModelMetrics::kBucketsUs.size(); ++b) {
      cum += m->latency[b].load(std::memory_order_relaxed);
      out += fmt::format("escala_inference_request_duration_us_bucket{{{},le=\"{}\"}} {}\n",
                         labels(k), ModelMetrics::kBucketsUs[b], cum);
    }
    cum += m->latency.back().load(std::memory_order_relaxed);
    out += fmt::format("escala_inference_request_duration_us_bucket{{{},le=\"+Inf\"}} {}\n",
                       labels(k), cum);
    out += fmt::format("escala_inference_request_duration_us_sum{{{}}} {}\n", labels(k),
                       m->request_us.load(std::memory_order_relaxed));
    out += fmt::format("escala_inference_request_duration_us_count{{{}}} {}\n", labels(k), cum);
  }
  family("escala_model_load_failures_total", "counter",
         "Model versions that failed to load or verify");
  for (const auto& [model, n] : load_failures_) {
    out += fmt::format("escala_model_load_failures_total{{model=\"{}\"}} {}\n", Escape(model), n);
  }
  return out;
}

}  // namespace escala::serving::internal
