#include "escala/train/source.h"

#include <numeric>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/random.h"
#include "escala/train/labels.h"

namespace escala::train {

void ShardChunks::ForEachChunk(const std::function<void(const DataShard&)>& visit) {
  const std::int64_t n = shard_.rows();
  const std::int64_t step = chunk_rows_ > 0 ? chunk_rows_ : std::max<std::int64_t>(n, 1);
  for (std::int64_t b = 0; b < n || b == 0; b += step) {
    const std::int64_t m = std::min(step, n - b);
    const auto at = static_cast<std::size_t>(b), count = static_cast<std::size_t>(m);
    visit(DataShard{
        shard_.features.Rows(b, m), shard_.labels.subspan(at, count),
        shard_.row_ids.empty() ? std::span<const std::uint64_t>()
                               : shard_.row_ids.subspan(at, count),
        shard_.weighted() ? shard_.weights.subspan(at, count) : std::span<const float>()});
    if (n == 0) break;
  }
}

DatasetChunks::DatasetChunks(const data::Dataset& dataset, data::Shard shard,
                             const features::Pipeline& pipeline, DatasetChunksOptions options)
    : pipeline_(pipeline),
      options_(std::move(options)),
      table_(dataset, shard, options_.stream),
      labelled_(table_, options_.label) {
  ESCALA_CHECK(pipeline_.fitted(), kFailedPrecondition,
               "a chunked source needs a fitted pipeline (features::Pipeline::Fit)");
}

void DatasetChunks::StartEpoch(std::uint64_t key) {
  std::vector<int> order(static_cast<std::size_t>(table_.num_ranges()));
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = order.size(); i > 1; --i) {
    const auto k =
        static_cast<std::size_t>(UnitFromHash(HashCombine(key, i)) * static_cast<double>(i));
    std::swap(order[i - 1], order[k]);
  }
  table_.SetRangeOrder(std::move(order));
}

void DatasetChunks::ForEachChunk(const std::function<void(const DataShard&)>& visit) {
  rows_ = 0;
  data::TableChunks& rows =
      options_.drop_missing_labels ? static_cast<data::TableChunks&>(labelled_) : table_;
  rows.ForEachChunk([&](const data::Table& chunk) {
    const std::int64_t first = rows_;
    rows_ += chunk.num_rows();
    std::vector<float> y;
    try {
      pipeline_.Transform(chunk, &x_);
      y = EncodeLabels(chunk, options_.label, options_.class_names);
      if (options_.label_shift != 0 || options_.label_scale != 1) {
        for (float& v : y) {
          v = static_cast<float>((v - options_.label_shift) / options_.label_scale);
        }
      }
    } catch (const Error& e) {
      // Row numbers in the message count from the chunk's first row.
      throw e.WithContext(fmt::format("in the chunk from row {} of this shard", first));
    }
    visit(DataShard{std::as_const(x_).view(), y, {}});
  });
}

}  // namespace escala::train
