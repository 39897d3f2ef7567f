// The batch feed of Trainer::FitStreamed: this rank's rows read from a ChunkSource by a
// background thread, shuffled through a bounded buffer and queued as this rank's share of each
// global batch, a few batches ahead of the training loop. Private to src/train.
//
// Shuffle semantics: each epoch the source visits its rows in an order it may permute per epoch
// (DatasetChunks: its file ranges in a seeded order); every row then enters a buffer of
// `shuffle_rows` rows, and once the buffer is full each arriving row sends out a buffered row
// chosen at random (seeded by seed, epoch and rank), the rest leaving in a random order at the
// end of the epoch. A row thus moves at most `shuffle_rows` places later, or anywhere earlier,
// than where the file holds it: a buffer as large as the shard is a full shuffle.
//
// Global batches: rank r takes b_r = B(r+1)/W - Br/W rows of each global batch of B rows, so an
// epoch is max_r ceil(n_r / b_r) steps on every rank; a rank whose rows ran out steps with none.
#ifndef ESCALA_SRC_TRAIN_STREAMED_BATCHES_H_
#define ESCALA_SRC_TRAIN_STREAMED_BATCHES_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "escala/train/source.h"
#include "train/minibatch.h"

namespace escala::train {

class StreamedBatches final : public BatchFeed {
 public:
  // rows: every rank's row count (index r for rank r), as this rank's source will give them.
  StreamedBatches(ChunkSource& source, std::vector<std::int64_t> rows, int rank,
                  std::int64_t global_batch, std::uint64_t seed, StreamedBatchOptions options);
  ~StreamedBatches() override;

  ConstMatrixViewF features() const override { return std::as_const(staging_).view(); }
  std::span<const float> labels() const override { return staging_labels_; }
  std::span<const std::uint64_t> row_ids() const override { return staging_ids_; }
  std::int64_t max_batch_rows() const override { return local_batch_; }
  std::uint64_t batches_per_epoch() const override { return batches_; }
  void StartEpoch(int epoch) override;
  std::pair<std::int64_t, std::uint64_t> Next(std::uint64_t j) override;

 private:
  struct Batch {
    MatrixF x;
    std::vector<float> y;
    std::vector<std::uint64_t> ids;
    std::int64_t rows = 0;
  };
  void Produce(int epoch);
  void Emit(const float* x, float y, std::uint64_t id);
  void Push(std::unique_ptr<Batch> batch);
  void Stop();

  ChunkSource& source_;
  std::vector<std::int64_t> rows_;
  int rank_;
  std::int64_t cols_;
  std::vector<std::int64_t> local_batches_;  // b_r
  std::int64_t local_batch_;
  std::uint64_t batches_ = 0;
  std::uint64_t seed_;
  StreamedBatchOptions options_;

  MatrixF staging_;
  std::vector<float> staging_labels_;
  std::vector<std::uint64_t> staging_ids_;

  // Between the producer thread and the loop.
  std::thread producer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Batch>> queue_;
  std::vector<std::unique_ptr<Batch>> free_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  // The producer's: the batch being filled.
  std::unique_ptr<Batch> filling_;
};

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_STREAMED_BATCHES_H_
