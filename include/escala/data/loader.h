// Loader: batches of dense float32 features and labels for training.
//
// An epoch visits the rows in an order that depends only on (seed, epoch): a Fisher-Yates
// permutation from a counter-based generator, never on thread timing. `fraction` keeps a seeded
// subset of rows chosen by hashing their row identity (the same rows however the data is
// sharded). A background thread gathers the next batches into a bounded ring of preallocated
// buffers (`prefetch` of them), so after the first batch the hot loop allocates nothing.
//
// Data-parallel training: with options.shard = {rank, world}, every rank holding the same rows
// gets its contiguous slice of each global batch (sizes differ by at most one), so the union over
// ranks of batch i is exactly batch i of a single worker with the same seed.
//
// StreamingLoader does the same over a DatasetStream (data larger than memory): files are visited
// in a per-epoch seeded order and rows are shuffled within a bounded shuffle buffer.
//
// Thread-safety: a loader is used by one consumer thread; it owns its prefetch thread. The data
// given to Loader must outlive it and stay unchanged.
#ifndef ESCALA_DATA_LOADER_H_
#define ESCALA_DATA_LOADER_H_

#include <cstdint>
#include <memory>
#include <span>

#include "escala/core/matrix.h"
#include "escala/data/dataset.h"
#include "escala/data/dense.h"
#include "escala/data/stream.h"

namespace escala::data {

struct LoaderOptions {
  std::int64_t batch_size = 256;  // the global batch size when shard.world > 1
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  double fraction = 1.0;   // keep this seeded fraction of rows, (0, 1]
  int prefetch = 2;        // batches prepared ahead by a background thread; 0: on demand
  Shard shard;             // this rank's slice of every global batch
  // StreamingLoader only: rows held for shuffling (memory bound).
  std::int64_t shuffle_buffer = 65536;
};

// A batch. Views stay valid until the next call to Next() or StartEpoch() on its loader.
struct Batch {
  MatrixView<const float> features;
  std::span<const float> labels;           // empty when the loader has no labels
  std::span<const std::int64_t> rows;      // source row indices (Loader only)
  std::span<const std::uint64_t> row_ids;  // row identities (escala/data/split.h)
  std::int64_t epoch = 0;
  std::int64_t index = 0;  // batch number within the epoch

  std::int64_t size() const { return features.rows(); }
};

class Loader {
 public:
  // features: n x d; labels: n values or empty; row_ids: n identities for `fraction` sampling or
  // empty (then the row index is the identity).
  Loader(MatrixView<const float> features, std::span<const float> labels,
         LoaderOptions options = {}, std::span<const std::uint64_t> row_ids = {});
  explicit Loader(const DenseData& data, LoaderOptions options = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Rows visited per epoch (after sampling), over all ranks.
  std::int64_t num_rows() const;
  // Batches per epoch (the same on every rank).
  std::int64_t batches_per_epoch() const;

  // Positions the loader at the start of `epoch`. Next() without StartEpoch() begins epoch 0.
  void StartEpoch(std::int64_t epoch);
  // Fills `batch` with the next batch of the current epoch; false at the end of the epoch.
  bool Next(Batch* batch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class StreamingLoader {
 public:
  // Streams `shard` of `dataset`; spec selects features and label. The dataset shard is the unit
  // of distribution here: options.shard must stay at one worker (kInvalidArgument otherwise).
  StreamingLoader(const Dataset& dataset, Shard shard, DenseSpec spec, LoaderOptions options = {},
                  StreamOptions stream_options = {});
  ~StreamingLoader();
  StreamingLoader(const StreamingLoader&) = delete;
  StreamingLoader& operator=(const StreamingLoader&) = delete;

  void StartEpoch(std::int64_t epoch);
  bool Next(Batch* batch);
  // Malformed rows skipped so far etc.
  ReadReport report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::data

#endif  // ESCALA_DATA_LOADER_H_
