#include "train/streamed_batches.h"

#include <algorithm>
#include <cstring>

#include "escala/core/error.h"
#include "escala/core/random.h"

namespace escala::train {

StreamedBatches::StreamedBatches(ChunkSource& source, std::vector<std::int64_t> rows, int rank,
                                 std::int64_t global_batch, std::uint64_t seed,
                                 StreamedBatchOptions options)
    : source_(source),
      rows_(std::move(rows)),
      rank_(rank),
      cols_(source.cols()),
      seed_(seed),
      options_(options) {
  const auto world = static_cast<std::int64_t>(rows_.size());
  ESCALA_CHECK(global_batch >= world, kInvalidArgument,
               "batch_size {} is smaller than the {} workers: each needs rows in every batch",
               global_batch, world);
  ESCALA_CHECK(options_.shuffle_rows >= 1 && options_.prefetch >= 1, kInvalidArgument,
               "shuffle_rows and prefetch must be at least 1");
  for (std::int64_t r = 0; r < world; ++r) {
    const std::int64_t b = global_batch * (r + 1) / world - global_batch * r / world;
    local_batches_.push_back(b);
    batches_ =
        std::max<std::uint64_t>(batches_, static_cast<std::uint64_t>((rows_[r] + b - 1) / b));
  }
  local_batch_ = local_batches_[static_cast<std::size_t>(rank_)];
  staging_.Resize(local_batch_, cols_);
  staging_labels_.resize(static_cast<std::size_t>(local_batch_));
  staging_ids_.resize(static_cast<std::size_t>(local_batch_));
}

StreamedBatches::~StreamedBatches() {
  Stop();
}

void StreamedBatches::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (producer_.joinable()) producer_.join();
}

void StreamedBatches::StartEpoch(int epoch) {
  Stop();
  queue_.clear();
  done_ = stop_ = false;
  error_ = nullptr;
  producer_ = std::thread([this, epoch] { Produce(epoch); });
}

// Waits for room in the queue (or a stop), then queues the batch.
void StreamedBatches::Push(std::unique_ptr<Batch> batch) {
  std::unique_lock lock(mu_);
  cv_.wait(lock,
           [&] { return stop_ || queue_.size() < static_cast<std::size_t>(options_.prefetch); });
  if (stop_) throw std::runtime_error("stopped");  // caught in Produce
  queue_.push_back(std::move(batch));
  cv_.notify_all();
}

void StreamedBatches::Emit(const float* x, float y, std::uint64_t id) {
  if (!filling_) {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      filling_ = std::move(free_.back());
      free_.pop_back();
    } else {
      filling_ = std::make_unique<Batch>();
      filling_->x.Resize(local_batch_, cols_);
      filling_->y.resize(static_cast<std::size_t>(local_batch_));
      filling_->ids.resize(static_cast<std::size_t>(local_batch_));
    }
    filling_->rows = 0;
  }
  Batch& b = *filling_;
  std::memcpy(b.x.view().row(b.rows), x, static_cast<std::size_t>(cols_) * sizeof(float));
  b.y[static_cast<std::size_t>(b.rows)] = y;
  b.ids[static_cast<std::size_t>(b.rows)] = id;
  if (++b.rows == local_batch_) Push(std::move(filling_));
}

void StreamedBatches::Produce(int epoch) {
  try {
    const std::uint64_t key = HashCombine(HashCombine(seed_, static_cast<std::uint64_t>(epoch)),
                                          static_cast<std::uint64_t>(rank_));
    source_.StartEpoch(key);
    const auto cap = static_cast<std::size_t>(options_.shuffle_rows);
    MatrixF buf(static_cast<std::int64_t>(std::min<std::int64_t>(
                    options_.shuffle_rows, rows_[static_cast<std::size_t>(rank_)])),
                cols_);
    std::vector<float> buf_y(static_cast<std::size_t>(buf.rows()));
    std::vector<std::uint64_t> buf_id(static_cast<std::size_t>(buf.rows()));
    std::size_t held = 0;
    std::uint64_t counter = 0, next_id = static_cast<std::uint64_t>(rank_) << 40;
    auto slot = [&](std::size_t k) { return buf.view().row(static_cast<std::int64_t>(k)); };
    auto draw = [&](std::size_t n) {
      return static_cast<std::size_t>(UnitFromHash(HashCombine(key, counter++)) *
                                      static_cast<double>(n));
    };
    source_.ForEachChunk([&](const DataShard& chunk) {
      for (std::int64_t i = 0; i < chunk.rows(); ++i) {
        const float* row = chunk.features.row(i);
        const float label = chunk.labels[static_cast<std::size_t>(i)];
        if (held < cap && held < static_cast<std::size_t>(buf.rows())) {
          std::memcpy(slot(held), row, static_cast<std::size_t>(cols_) * sizeof(float));
          buf_y[held] = label;
          buf_id[held++] = next_id++;
          continue;
        }
        const std::size_t k = draw(held);
        Emit(slot(k), buf_y[k], buf_id[k]);
        std::memcpy(slot(k), row, static_cast<std::size_t>(cols_) * sizeof(float));
        buf_y[k] = label;
        buf_id[k] = next_id++;
      }
    });
    // The rows still held leave in a random order.
    for (; held > 0; --held) {
      const std::size_t k = draw(held);
      Emit(slot(k), buf_y[k], buf_id[k]);
      const auto last = static_cast<std::int64_t>(held - 1);
      if (static_cast<std::int64_t>(k) != last) {
        std::memcpy(slot(k), slot(static_cast<std::size_t>(last)),
                    static_cast<std::size_t>(cols_) * sizeof(float));
        buf_y[k] = buf_y[static_cast<std::size_t>(last)];
        buf_id[k] = buf_id[static_cast<std::size_t>(last)];
      }
    }
    if (filling_ && filling_->rows > 0) Push(std::move(filling_));
  } catch (...) {
    std::lock_guard lock(mu_);
    if (!stop_) error_ = std::current_exception();
  }
  filling_.reset();
  std::lock_guard lock(mu_);
  done_ = true;
  cv_.notify_all();
}

std::pair<std::int64_t, std::uint64_t> StreamedBatches::Next(std::uint64_t j) {
  std::uint64_t global = 0;
  for (std::size_t r = 0; r < rows_.size(); ++r) {
    const std::int64_t left = rows_[r] - static_cast<std::int64_t>(j) * local_batches_[r];
    global += static_cast<std::uint64_t>(std::clamp<std::int64_t>(left, 0, local_batches_[r]));
  }
  std::unique_ptr<Batch> b;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || done_; });
    if (error_) std::rethrow_exception(error_);
    if (queue_.empty()) return {0, global};  // this rank's rows ran out
    b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
  }
  const std::int64_t m = b->rows;
  std::memcpy(staging_.data(), b->x.data(), static_cast<std::size_t>(m * cols_) * sizeof(float));
  std::copy_n(b->y.begin(), m, staging_labels_.begin());
  std::copy_n(b->ids.begin(), m, staging_ids_.begin());
  {
    std::lock_guard lock(mu_);
    free_.push_back(std::move(b));
  }
  return {m, global};
}

}  // namespace escala::train
