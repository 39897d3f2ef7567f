#include "escala/train/source.h"

#include "escala/train/labels.h"

namespace escala::train {

void ShardChunks::ForEachChunk(const std::function<void(const DataShard&)>& visit) {
  const std::int64_t n = shard_.rows();
  const std::int64_t step = chunk_rows_ > 0 ? chunk_rows_ : std::max<std::int64_t>(n, 1);
  for (std::int64_t b = 0; b < n || b == 0; b += step) {
    const std::int64_t m = std::min(step, n - b);
    const auto at = static_cast<std::size_t>(b), count = static_cast<std::size_t>(m);
    visit(DataShard{shard_.features.Rows(b, m), shard_.labels.subspan(at, count),
                    shard_.row_ids.empty() ? std::span<const std::uint64_t>()
                                           : shard_.row_ids.subspan(at, count)});
    if (n == 0) break;
  }
}

DatasetChunks::DatasetChunks(const data::Dataset& dataset, data::Shard shard,
                             const features::Pipeline& pipeline, DatasetChunksOptions options)
    : pipeline_(pipeline), options_(std::move(options)), stream_(dataset, shard, options_.stream) {
  ESCALA_CHECK(pipeline_.fitted(), kFailedPrecondition,
               "a chunked source needs a fitted pipeline (features::Pipeline::Fit)");
}

void DatasetChunks::ForEachChunk(const std::function<void(const DataShard&)>& visit) {
  stream_.Rewind();
  rows_ = 0;
  while (stream_.Next(&chunk_)) {
    rows_ += chunk_.num_rows();
    if (chunk_.num_rows() == 0) continue;
    pipeline_.Transform(chunk_, &x_);
    const std::vector<float> y = EncodeLabels(chunk_, options_.label, options_.class_names);
    visit(DataShard{std::as_const(x_).view(), y, {}});
  }
}

}  // namespace escala::train
