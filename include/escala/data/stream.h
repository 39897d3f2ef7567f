// DatasetStream: one pass over a shard of a dataset in chunks, with memory bounded independently
// of the data size, for data larger than memory (statistics, scoring, training epochs).
//
// The stream reads its shard's files in plan order, about StreamOptions::block_bytes at a time
// (pread for plain files, incremental inflate for gzip), parses the complete records in parallel
// and returns them as one chunk; a record cut by the block end is carried into the next block.
// Peak memory is bounded by a few blocks (input windows in flight and the parsed chunk), whatever
// the file size (a single record longer than a block grows the block to hold it, up to 1 GiB).
// CSV and NPY datasets stream; LIBSVM datasets are read whole (Dataset::ReadSparse).
//
// Thread-safety: a DatasetStream is used by one thread at a time (its parsing is parallel
// internally). The Dataset must outlive it.
#ifndef ESCALA_DATA_STREAM_H_
#define ESCALA_DATA_STREAM_H_

#include <cstdint>
#include <memory>

#include "escala/data/dataset.h"
#include "escala/data/dense.h"
#include "escala/data/read_report.h"
#include "escala/data/table.h"

namespace escala::data {

struct StreamOptions {
  // Input bytes parsed per chunk (a chunk holds the records of between one and two blocks).
  std::size_t block_bytes = std::size_t{16} << 20;
};

class DatasetStream {
 public:
  DatasetStream(const Dataset& dataset, Shard shard = {}, StreamOptions options = {});
  ~DatasetStream();
  DatasetStream(const DatasetStream&) = delete;
  DatasetStream& operator=(const DatasetStream&) = delete;

  // The next chunk of rows (with row identities). Returns false at the end of the shard; a chunk
  // may hold zero rows only at the end. Chunk buffers are reused: pass the same object each time.
  bool Next(Table* chunk);
  bool NextDense(const DenseSpec& spec, DenseData* chunk);

  // Starts a new pass from the beginning of the shard (the report keeps accumulating).
  void Rewind();
  // Reorders the shard's file ranges for the next pass (a permutation of 0..num_ranges()-1);
  // used by the streaming loader to shuffle files per epoch.
  void SetRangeOrder(std::vector<int> order);
  int num_ranges() const;

  const ReadReport& report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A dataset shard streamed as TableChunks: each pass rewinds the stream and visits its non-empty
// chunks. CSV and NPY datasets (an NPY file's <stem>.labels.npy is its label column, as in
// ReadTable); LIBSVM is read whole.
class StreamedTable final : public TableChunks {
 public:
  StreamedTable(const Dataset& dataset, Shard shard = {}, StreamOptions options = {});
  const Schema& schema() const override { return schema_; }
  void ForEachChunk(const std::function<void(const Table&)>& visit) override;
  const ReadReport& report() const { return stream_.report(); }
  // The shard's file ranges, and their order in the passes that follow (DatasetStream's).
  int num_ranges() const { return stream_.num_ranges(); }
  void SetRangeOrder(std::vector<int> order) { stream_.SetRangeOrder(std::move(order)); }

 private:
  Schema schema_;
  DatasetStream stream_;
  Table chunk_;
};

}  // namespace escala::data

#endif  // ESCALA_DATA_STREAM_H_
