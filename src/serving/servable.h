// A servable: one loaded model version (bundle, predictor, signature, scratch pool) and its
// dynamic batcher. No gRPC here: the service (server.cc) resolves a request to a LoadedModel
// through the ModelManager and runs it.
#ifndef ESCALA_SRC_SERVING_SERVABLE_H_
#define ESCALA_SRC_SERVING_SERVABLE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "escala/io/bundle.h"
#include "escala/serving/server.h"
#include "serving/codec.h"
#include "serving/metrics.h"

namespace escala::serving::internal {

// Everything one request needs besides the request itself, pooled per model version so that a
// steady stream of requests allocates nothing.
struct RequestScratch {
  io::PredictScratch predict;
  DecodeScratch decode;
  MatrixF out;
};

class Batcher;

struct LoadedModel {
  std::string name;
  std::int64_t version = 0;
  std::string version_text;
  std::string source;       // file path, or "memory"
  std::string fingerprint;  // size and mtime of the file it came from
  std::shared_ptr<const io::ModelBundle> bundle;
  std::shared_ptr<const io::Predictor> predictor;
  ModelSignature signature;
  ModelMetrics* metrics = nullptr;
  std::unique_ptr<Batcher> batcher;  // null without dynamic batching

  LoadedModel();
  ~LoadedModel();
  std::unique_ptr<RequestScratch> Acquire() const;
  void Release(std::unique_ptr<RequestScratch> s) const;

 private:
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<RequestScratch>> pool_;  // guarded by pool_mu_
};

// Merges requests for one model version into one model execution: each request's rows are
// transformed by the pipeline on the request's own thread, the batcher concatenates the feature
// rows of requests that arrive within max_queue_delay (up to max_batch_rows), runs the model
// once, and hands each request its slice of the predictions.
class Batcher {
 public:
  using Done = std::function<void(ConstMatrixViewF predictions, const Status& status)>;
  Batcher(std::shared_ptr<const io::Predictor> predictor, ModelMetrics* metrics,
          BatchingOptions options);
  // Completes what is queued, then stops. May run on the batcher's own thread (when a done
  // callback drops the last reference to the model): the thread then finishes on its own.
  ~Batcher();

  void Submit(MatrixF features, Done done);

 private:
  struct Item {
    MatrixF features;
    Done done;
    std::chrono::steady_clock::time_point enqueued;
  };
  // Everything the thread touches, kept alive by the thread itself.
  struct Shared {
    std::shared_ptr<const io::Predictor> predictor;
    ModelMetrics* metrics = nullptr;  // owned by the registry, outlives every model
    BatchingOptions options;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> queue;        // guarded by mu
    std::int64_t queued_rows = 0;  // guarded by mu
    bool stop = false;             // guarded by mu
  };
  static void Loop(std::shared_ptr<Shared> s);

  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_SERVABLE_H_
