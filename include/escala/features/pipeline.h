// Feature pipelines: an ordered list of steps over named columns that turns raw columns
// (numeric and categorical) into a dense float32 feature matrix with named output features.
//
// A pipeline is written as a spec, a CLI string or a file (steps separated by '|' or newlines,
// '#' starts a comment):
//
//   impute(median) | clip(q=0.01,0.99) | standardize | onehot(species,island)
//     | expr(bmi = body_mass_g / (flipper_length_mm * flipper_length_mm))
//
// Fit(table, comm) fits every step in order on the data *as transformed by the steps before it*.
// Every statistic a step needs is computed on this rank's shard and merged through the
// communicator (exactly for counts, categories, min and max; to rounding for moments; within the
// sketch's rank-error bound for quantiles), so N workers fit the same pipeline as one process
// over all the data. A pipeline that fails to fit is left as it was.
//
// Transform() runs the fitted steps on blocks of rows in parallel (oneTBB); after the first batch
// it allocates nothing (each thread reuses its scratch). The fitted pipeline serialises to
// protobuf and is stored in the model bundle, so the server computes exactly the features
// training computed: Fit -> Serialize -> Parse -> Transform is bit-identical.
//
// Steps (columns default as noted when none are named):
//   impute(mean|median|most_frequent|constant, value=V, indicator=true, cols...)
//                                  numeric columns (most_frequent/constant: categorical ones)
//   clip(q=LO,HI | iqr=K | z=K | min=A,max=B, cols...)      numeric columns
//   standardize(cols...)  minmax(range=A,B, cols...)  robust(cols...)   numeric columns
//   log1p(cols...)  log(cols...)  sqrt(cols...)  abs(cols...)          named columns only
//   onehot(cols..., max_categories=K, unknown=error|ignore|other)      categorical columns
//   ordinal(cols..., unknown=error|use_value)                           categorical columns
//   hash(cols..., buckets=N)                                            categorical columns
//   bucketize(col, boundaries=B1,B2,...)  quantile_bins(cols..., bins=K)
//   poly(degree=D, interaction_only=true, cols...)                      numeric columns
//   expr(name = expression)   (see escala/features/expression.h)
//   drop(cols...)
//
// Thread-safety: Fit() and Parse() mutate; Transform() is const and may run concurrently.
#ifndef ESCALA_FEATURES_PIPELINE_H_
#define ESCALA_FEATURES_PIPELINE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"
#include "escala/data/table.h"

namespace escala::features {

struct PipelinePlan;  // escala/features/pipeline_plan.h

// One raw input column of a batch to transform, viewed without copying.
struct RawColumn {
  enum class Kind : std::uint8_t { kFloat32, kFloat64, kInt64, kInt32, kCodes, kStrings };
  Kind kind = Kind::kFloat32;
  // kFloat32: const float*, kFloat64: const double*, kInt64: const int64_t*, kInt32: const
  // int32_t*, kCodes: const int32_t* (indices into *dictionary, -1 missing), kStrings: const
  // std::string_view*.
  const void* values = nullptr;
  std::int64_t stride = 1;  // in elements: a column of a row-major matrix has stride = cols
  const std::uint8_t* missing = nullptr;                 // optional: 1 = missing
  const std::vector<std::string>* dictionary = nullptr;  // kCodes
};

// Rows of raw input, one RawColumn per pipeline input (in input_schema() order).
struct RawBatch {
  std::int64_t rows = 0;
  std::vector<RawColumn> columns;
};

// Views every input column of `table` (matched by name). Throws kNotFound for a missing input
// column and kInvalidArgument for a type mismatch (a categorical column where a number is
// expected, or the reverse).
RawBatch BatchFromTable(const data::Table& table, const data::Schema& inputs);

struct FitOptions {
  // Columns that are not inputs (the label, ids).
  std::vector<std::string> exclude;
  // Quantile sketch size for median/quantile-based steps (see sketches.h for the error bound).
  int sketch_k = 2048;
  // Categories tracked per column when fitting encoders (exact up to this many).
  std::size_t max_tracked_categories = 1 << 20;
  // The columns' declared types, recorded as the pipeline's inputs (what a server advertises),
  // where the data holds numbers narrower than declared (data::DatasetOptions::float32_numbers);
  // empty: the data's own.
  data::Schema declared;
  // A feature that is missing (NaN) after the pipeline passes through instead of being an error:
  // for models that handle missing values themselves (trees learn a direction for them).
  // Recorded in the fitted pipeline, so scoring and serving do the same.
  bool keep_missing = false;
};

// Per-thread scratch for TransformInto(): buffers sized on first use, then reused, so that a
// server thread transforms request after request without allocating.
class TransformScratch {
 public:
  TransformScratch();
  ~TransformScratch();
  TransformScratch(TransformScratch&&) noexcept;
  TransformScratch& operator=(TransformScratch&&) noexcept;
  struct Data;
  std::unique_ptr<Data> data;
};

class Pipeline {
 public:
  Pipeline();
  ~Pipeline();
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  Pipeline(const Pipeline&);
  Pipeline& operator=(const Pipeline&);

