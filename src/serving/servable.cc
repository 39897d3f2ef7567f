#include "serving/servable.h"

#include <algorithm>
#include <utility>

#include "escala/core/error.h"

namespace escala::serving::internal {

// ---- LoadedModel -----------------------------------------------------------------------------

LoadedModel::LoadedModel() = default;
LoadedModel::~LoadedModel() {
  batcher.reset();  // completes queued requests while the predictor still exists
}

std::unique_ptr<RequestScratch> LoadedModel::Acquire() const {
  {
    std::lock_guard lock(pool_mu_);
    if (!pool_.empty()) {
      auto s = std::move(pool_.back());
      pool_.pop_back();
      return s;
    }
  }
  return std::make_unique<RequestScratch>();
}

void LoadedModel::Release(std::unique_ptr<RequestScratch> s) const {
  std::lock_guard lock(pool_mu_);
  if (pool_.size() < 256) pool_.push_back(std::move(s));
}

// ---- Batcher -----------------------------------------------------------------------------------

Batcher::Batcher(std::shared_ptr<const io::Predictor> predictor, ModelMetrics* metrics,
                 BatchingOptions options)
    : shared_(std::make_shared<Shared>()) {
  shared_->predictor = std::move(predictor);
  shared_->metrics = metrics;
  shared_->options = options;
  thread_ = std::thread(&Batcher::Loop, shared_);
}

Batcher::~Batcher() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // the loop holds `shared_` and exits once the queue is empty
  } else {
    thread_.join();
  }
}

void Batcher::Submit(MatrixF features, Done done) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stop) {
      done(ConstMatrixViewF(), Status(ErrorCode::kUnavailable, "model version is being unloaded"));
      return;
    }
    shared_->queued_rows += features.rows();
    shared_->queue.push_back(
        Item{std::move(features), std::move(done), std::chrono::steady_clock::now()});
  }
  shared_->cv.notify_one();
}

void Batcher::Loop(std::shared_ptr<Shared> s) {
  io::PredictScratch scratch;
  MatrixF batch, out;
  std::vector<Item> items;
  for (;;) {
    items.clear();
    {
      std::unique_lock lock(s->mu);
      s->cv.wait(lock, [&] { return s->stop || !s->queue.empty(); });
      if (s->queue.empty()) return;
      // Wait for more rows until the first request has waited max_queue_delay.
      const auto deadline = s->queue.front().enqueued + s->options.max_queue_delay;
      s->cv.wait_until(lock, deadline,
                       [&] { return s->stop || s->queued_rows >= s->options.max_batch_rows; });
      std::int64_t rows = 0;
      while (!s->queue.empty() && (items.empty() || rows + s->queue.front().features.rows() <=
                                                        s->options.max_batch_rows)) {
        rows += s->queue.front().features.rows();
        s->queued_rows -= s->queue.front().features.rows();
        items.push_back(std::move(s->queue.front()));
        s->queue.pop_front();
      }
    }
    const auto start = std::chrono::steady_clock::now();
    std::int64_t rows = 0;
    const std::int64_t d = s->predictor->bundle().model->num_features();
    for (const auto& it : items) rows += it.features.rows();
    batch.Resize(rows, d);
    std::int64_t r = 0;
    for (const auto& it : items) {
      std::copy_n(it.features.data(), it.features.size(), batch.row(r));
      r += it.features.rows();
    }
    out.Resize(rows, s->predictor->num_outputs());
    Status status;
    try {
      s->predictor->PredictFeatures(std::as_const(batch).view(), out.view(), scratch);
    } catch (...) {
      status = Status::FromCurrentException();
    }
    const auto end = std::chrono::steady_clock::now();
    s->metrics->executions.fetch_add(1, std::memory_order_relaxed);
    s->metrics->compute_us.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()),
        std::memory_order_relaxed);
    r = 0;
    for (auto& it : items) {
      s->metrics->queue_us.fetch_add(
          static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(start - it.enqueued).count()),
          std::memory_order_relaxed);
      it.done(std::as_const(out).view().Rows(r, it.features.rows()), status);
      r += it.features.rows();
    }
  }
}

}  // namespace escala::serving::internal
