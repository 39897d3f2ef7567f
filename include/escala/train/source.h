// Where full-batch training reads this rank's rows: one pass over them in chunks, so that the
// shard need not be a single matrix in memory. L-BFGS makes one pass per evaluation of its
// objective (Trainer::FitFullBatch); the sums over chunks are those over the whole shard, so the
// model is the one in-memory training gives, to rounding. ShardChunks cuts a shard in memory into
// row ranges; a source over files reads, transforms and frees one chunk at a time.
//
// Thread-safety: a source makes one pass at a time, driven by the trainer's thread.
#ifndef ESCALA_TRAIN_SOURCE_H_
#define ESCALA_TRAIN_SOURCE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "escala/data/dataset.h"
#include "escala/data/stream.h"
#include "escala/features/pipeline.h"
#include "escala/train/labels.h"
#include "escala/train/trainer.h"

namespace escala::train {

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // The features of each row, known before the first pass (a pass counts the rows).
  virtual std::int64_t cols() const = 0;
  // One pass over every row in a fixed order: `visit` sees each chunk (its row_ids may be
  // empty); the views are valid during the call only.
  virtual void ForEachChunk(const std::function<void(const DataShard&)>& visit) = 0;
  // Before a minibatch epoch (Trainer::FitStreamed): a source may visit its rows in an order
  // keyed by `key` in the passes that follow. The default keeps its fixed order.
  virtual void StartEpoch(std::uint64_t key) { (void)key; }
};

// A shard in memory as consecutive chunks of at most `chunk_rows` rows (0: one chunk).
class ShardChunks final : public ChunkSource {
 public:
  explicit ShardChunks(const DataShard& shard, std::int64_t chunk_rows = 0)
      : shard_(shard), chunk_rows_(chunk_rows) {}
  std::int64_t rows() const { return shard_.rows(); }
  std::int64_t cols() const override { return shard_.features.cols(); }
  void ForEachChunk(const std::function<void(const DataShard&)>& visit) override;

 private:
  DataShard shard_;
  std::int64_t chunk_rows_;
};

struct DatasetChunksOptions {
  std::string label;                     // the label column
  std::vector<std::string> class_names;  // classification; empty for regression
  data::StreamOptions stream;            // input bytes per chunk
  bool drop_missing_labels = false;      // skip rows whose label is missing (else an error)
  // Regression labels are visited as (y - label_shift) / label_scale (an mlp's target scaling).
  double label_shift = 0, label_scale = 1;
};

// This rank's shard of a CSV dataset read in chunks (escala/data/stream.h): each chunk is parsed,
// transformed by a fitted pipeline and its labels encoded (escala/train/labels.h), visited, then
// its memory reused for the next; what a pass holds is bounded by the stream's blocks and one
// transformed chunk, whatever the size of the data. `dataset` and `pipeline` must outlive the
// source.
class DatasetChunks final : public ChunkSource {
 public:
  DatasetChunks(const data::Dataset& dataset, data::Shard shard, const features::Pipeline& pipeline,
                DatasetChunksOptions options);
  // This rank's rows, counted by the last pass (0 before the first).
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const override { return pipeline_.num_outputs(); }
  void ForEachChunk(const std::function<void(const DataShard&)>& visit) override;
  // Its file ranges in an order keyed by `key` (a shard of one file has one range).
  void StartEpoch(std::uint64_t key) override;

 private:
  const features::Pipeline& pipeline_;
  DatasetChunksOptions options_;
  data::StreamedTable table_;
  LabelledRows labelled_;
  std::int64_t rows_ = 0;
  MatrixF x_;
};

}  // namespace escala::train

#endif  // ESCALA_TRAIN_SOURCE_H_