  // Parses a spec (see above). Throws kInvalidArgument naming the step and the problem. An empty
  // spec is the identity over numeric columns.
  static Pipeline FromSpec(std::string_view spec);
  const std::string& spec() const;

  // Fits on this rank's shard, merging statistics through comm (every rank must call it). On
  // failure the pipeline is unchanged. Errors name the step and column.
  void Fit(const data::Table& table, const FitOptions& options, Communicator& comm);
  // Fits the same way on a shard read in chunks (a dataset streamed from files), holding one
  // chunk's columns at a time whatever the shard's size: each statistic a step needs is one pass
  // over the chunks, each chunk transformed by the steps fitted before (the default pipeline:
  // four passes). The result is Fit()'s on the whole shard, up to the order in which moments and
  // sketches are merged (to rounding; quantiles within the sketch's rank error).
  void Fit(data::TableChunks& chunks, const FitOptions& options, Communicator& comm);
  bool fitted() const;
  bool keep_missing() const;

  // The raw columns the fitted pipeline reads, and the features it produces.
  const data::Schema& input_schema() const;
  const std::vector<std::string>& output_names() const;
  std::int64_t num_outputs() const;
  // Per output feature: how many categories it codes when an ordinal step made it (codes 0 ..
  // n-1; trees split such features by category sets), 0 for a number.
  const std::vector<std::int64_t>& output_categories() const;

  // Transforms a batch into out (batch.rows x num_outputs(), resized). Parallel over row blocks.
  // Errors (kInvalidArgument) name the row, the step and the column: an unseen category under
  // unknown=error, a value that is infinite in the output, or missing (NaN) unless the pipeline
  // was fitted with keep_missing.
  void Transform(const RawBatch& batch, MatrixF* out) const;
  void Transform(const data::Table& table, MatrixF* out) const;
  // Into rows a caller holds (batch.rows x num_outputs()), e.g. a chunk's rows of a larger matrix.
  void Transform(const RawBatch& batch, MatrixViewF out) const;
  void Transform(const data::Table& table, MatrixViewF out) const;
  // Single-threaded into a caller-provided view (batch.rows x num_outputs()), with caller-owned
  // scratch: for servers that manage their own threads.
  void TransformInto(const RawBatch& batch, MatrixViewF out, TransformScratch& scratch) const;

  // Protobuf bytes of the fitted pipeline (escala.features.v1.Pipeline); Parse() validates.
  std::string Serialize() const;
  static Pipeline Parse(std::string_view bytes);

  // Human-readable description of the fitted steps and parameters.
  std::string Describe() const;
  // The compiled plan Transform() runs (escala/features/pipeline_plan.h). kFailedPrecondition
  // when not fitted.
  PipelinePlan Plan() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> StartFit(const data::Schema& schema, const FitOptions& options,
                                 Communicator& comm) const;
  void FinishFit(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::features

#endif  // ESCALA_FEATURES_PIPELINE_H_
