// Loaded model versions, the repository scanner and the dynamic batcher. No gRPC here: the
// service (server.cc) resolves a request to a LoadedModel and runs it.
#ifndef ESCALA_SRC_SERVING_MODELS_H_
#define ESCALA_SRC_SERVING_MODELS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
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

// Parses a positive version number ("1", "42").
bool ParseVersionNumber(const std::string& s, std::int64_t* v);

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

class ModelManager {
 public:
  ModelManager(const ServerOptions& options, MetricsRegistry* metrics);
  ~ModelManager();

  // The version to serve: `version` empty -> the newest loaded. Throws kNotFound naming what
  // exists.
  std::shared_ptr<const LoadedModel> Get(const std::string& name, const std::string& version) const;
  std::vector<std::string> Versions(const std::string& name) const;
  bool HasReadyModel() const;

  void AddInMemory(const std::string& name, std::shared_ptr<const io::ModelBundle> bundle,
                   std::int64_t version);
  void Poll();
  void LoadModel(const std::string& name);
  void UnloadModel(const std::string& name);
  std::vector<PredictionServer::ModelState> Index() const;

 private:
  struct Entry {
    std::map<std::int64_t, std::shared_ptr<const LoadedModel>> versions;
    bool unloaded = false;  // explicitly unloaded: polling leaves it alone until LoadModel
    std::map<std::int64_t, std::string> failed;  // version -> fingerprint that failed to load
    std::map<std::int64_t, std::string> failure_reason;
  };
  std::shared_ptr<const LoadedModel> Build(const std::string& name, std::int64_t version,
                                           std::shared_ptr<const io::ModelBundle> bundle,
                                           const std::string& source,
                                           const std::string& fingerprint);
  // Loads the versions the policy wants that are new or changed (all of them with `reload`).
  void ScanModel(const std::string& name, bool reload);  // load_mu_ held

  ServerOptions options_;
  MetricsRegistry* metrics_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry> models_;  // guarded by mu_
  std::mutex load_mu_;                   // one scan or load at a time
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_MODELS_H_
