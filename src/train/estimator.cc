#include "escala/train/estimator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <numeric>
#include <span>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "escala/core/error.h"
#include "escala/core/fault_injection.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"
#include "escala/data/split.h"
#include "escala/features/pipeline_plan.h"
#include "escala/models/factory.h"
#include "escala/models/tree_ensemble.h"
#include "escala/train/gbdt.h"
#include "escala/train/labels.h"
#include "escala/train/params.h"
#include "escala/train/source.h"

namespace escala::train {

namespace {

constexpr int kDefaultMaxEpochs = 200;
constexpr int kDefaultPatience = 10;
constexpr double kDefaultMinDelta = 1e-4;

// This rank's training rows as chunks (one, for a table) and the validation table.
struct Rows {
  std::vector<data::Table> chunks;
  data::Schema schema;  // of the chunks
  std::optional<data::Table> valid;

  std::int64_t num_rows() const {
    std::int64_t n = 0;
    for (const auto& c : chunks) n += c.num_rows();
    return n;
  }
};

// Rows whose label is missing, removed from each table (with a count in the log).
void DropMissingLabels(const std::string& label, std::span<data::Table> tables,
                       Communicator& comm) {
  std::int64_t dropped = 0;
  for (auto& t : tables) {
    const data::Column& col = t.column(label);
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < t.num_rows(); ++i) {
      if (!col.is_missing(i)) keep.push_back(i);
    }
    if (keep.size() == static_cast<std::size_t>(t.num_rows())) continue;
    dropped += t.num_rows() - static_cast<std::int64_t>(keep.size());
    t = t.Take(keep);
  }
  dropped = comm.AllReduceScalar<std::int64_t>(dropped, ReduceOp::kSum);
  if (dropped > 0 && comm.rank() == 0) {
    ESCALA_LOG_INFO("dropped {} row(s) whose label '{}' is missing", dropped, label);
  }
}

// The weight column must be a number column.
void CheckWeightColumn(const data::Schema& schema, const std::string& weight) {
  const auto& field = schema.field(schema.Index(weight));
  ESCALA_CHECK(data::IsNumeric(field.type), kInvalidArgument,
               "weight column '{}' holds {}, not numbers", weight, data::DataTypeName(field.type));
}

// A table's weights (empty without a weight column), checked finite and >= 0 (a missing weight
// is refused), its rows named from `row_offset` within this rank's shard.
std::vector<float> ReadWeights(const data::Table& t, const std::string& weight,
                               std::int64_t row_offset) {
  if (weight.empty()) return {};
  const data::Column& col = t.column(weight);
  std::vector<float> w(static_cast<std::size_t>(t.num_rows()));
  for (std::int64_t i = 0; i < t.num_rows(); ++i) {
    const double v = col.is_missing(i) ? std::nan("") : col.GetDouble(i);
    ESCALA_CHECK(std::isfinite(v) && v >= 0, kInvalidArgument,
                 "weight column '{}': row {}: weight {} is not a finite number >= 0", weight,
                 i + row_offset,
                 col.is_missing(i) ? std::string("(missing)") : fmt::format("{}", v));
    w[static_cast<std::size_t>(i)] = static_cast<float>(v);
  }
  return w;
}

// The training and validation rows: as given, or with valid_fraction of the rows held out (each
// row by its identity, so chunk by chunk).
void PrepareRows(const TrainSpec& spec, Rows* rows, Communicator& comm) {
  ESCALA_CHECK(rows->num_rows() > 0 || comm.size() > 1, kInvalidArgument,
               "training data has no rows");
  rows->schema.Index(spec.label);  // a missing label column fails here, listing the columns
  if (!spec.weight.empty()) CheckWeightColumn(rows->schema, spec.weight);
  if (spec.drop_missing_labels) DropMissingLabels(spec.label, rows->chunks, comm);
  if (rows->valid.has_value()) {
    if (spec.drop_missing_labels) DropMissingLabels(spec.label, {&*rows->valid, 1}, comm);
    return;
  }
  if (spec.valid_fraction == 0) return;
  std::vector<data::Table> held;
  for (auto& t : rows->chunks) {
    const auto split =
        data::SplitTrainValidation(t.row_ids(), spec.valid_fraction, spec.options.seed);
    held.push_back(t.Take(split.valid));
    t = t.Take(split.train);
  }
  rows->valid = data::ConcatTables(held);
  const auto left = comm.AllReduceScalar<std::int64_t>(rows->num_rows(), ReduceOp::kSum);
  ESCALA_CHECK(left >= 2, kInvalidArgument,
               "valid_fraction {} leaves {} training row(s) of {}: give a smaller fraction",
               spec.valid_fraction, left,
               left + comm.AllReduceScalar<std::int64_t>(rows->valid->num_rows(), ReduceOp::kSum));
}

// The label column of every chunk as one table: what ResolveTask reads.
data::Table LabelTable(const Rows& rows, const std::string& label) {
  std::vector<data::Table> parts;
  for (const auto& c : rows.chunks) parts.push_back(data::Table({c.column(label)}));
  if (parts.empty()) {
    const auto& field = rows.schema.field(rows.schema.Index(label));
    parts.push_back(data::Table({data::Column(label, field.type, 0)}));
  }
  return parts.size() == 1 ? std::move(parts[0]) : data::ConcatTables(parts);
}

// The feature pipeline: the warm start's, or the spec's fitted on all ranks' data.
features::Pipeline FitPipeline(const TrainSpec& spec, data::TableChunks& chunks, Communicator& comm,
                               const data::Schema& declared = {});

bool IsTrees(const TrainSpec& spec) {
  return spec.model == "gbdt" || spec.model == "random_forest";
}

// The spec's pipeline, or the trees' default in place of the default.
std::string PipelineSpec(const TrainSpec& spec) {
  return IsTrees(spec) && spec.pipeline == kDefaultPipeline ? kTreesPipeline : spec.pipeline;
}

features::FitOptions FitOptionsFor(const TrainSpec& spec, const data::Schema& declared) {
  features::FitOptions fo;
  fo.exclude = {spec.label};
  if (!spec.weight.empty()) fo.exclude.push_back(spec.weight);
  fo.declared = declared;
  fo.keep_missing = IsTrees(spec);
  return fo;
}

// On a single table the fit runs each step once over it; on chunks, once per statistic.
features::Pipeline FitPipeline(const TrainSpec& spec, const Rows& rows,
                               const data::Schema& declared, Communicator& comm) {
  if (rows.chunks.size() != 1 || (spec.init_from != nullptr && !spec.refit_pipeline)) {
    data::TableList chunks(rows.chunks, rows.schema);
    return FitPipeline(spec, chunks, comm, declared);
  }
  features::Pipeline pipeline = features::Pipeline::FromSpec(PipelineSpec(spec));
  features::FitOptions fo = FitOptionsFor(spec, declared);
  pipeline.Fit(rows.chunks[0], fo, comm);
  return pipeline;
}

features::Pipeline FitPipeline(const TrainSpec& spec, data::TableChunks& chunks, Communicator& comm,
                               const data::Schema& declared) {
  if (spec.init_from != nullptr && !spec.refit_pipeline) return spec.init_from->pipeline;
  features::Pipeline pipeline = features::Pipeline::FromSpec(PipelineSpec(spec));
  features::FitOptions fo = FitOptionsFor(spec, declared);
  pipeline.Fit(chunks, fo, comm);
  return pipeline;
}

struct TargetScaling {
  double shift = 0, scale = 1;
};

// An mlp regressor trains on the standardised target (the model un-scales its predictions), so
// that its defaults work whatever the target's units; a warm start keeps the earlier scaling.
TargetScaling StandardizeTarget(const TrainSpec& spec, models::Task task, Communicator& comm,
                                std::vector<float>* y) {
  TargetScaling t;
  if (task != models::Task::kRegression || spec.model != "mlp") return t;
  if (spec.init_from != nullptr) {
    t = {spec.init_from->model->target_shift(), spec.init_from->model->target_scale()};
  } else {
    std::array<double, 2> m = {static_cast<double>(y->size()), 0};
    for (float v : *y) m[1] += v;
    comm.AllReduce(std::span<double>(m), ReduceOp::kSum);
    const double mean = m[0] > 0 ? m[1] / m[0] : 0;
    double ss = 0;
    for (float v : *y) ss += (v - mean) * (v - mean);
    comm.AllReduce(std::span<double>(&ss, 1), ReduceOp::kSum);
    const double sd = m[0] > 0 ? std::sqrt(ss / m[0]) : 0;
    t = {mean, sd > 0 && std::isfinite(sd) ? sd : 1.0};
  }
  for (float& v : *y) v = static_cast<float>((v - t.shift) / t.scale);
  return t;
}

models::ModelSpec ModelSpecFor(const TrainSpec& spec, models::Task task,
                               const features::Pipeline& pipeline,
                               const std::vector<std::string>& classes) {
  models::ModelSpec m;
  m.kind = spec.model;
  m.task = task;
  m.num_features = pipeline.num_outputs();
  m.num_classes = task == models::Task::kMulticlass ? static_cast<int>(classes.size()) : 0;
  m.hidden = spec.hidden;
  m.activation = spec.activation;
  m.dropout = spec.dropout;
  return m;
}

void LogDefaults(const TrainSpec& spec, const TrainOptions& o, bool has_valid) {
  if (!spec.l2 && spec.model != "mlp") {
    ESCALA_LOG_INFO(
        "l2 defaults to 1/n = {:.3g} (scikit-learn's C=1; n: the weight sum when "
        "weighted); l2 0 turns it off",
        o.optimizer.l2);
  }
  if (!spec.epochs && o.optimizer.name != "lbfgs") {
    ESCALA_LOG_INFO(
        "epochs default to at most {}, stopping when the {} loss has not improved by {} for {} "
        "epochs; give epochs for a fixed count",
        kDefaultMaxEpochs, has_valid ? "validation" : "training", kDefaultMinDelta,
        o.early_stopping.patience);
  }
}

// The spec's options with the defaults that depend on the model and the data (docs/training.md):
// linear models are regularised as C = 1 (l2 = 1/n: the objective is the mean loss + l2/2 |w|^2);
// minibatch training runs up to 200 epochs and stops when the monitored loss has not improved by
// 1e-4 for 10 epochs (MLPClassifier's max_iter, tol and n_iter_no_change).
TrainOptions OptionsFor(const TrainSpec& spec, double rows, const features::Pipeline& p,
                        bool has_valid, bool leader) {
  TrainOptions o = spec.options;
  const bool linear = spec.model != "mlp";
  // L-BFGS has no per-step form: with a backend (a GPU) every model defaults to adam.
  o.optimizer.name = spec.optimizer.value_or(linear && !o.backend ? "lbfgs" : "adam");
  const bool adam = o.optimizer.name == "adam" || o.optimizer.name == "adamw";
  o.optimizer.lr = spec.lr.value_or(adam ? 1e-3f : 1e-2f);
  o.optimizer.l2 = spec.l2.value_or(linear && rows > 0 ? 1.0f / static_cast<float>(rows) : 0.0f);
  o.epochs = spec.epochs.value_or(kDefaultMaxEpochs);
  o.early_stopping.patience = spec.early_stopping.value_or(spec.epochs ? 0 : kDefaultPatience);
  if (!spec.early_stopping && !spec.epochs && o.early_stopping.min_delta == 0) {
    o.early_stopping.min_delta = kDefaultMinDelta;
  }
  if (o.checkpoint.data_tag.empty()) {
    o.checkpoint.data_tag = fmt::format("{} #{:08x}", p.spec(), Crc32(p.Serialize()));
  }
  if (leader) LogDefaults(spec, o, has_valid);
  Validate(o);
  return o;
}

// cv / search: cross-validates the candidates and applies the best to mspec and o.
std::optional<SelectionResult> Select(const TrainSpec& spec, const DataShard& data,
                                      Communicator& comm, models::ModelSpec* mspec,
                                      TrainOptions* o) {
  if (spec.cv == 0 && spec.search.empty()) return std::nullopt;
  std::vector<Candidate> candidates = {{}};
  if (!spec.search.empty()) {
    const auto space = ParseSearchSpace(spec.search);
    candidates = spec.search_samples > 0 ? RandomCandidates(space, spec.search_samples, o->seed)
                                         : GridCandidates(space);
  }
  SelectionOptions so;
  so.folds = spec.cv > 0 ? spec.cv : 5;
  so.metric = o->metric;
  so.seed = o->seed;
  SelectionResult sel = CrossValidate(*mspec, *o, candidates, data, so, comm);
  ApplyCandidate(sel.candidates[static_cast<std::size_t>(sel.best)].params, mspec, o);
  return sel;
}

// The warm start's weights, when it is the same model.
void WarmStart(const TrainSpec& spec, models::GradientModel& model, TrainOptions* o) {
  if (spec.init_from == nullptr) return;
  const models::Model& earlier = *spec.init_from->model;
  const auto* prev = dynamic_cast<const models::GradientModel*>(&earlier);
  ESCALA_CHECK(prev != nullptr && prev->kind() == model.kind() &&
                   prev->parameters().size() == model.parameters().size(),
               kFailedPrecondition, "init_from: its model ({}) does not match this one ({})",
               earlier.Describe(), model.Describe());
  std::copy(prev->parameters().begin(), prev->parameters().end(), model.parameters().begin());
  o->initialize = false;
}

void CheckWarmStartClasses(const TrainSpec& spec, const std::vector<std::string>& classes) {
  if (spec.init_from == nullptr || spec.init_from->class_names.empty()) return;
  ESCALA_CHECK(spec.init_from->class_names == classes, kFailedPrecondition,
               "init_from: its classes ({}) differ from this data's ({})",
               fmt::join(spec.init_from->class_names, ", "), fmt::join(classes, ", "));
}

std::map<std::string, std::string> TrainingConfig(const TrainSpec& spec, models::Task task,
                                                  const TrainOptions& o,
                                                  const features::Pipeline& pipeline, int workers,
                                                  const std::string& stop_reason) {
  return {{"model", spec.model},
          {"task", std::string(models::TaskName(task))},
          {"optimizer", o.optimizer.name},
          {"lr", fmt::format("{}", o.optimizer.lr)},
          {"epochs", std::to_string(o.epochs)},
          {"batch_size", std::to_string(o.batch_size)},
          {"l2", fmt::format("{}", o.optimizer.l2)},
          {"l1", fmt::format("{}", o.optimizer.l1)},
          {"seed", std::to_string(o.seed)},
          {"pipeline", pipeline.spec()},
          {"workers", std::to_string(workers)},
          {"stop_reason", stop_reason}};
}

// The encoded tables: features through the pipeline, labels as the trainer takes them.
struct Encoded {
  MatrixF x, xv;
  std::optional<ConstMatrixViewF> given;  // the training features, when a caller holds them
  std::vector<float> y, yv;
  std::vector<float> w, wv;  // weights (empty without a weight column)
  std::vector<std::uint64_t> ids;

  DataShard train() const { return {given.value_or(std::as_const(x).view()), y, ids, w}; }
  DataShard valid() const { return {std::as_const(xv).view(), yv, {}, wv}; }
};

// Returns the memory of freed chunks to the system (glibc keeps it in its free lists otherwise),
// so that the feature matrix filling up takes the place of the chunks rather than adding to them.
void ReleaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

std::string WeightsName(const TrainSpec& spec) {
  return fmt::format("weight column '{}'", spec.weight);
}

// The validation rows, weighted when they have the weight column.
void EncodeValid(const TrainSpec& spec, const features::Pipeline& pipeline,
                 const data::Table& valid, const std::vector<std::string>& classes, Encoded* e) {
  pipeline.Transform(valid, &e->xv);
  e->yv = EncodeLabels(valid, spec.label, classes);
  if (!spec.weight.empty() && valid.schema().Find(spec.weight) >= 0) {
    e->wv = ReadWeights(valid, spec.weight, 0);
  }
}

// Transforms each chunk into its rows of the feature matrix and encodes its labels, freeing the
// chunk as it goes: the peak is about the larger of the chunks and the matrix, not both.
Encoded Encode(const TrainSpec& spec, const features::Pipeline& pipeline, Rows* rows,
               const std::vector<std::string>& classes, Communicator& comm) {
  Encoded e;
  const std::int64_t n = rows->num_rows();
  e.x.Resize(n, pipeline.num_outputs());
  e.y.reserve(static_cast<std::size_t>(n));
  std::vector<std::uint64_t> ids;
  bool have_ids = true;
  std::int64_t at = 0;
  std::size_t freed = 0;  // about, since the last hand-back
  for (auto& chunk : rows->chunks) {
    try {
      pipeline.Transform(chunk, e.x.view().Rows(at, chunk.num_rows()));
      const std::vector<float> y = EncodeLabels(chunk, spec.label, classes);
      e.y.insert(e.y.end(), y.begin(), y.end());
      const std::vector<float> w = ReadWeights(chunk, spec.weight, at);
      e.w.insert(e.w.end(), w.begin(), w.end());
    } catch (const Error& err) {
      if (rows->chunks.size() == 1) throw;
      throw err.WithContext(fmt::format("in the chunk from row {} of this shard", at));
    }
    have_ids = have_ids && chunk.row_ids().size() == static_cast<std::size_t>(chunk.num_rows());
    ids.insert(ids.end(), chunk.row_ids().begin(), chunk.row_ids().end());
    at += chunk.num_rows();
    freed += static_cast<std::size_t>(chunk.num_rows()) * chunk.schema().fields().size() * 4;
    chunk = data::Table();
    // Each hand-back walks the heap: one per 32 MiB freed (a few MiB over the peak, half the cost).
    if (rows->chunks.size() > 1 && freed >= (std::size_t{32} << 20)) {
      ReleaseFreedMemory();
      freed = 0;
    }
  }
  if (rows->valid) {
    EncodeValid(spec, pipeline, *rows->valid, classes, &e);
    *rows->valid = data::Table();  // encoded: only its presence counts from here on
    ReleaseFreedMemory();
  }
  if (!spec.weight.empty()) {
    CheckWeights(e.w, static_cast<std::int64_t>(e.y.size()), WeightsName(spec), comm);
  }
  e.ids = DenseRowIds(have_ids ? ids : std::vector<std::uint64_t>(), comm);
  return e;
}

// StandardizeTarget for streamed training, from the label scan's moments.
TargetScaling StreamedTargetScaling(const TrainSpec& spec, models::Task task, const LabelScan& scan,
                                    Communicator& comm) {
  if (task != models::Task::kRegression || spec.model != "mlp") return {};
  if (spec.init_from != nullptr) {
    return {spec.init_from->model->target_shift(), spec.init_from->model->target_scale()};
  }
  const features::NumericSummary all = features::AllMerge(scan.values, comm);
  const double sd = all.count() > 0 ? std::sqrt(all.population_variance()) : 0;
  return {all.count() > 0 ? all.mean() : 0, sd > 0 && std::isfinite(sd) ? sd : 1.0};
}

// Streamed minibatches: the shuffle buffer takes a quarter of the memory budget.
StreamedBatchOptions BatchesFor(const StreamSpec& stream, const features::Pipeline& pipeline) {
  StreamedBatchOptions b;
  const std::size_t row_bytes = static_cast<std::size_t>(pipeline.num_outputs()) * 4 + 12;
  b.shuffle_rows =
      std::max<std::int64_t>(1024, static_cast<std::int64_t>(stream.memory_budget / 4 / row_bytes));
  return b;
}

// The bundle of a trained model, with its metadata, metrics and history.
void FillBundle(const TrainSpec& spec, models::Task task, const std::vector<std::string>& classes,
                const features::Pipeline& pipeline, std::shared_ptr<models::Model> model,
                const TrainOptions& o, int workers, TrainOutcome* out) {
  io::ModelBundle& b = out->bundle;
  b.name = spec.name;
  b.label = spec.label;
  b.class_names = classes;
  b.pipeline = pipeline;
  b.model = std::move(model);
  b.history = out->result.history;
  if (out->selection) {
    const auto& best = out->selection->candidates[static_cast<std::size_t>(out->selection->best)];
    b.metrics["cv_" + out->selection->metric] = best.mean;
  }
  for (const auto& [k, v] : out->result.valid.values) b.metrics["valid_" + k] = v;
  b.training_config = TrainingConfig(spec, task, o, pipeline, workers, out->result.stop_reason);
}

void LogDroppedLabels(const TrainSpec& spec, std::int64_t local, Communicator& comm) {
  const auto dropped = comm.AllReduceScalar<std::int64_t>(local, ReduceOp::kSum);
  if (dropped > 0 && comm.rank() == 0) {
    ESCALA_LOG_INFO("dropped {} row(s) whose label '{}' is missing", dropped, spec.label);
  }
}

// What trees cannot do yet, refused before any data is read.
void CheckTreeSpec(const TrainSpec& s) {
  if (!IsTrees(s)) return;
  Validate(s.trees);
  ESCALA_CHECK(s.init_from == nullptr || s.model == "gbdt", kInvalidArgument,
               "init_from: a random forest does not continue from an earlier bundle (boosting "
               "does: --model gbdt)");
  ESCALA_CHECK(!s.options.backend, kInvalidArgument,
               "gbdt trains on the CPU; the GPU backend trains linear models and MLPs");
}

// "feature=1,other=-1" as one constraint per feature of the pipeline's output.
std::vector<int> MonotoneConstraints(const std::string& text,
                                     const std::vector<std::string>& names) {
  std::vector<int> out(names.size(), 0);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    start = end + 1;
    const std::size_t eq = item.rfind('=');
    const std::string name = item.substr(0, eq);
    const std::string dir = eq == std::string::npos ? "" : item.substr(eq + 1);
    ESCALA_CHECK(dir == "1" || dir == "+1" || dir == "-1" || dir == "0", kInvalidArgument,
                 "monotone_constraints: '{}' is not feature=1, feature=-1 or feature=0", item);
    const auto it = std::find(names.begin(), names.end(), name);
    ESCALA_CHECK(it != names.end(), kInvalidArgument,
                 "monotone_constraints: no feature '{}' after the pipeline (features: {})", name,
                 ShortList(names));
    out[static_cast<std::size_t>(it - names.begin())] = std::stoi(dir);
  }
  return out;
}

// The spec's tree options with the shared stopping and seed settings (early stopping is off
// unless asked for, as in XGBoost and LightGBM); a forest's defaults where none was given.
GbdtOptions TreeOptionsFor(const TrainSpec& spec, models::Task task,
                           const std::vector<std::string>& features,
                           const std::vector<std::int64_t>& categories) {
  GbdtOptions t = spec.trees;
  if (spec.model == "random_forest") {
    TrainSpec forest;
    forest.trees = ForestDefaults(task, static_cast<std::int64_t>(features.size()));
    for (const std::string& name : spec.trees_given) {
      TrainParams().Set(forest, name, TrainParams().Find(name)->get(spec), name);
    }
    t = forest.trees;
  }
  t.early_stopping = spec.early_stopping.value_or(0);
  if (!spec.monotone_constraints.empty()) {
    t.monotone = MonotoneConstraints(spec.monotone_constraints, features);
  }
  t.categorical = categories;
  for (std::size_t f = 0; f < categories.size(); ++f) {
    ESCALA_CHECK(categories[f] <= t.max_bin, kInvalidArgument,
                 "column '{}' has {} categories, more than max_bin {}: raise max_bin, or encode it "
                 "in the pipeline (onehot(max_categories=K), hash)",
                 features[f], categories[f], t.max_bin);
  }
  t.min_delta = spec.options.early_stopping.min_delta;
  t.seed = spec.options.seed;
  return t;
}

std::map<std::string, std::string> TreesConfig(const GbdtOptions& t, const std::string& model,
                                               models::Task task, const std::string& objective,
                                               const features::Pipeline& pipeline, int workers) {
  return {{"model", model},
          {"task", std::string(models::TaskName(task))},
          {"objective", objective},
          {"rounds", std::to_string(t.rounds)},
          {"max_depth", std::to_string(t.max_depth)},
          {"max_leaves", std::to_string(t.max_leaves)},
          {"learning_rate", fmt::format("{}", t.learning_rate)},
          {"max_bin", std::to_string(t.max_bin)},
          {"lambda", fmt::format("{}", t.lambda)},
          {"alpha", fmt::format("{}", t.alpha)},
          {"gamma", fmt::format("{}", t.gamma)},
          {"min_child_weight", fmt::format("{}", t.min_child_weight)},
          {"min_data_in_leaf", std::to_string(t.min_data_in_leaf)},
          {"subsample", fmt::format("{}", t.subsample)},
          {"colsample_bytree", fmt::format("{}", t.colsample_bytree)},
          {"colsample_bynode", fmt::format("{}", t.colsample_bynode)},
          {"early_stopping", std::to_string(t.early_stopping)},
          {"seed", std::to_string(t.seed)},
          {"monotone_constraints", fmt::format("{}", fmt::join(t.monotone, ","))},
          {"max_cat_to_onehot", std::to_string(t.max_cat_to_onehot)},
          {"pipeline", pipeline.spec()},
          {"workers", std::to_string(workers)}};
}

// The features with the largest total gain: name, gain share, cover, splits.
void LogImportance(const models::TreeEnsemble& model, const std::vector<std::string>& names) {
  const models::FeatureImportance imp = model.Importance();
  std::vector<std::size_t> order(imp.gain.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return imp.gain[a] > imp.gain[b]; });
  const double total = std::accumulate(imp.gain.begin(), imp.gain.end(), 0.0);
  std::string lines;
  std::size_t r = 0;
  for (; r < order.size() && r < 10 && imp.splits[order[r]] > 0; ++r) {
    const std::size_t f = order[r];
    lines += fmt::format("\n  {:<24} gain {:5.1f}%  cover {:.4g}  splits {}",
                         f < names.size() ? names[f] : fmt::format("feature {}", f),
                         total > 0 ? 100 * imp.gain[f] / total : 0.0, imp.cover[f], imp.splits[f]);
  }
  ESCALA_LOG_INFO("feature importance (top {} by total gain):{}", r, lines);
}

// A warm start's trees: an earlier gbdt over the same pipeline features (TrainGbdt checks the
// rest: task, outputs, objective).
const models::TreeEnsemble* WarmStartTrees(const TrainSpec& spec,
                                           const features::Pipeline& pipeline) {
  if (spec.init_from == nullptr) return nullptr;
  const auto* init = dynamic_cast<const models::TreeEnsemble*>(spec.init_from->model.get());
  ESCALA_CHECK(init != nullptr, kFailedPrecondition,
               "init_from: its model ({}) is not a tree ensemble",
               spec.init_from->model->Describe());
  ESCALA_CHECK(
      spec.init_from->pipeline.output_names() == pipeline.output_names(), kFailedPrecondition,
      "init_from: the refitted pipeline's features ({}) are not the earlier model's ({})",
      ShortList(pipeline.output_names()), ShortList(spec.init_from->pipeline.output_names()));
  return init;
}

// The tree parameters a search may vary: every declared one but the constraints (whose text
// holds the search's own separator).
std::vector<std::string> TreeSearchKeys() {
  std::vector<std::string> keys;
  for (const auto& p : TrainParams().params()) {
    if (p.info.group == "trees" && p.info.name != "monotone_constraints") {
      keys.push_back(p.info.name);
    }
  }
  return keys;
}

// The spec with a candidate's tree parameters set, as if given on the command line.
TrainSpec WithCandidate(const TrainSpec& spec, const Candidate& candidate) {
  TrainSpec s = spec;
  for (const auto& [key, value] : candidate) {
    TrainParams().Set(s, key, value, "search " + key);
    s.trees_given.insert(key);
  }
  return s;
}

// A tree candidate's score on one fold: trained as the final model is (early stopping, when
// asked for, on the fold's held-out rows), evaluated on those rows.
double ScoreTreeFold(const TrainSpec& spec, models::Task task, int classes,
                     const features::Pipeline& pipeline, const DataShard& train,
                     const DataShard& valid, const std::string& metric, Communicator& comm) {
  const GbdtOptions o =
      TreeOptionsFor(spec, task, pipeline.output_names(), pipeline.output_categories());
  // As the final model trains: from the warm start's trees, when there is one.
  const std::unique_ptr<models::TreeEnsemble> model =
      spec.model == "random_forest"
          ? TrainForest(o, task, classes, train, comm)
          : TrainGbdt(o, task, classes, train, o.early_stopping > 0 ? &valid : nullptr, comm, {},
                      WarmStartTrees(spec, pipeline));
  MatrixF pred(valid.rows(), model->num_outputs());
  auto ws = model->NewWorkspace();
  model->Predict(valid.features, pred.view(), *ws);
  return EvaluateDistributed(task, std::as_const(pred).view(), valid.labels, valid.weights, comm)
      .at(metric);
}

// cv / search for trees: candidates are tree parameters by their declared names; the spec
// returned has the best one applied (the spec itself without cv or search).
TrainSpec SelectTrees(const TrainSpec& spec, models::Task task, int classes,
                      const features::Pipeline& pipeline, const DataShard& data, Communicator& comm,
                      std::optional<SelectionResult>* selection) {
  if (spec.cv == 0 && spec.search.empty()) return spec;
  std::vector<Candidate> candidates = {{}};
  if (!spec.search.empty()) {
    const auto space = ParseSearchSpace(spec.search, TreeSearchKeys());
    candidates = spec.search_samples > 0
                     ? RandomCandidates(space, spec.search_samples, spec.options.seed)
                     : GridCandidates(space);
  }
  SelectionOptions so;
  so.folds = spec.cv > 0 ? spec.cv : 5;
  so.metric = spec.options.metric;
  so.seed = spec.options.seed;
  const auto score = [&](const Candidate& c, const DataShard& train, const DataShard& valid,
                         const std::string& metric) {
    return ScoreTreeFold(WithCandidate(spec, c), task, classes, pipeline, train, valid, metric,
                         comm);
  };
  *selection = CrossValidateWith(task, candidates, data, so, comm, score);
  const auto& best = (*selection)->candidates[static_cast<std::size_t>((*selection)->best)];
  return WithCandidate(spec, best.params);
}

// Boosted trees on the encoded shard: progress every tenth round, metrics on the validation rows.
void TrainTrees(const TrainSpec& given, models::Task task, const std::vector<std::string>& classes,
                const features::Pipeline& pipeline, const Encoded& e, bool has_valid,
                Communicator& comm, TrainOutcome* out) {
  const bool leader = comm.rank() == 0;
  const DataShard train = e.train();
  const DataShard valid = e.valid();
  const TrainSpec spec = SelectTrees(given, task, static_cast<int>(classes.size()), pipeline, train,
                                     comm, &out->selection);
  const GbdtOptions options =
      TreeOptionsFor(spec, task, pipeline.output_names(), pipeline.output_categories());
  const models::TreeEnsemble* init = WarmStartTrees(spec, pipeline);
  const int rounds = options.rounds;
  const bool forest = spec.model == "random_forest";
  const std::string objective =
      forest ? "random_forest" : ResolveObjective(options.objective, task);
  const std::string metric = ObjectiveMetric(objective);
  const auto progress = [&](int round, double loss) {
    out->result.history.push_back({});
    out->result.history.back().epoch = round;
    if (has_valid) out->result.history.back().valid[metric] = loss;
    if (forest) {
      if (leader && (round % 10 == 0 || round == rounds)) {
        ESCALA_LOG_INFO("random_forest: {}/{} trees", round, rounds);
      }
    } else if (leader && has_valid && (round <= 3 || round % 10 == 0 || round == rounds)) {
      ESCALA_LOG_INFO("gbdt round {}/{}: valid {} {:.6f}", round, rounds, metric, loss);
    }
  };
  const auto start = std::chrono::steady_clock::now();
  ForestReport oob;
  std::shared_ptr<models::TreeEnsemble> model =
      forest ? TrainForest(options, task, static_cast<int>(classes.size()), train, comm, progress,
                           &oob)
             : TrainGbdt(options, task, static_cast<int>(classes.size()), train,
                         has_valid ? &valid : nullptr, comm, progress, init);
  if (forest && leader) {
    ESCALA_LOG_INFO("random_forest: out-of-bag {} {:.6f} over {} rows", oob.oob_metric,
                    oob.oob_loss, oob.oob_rows);
  }
  out->result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto ran = static_cast<int>(out->result.history.size());
  const std::size_t earlier = init != nullptr ? init->trees().size() : 0;  // a warm start's
  const auto kept = static_cast<int>((model->trees().size() - earlier) / model->num_outputs());
  out->result.stop_reason =
      forest         ? fmt::format("{} trees per output", rounds)
      : ran < rounds ? fmt::format("early stop after {} rounds: best round {}", ran, kept)
                     : fmt::format("{} rounds{}", rounds,
                                   kept < rounds ? fmt::format(" (best round {} kept)", kept) : "");
  if (leader) {
    ESCALA_LOG_INFO("model: {} ({})", model->Describe(), out->result.stop_reason);
    LogImportance(*model, pipeline.output_names());
  }
  if (has_valid) {
    MatrixF pred(e.xv.rows(), model->num_outputs());
    auto ws = model->NewWorkspace();
    model->Predict(valid.features, pred.view(), *ws);
    out->result.valid = EvaluateDistributed(task, std::as_const(pred).view(), e.yv, e.wv, comm);
  }
  out->has_validation = has_valid;
  FillBundle(spec, task, classes, pipeline, model, TrainOptions{}, comm.size(), out);
  out->bundle.training_config =
      TreesConfig(options, spec.model, task, objective, pipeline, comm.size());
  out->bundle.training_config["stop_reason"] = out->result.stop_reason;
  if (forest) {
    out->bundle.training_config["oob_" + oob.oob_metric] = fmt::format("{}", oob.oob_loss);
    out->bundle.training_config["oob_rows"] = std::to_string(oob.oob_rows);
  }
}

// Trains the spec's model on the encoded rows: the steps after the pipeline, whatever held the
// rows.
TrainOutcome TrainEncoded(const TrainSpec& spec, models::Task task,
                          const std::vector<std::string>& classes,
                          const features::Pipeline& pipeline, Encoded e, bool has_valid,
                          Communicator& comm) {
  const bool leader = comm.rank() == 0;
  TrainOutcome out;
  if (IsTrees(spec)) {
    TrainTrees(spec, task, classes, pipeline, e, has_valid, comm, &out);
    return out;
  }
  const TargetScaling target = StandardizeTarget(spec, task, comm, &e.y);
  models::ModelSpec mspec = ModelSpecFor(spec, task, pipeline, classes);
  // With weights, C = 1 is l2 = 1 / (the weight sum): the mean loss is over the weight sum.
  const double n =
      comm.AllReduceScalar(spec.weight.empty() ? static_cast<double>(e.y.size())
                                               : std::accumulate(e.w.begin(), e.w.end(), 0.0),
                           ReduceOp::kSum);
  TrainOptions o = OptionsFor(spec, n, pipeline, has_valid, leader);
  const DataShard train_shard = e.train();
  const DataShard valid_shard = e.valid();
  out.selection = Select(spec, train_shard, comm, &mspec, &o);
  std::shared_ptr<models::GradientModel> model = models::MakeModel(mspec);
  WarmStart(spec, *model, &o);
  if (task == models::Task::kRegression) model->SetTargetScaling(target.shift, target.scale);
  if (leader) ESCALA_LOG_INFO("model: {}", model->Describe());
  Trainer trainer(*model, o, comm);
  out.result = trainer.Fit(train_shard, has_valid ? &valid_shard : nullptr);
  out.has_validation = has_valid;
  FillBundle(spec, task, classes, pipeline, std::move(model), o, comm.size(), &out);
  return out;
}

// What TrainMatrix needs of its spec and shard.
void CheckMatrixShard(const TrainSpec& spec, const MatrixShard& m) {
  ESCALA_CHECK(!spec.drop_missing_labels, kInvalidArgument,
               "drop_missing_labels: a matrix trains on the rows it is given; drop them before");
  ESCALA_CHECK(spec.valid_fraction == 0, kInvalidArgument,
               "valid_fraction: a matrix trains on the rows it is given; hold rows out before, "
               "or give a validation table");
  ESCALA_CHECK(m.features.cols() == static_cast<std::int64_t>(m.feature_names.size()),
               kInvalidArgument, "feature_names: {} names for a matrix of {} columns",
               m.feature_names.size(), m.features.cols());
  ESCALA_CHECK(m.features.rows() == m.targets.num_rows(), kInvalidArgument,
               "targets: {} rows for a matrix of {} rows", m.targets.num_rows(), m.features.rows());
  std::set<std::string_view> seen;
  for (const auto& name : m.feature_names) {
    ESCALA_CHECK(seen.insert(name).second, kInvalidArgument,
                 "feature_names: '{}' names two columns", name);
    ESCALA_CHECK(name != spec.label && name != spec.weight, kInvalidArgument,
                 "feature_names: '{}' is the {} column, not a feature", name,
                 name == spec.label ? "label" : "weight");
  }
}

// True when the fitted pipeline outputs its numeric inputs as they are, in order.
bool PassesNumbersThrough(const features::Pipeline& p, const std::vector<std::string>& names) {
  if (p.output_names() != names || p.input_schema().num_fields() != p.num_outputs()) return false;
  const features::PipelinePlan plan = p.Plan();
  std::vector<int> input_of(plan.slots.size(), -1);
  for (const auto& op : plan.ops) {
    if (op.kind != features::PlanOp::Kind::kInputNum) return false;
    input_of[static_cast<std::size_t>(op.out)] = op.input;
  }
  for (std::size_t k = 0; k < plan.outputs.size(); ++k) {
    if (input_of[static_cast<std::size_t>(plan.outputs[k])] != static_cast<int>(k)) return false;
  }
  return true;
}

// Whether n floats are finite (NaN too, with keep_nan): one branch-free pass over their bits.
bool AllFinite(const float* v, std::int64_t n, bool keep_nan) {
  std::uint32_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(v[i]) & 0x7fffffffu;
    const bool nan = bits > 0x7f800000u;
    bad |= static_cast<std::uint32_t>(bits >= 0x7f800000u && !(keep_nan && nan));
  }
  return bad == 0;
}

// The pipeline of a matrix's columns: the warm start's, or the spec's fitted on their schema
// alone (a pipeline that passes numbers through reads no rows); refused unless it passes them
// through.
features::Pipeline MatrixPipeline(const TrainSpec& spec, const std::vector<std::string>& names,
                                  Communicator& comm) {
  features::Pipeline pipeline;
  if (spec.init_from != nullptr && !spec.refit_pipeline) {
    pipeline = spec.init_from->pipeline;
  } else {
    std::vector<data::Column> columns;
    for (const auto& name : names) columns.emplace_back(name, data::DataType::kFloat32, 0);
    const std::string text = PipelineSpec(spec);
    ESCALA_CHECK(text.empty() || text == kTreesPipeline, kInvalidArgument,
                 "pipeline '{}': a matrix trains with the empty pipeline (the flag's 'none': its "
                 "numbers as they are); give a table to fit this one",
                 spec.pipeline);
    pipeline = features::Pipeline::FromSpec(text);
    pipeline.Fit(data::Table(std::move(columns)), FitOptionsFor(spec, {}), comm);
  }
  ESCALA_CHECK(PassesNumbersThrough(pipeline, names), kInvalidArgument,
               "pipeline '{}' does not pass the matrix's columns through as they are; give a table",
               pipeline.spec());
  return pipeline;
}

// The pipeline's check of its output, on a matrix that is its own output: a NaN or infinite
// feature is refused, naming the first such row (NaN kept when the pipeline keeps missing values).
void CheckFeatures(ConstMatrixViewF x, const features::Pipeline& pipeline) {
  const bool keep_nan = pipeline.keep_missing();
  std::atomic<std::int64_t> first{x.rows()};
  ParallelFor(static_cast<std::size_t>(x.rows()), 4096, [&](std::size_t b, std::size_t e) {
    for (auto i = static_cast<std::int64_t>(b); i < static_cast<std::int64_t>(e); ++i) {
      if (i >= first.load(std::memory_order_relaxed)) return;
      if (!AllFinite(x.row(i), x.cols(), keep_nan)) [[unlikely]] {
        std::int64_t seen = first.load();
        while (i < seen && !first.compare_exchange_weak(seen, i)) {
        }
        return;
      }
    }
  });
  const std::int64_t r = first.load();
  if (r == x.rows()) return;
  const float* row = x.row(r);
  std::int64_t c = 0;
  while (AllFinite(row + c, 1, keep_nan)) ++c;
  Throw(ErrorCode::kInvalidArgument,
        "row {}: feature '{}' is {} after the pipeline; impute or clip its column (spec: {})", r,
        pipeline.output_names()[static_cast<std::size_t>(c)],
        std::isnan(row[c]) ? "missing (NaN)" : "infinite",
        pipeline.spec().empty() ? "<none>" : pipeline.spec());
}

// The labels and weights of rows whose features a caller holds.
Encoded EncodeTargets(const TrainSpec& spec, const features::Pipeline& pipeline, const Rows& rows,
                      const std::vector<std::string>& classes, Communicator& comm) {
  Encoded e;
  const data::Table& t = rows.chunks[0];
  e.y = EncodeLabels(t, spec.label, classes);
  e.w = ReadWeights(t, spec.weight, 0);
  if (rows.valid) EncodeValid(spec, pipeline, *rows.valid, classes, &e);
  if (!spec.weight.empty()) {
    CheckWeights(e.w, static_cast<std::int64_t>(e.y.size()), WeightsName(spec), comm);
  }
  const bool have_ids = t.row_ids().size() == static_cast<std::size_t>(t.num_rows());
  e.ids = DenseRowIds(have_ids ? t.row_ids() : std::span<const std::uint64_t>(), comm);
  return e;
}

}  // namespace

void Validate(const TrainSpec& s) {
  ESCALA_CHECK(!s.label.empty(), kInvalidArgument, "label is required");
  ESCALA_CHECK(s.weight != s.label, kInvalidArgument,
               "weight: the label column '{}' cannot be the weight column too", s.label);
  TrainParams().Check(s);
  CheckTreeSpec(s);
  if (IsTrees(s) && !s.search.empty()) {
    // Every value of the space, before any data is read.
    for (const auto& [key, values] : ParseSearchSpace(s.search, TreeSearchKeys()).params) {
      for (const auto& v : values) TrainParams().Check(WithCandidate(s, {{key, v}}));
    }
  }
  features::Pipeline::FromSpec(s.pipeline);  // the spec's syntax, before any data is read
}

TrainOutcome TrainTable(const TrainSpec& spec, data::Table table, std::optional<data::Table> valid,
                        Communicator& comm) {
  data::Schema schema = table.schema();
  std::vector<data::Table> chunks;
  chunks.push_back(std::move(table));
  return TrainChunks(spec, std::move(chunks), std::move(schema), std::move(valid), comm);
}

TrainOutcome TrainChunks(const TrainSpec& spec, std::vector<data::Table> chunks,
                         data::Schema schema, std::optional<data::Table> valid, Communicator& comm,
                         const data::Schema& declared) {
  Validate(spec);
  const bool leader = comm.rank() == 0;
  Rows rows{std::move(chunks), std::move(schema), std::move(valid)};
  PrepareRows(spec, &rows, comm);
  std::vector<std::string> classes;
  const models::Task task =
      ResolveTask(spec.model, spec.task, LabelTable(rows, spec.label), spec.label, comm, &classes);
  CheckWarmStartClasses(spec, classes);
  FaultPoint("pipeline_fit");  // tests of crash safety (escala/core/fault_injection.h)
  const features::Pipeline pipeline = FitPipeline(spec, rows, declared, comm);
  if (leader) ESCALA_LOG_INFO("{}", pipeline.Describe());
  Encoded e = Encode(spec, pipeline, &rows, classes, comm);
  return TrainEncoded(spec, task, classes, pipeline, std::move(e), rows.valid.has_value(), comm);
}

TrainOutcome TrainMatrix(const TrainSpec& spec, MatrixShard train, std::optional<data::Table> valid,
                         Communicator& comm) {
  Validate(spec);
  CheckMatrixShard(spec, train);
  data::Schema schema = train.targets.schema();
  Rows rows{{}, std::move(schema), std::move(valid)};
  rows.chunks.push_back(std::move(train.targets));
  PrepareRows(spec, &rows, comm);
  std::vector<std::string> classes;
  const models::Task task =
      ResolveTask(spec.model, spec.task, LabelTable(rows, spec.label), spec.label, comm, &classes);
  CheckWarmStartClasses(spec, classes);
  const features::Pipeline pipeline = MatrixPipeline(spec, train.feature_names, comm);
  CheckFeatures(train.features, pipeline);
  Encoded e = EncodeTargets(spec, pipeline, rows, classes, comm);
  e.given = train.features;
  return TrainEncoded(spec, task, classes, pipeline, std::move(e), rows.valid.has_value(), comm);
}

std::string StreamingRefusal(const TrainSpec& spec) {
  if (IsTrees(spec)) return "gbdt: trees train on the shard in memory";
  if (!spec.weight.empty()) return "weight: weighted training needs the shard in memory";
  if (spec.options.backend) {
    return "a GPU: streamed training runs on the CPU; give the GPU a shard in memory";
  }
  if (spec.cv != 0 || !spec.search.empty()) {
    return "cv / search: cross-validation needs the shard in memory; it cannot stream";
  }
  if (spec.valid_fraction != 0) {
    return "valid_fraction: streamed training holds no rows out; give a validation table";
  }
  return "";
}

data::StreamOptions StreamOptionsFor(const StreamSpec& stream) {
  data::StreamOptions o;
  o.block_bytes = std::max<std::size_t>(stream.memory_budget / 16, std::size_t{64} << 10);
  return o;
}

TrainOutcome TrainStreamed(const TrainSpec& spec, const data::Dataset& dataset, data::Shard shard,
                           std::optional<data::Table> valid, Communicator& comm,
                           const StreamSpec& stream) {
  Validate(spec);
  const std::string refusal = StreamingRefusal(spec);
  ESCALA_CHECK(refusal.empty(), kInvalidArgument, "{}", refusal);
  const bool leader = comm.rank() == 0;
  const data::StreamOptions so = StreamOptionsFor(stream);
  data::StreamedTable table(dataset, shard, so);
  LabelledRows labelled(table, spec.label);
  data::TableChunks& rows_in = spec.drop_missing_labels ? static_cast<data::TableChunks&>(labelled)
                                                        : static_cast<data::TableChunks&>(table);
  const LabelScan scan = ScanLabels(rows_in, spec.label);
  const auto rows = comm.AllReduceScalar<std::int64_t>(scan.rows, ReduceOp::kSum);
  ESCALA_CHECK(rows > 0, kInvalidArgument, "training data has no rows");
  LogDroppedLabels(spec, labelled.dropped(), comm);
  std::vector<std::string> classes;
  const models::Task task =
      ResolveTask(spec.model, spec.task, scan.distinct, spec.label, comm, &classes);
  CheckWarmStartClasses(spec, classes);
  FaultPoint("pipeline_fit");
  const features::Pipeline pipeline = FitPipeline(spec, rows_in, comm, dataset.schema());
  if (leader) ESCALA_LOG_INFO("{}", pipeline.Describe());
  if (valid && spec.drop_missing_labels) DropMissingLabels(spec.label, {&*valid, 1}, comm);
  Encoded e;
  if (valid) {
    pipeline.Transform(*valid, &e.xv);
    e.yv = EncodeLabels(*valid, spec.label, classes);
  }
  const TrainOptions o =
      OptionsFor(spec, static_cast<double>(rows), pipeline, valid.has_value(), leader);
  std::shared_ptr<models::GradientModel> model =
      models::MakeModel(ModelSpecFor(spec, task, pipeline, classes));
  TrainOptions fit_options = o;
  WarmStart(spec, *model, &fit_options);
  const TargetScaling target = StreamedTargetScaling(spec, task, scan, comm);
  if (task == models::Task::kRegression) model->SetTargetScaling(target.shift, target.scale);
  if (leader) {
    ESCALA_LOG_INFO("model: {} (streamed, {} KiB chunks)", model->Describe(), so.block_bytes >> 10);
  }
  DatasetChunks source(
      dataset, shard, pipeline,
      {spec.label, classes, so, spec.drop_missing_labels, target.shift, target.scale});
  const DataShard valid_shard{std::as_const(e.xv).view(), e.yv, {}};
  TrainOutcome out;
  Trainer trainer(*model, fit_options, comm);
  if (o.optimizer.name == "lbfgs") {
    out.result = trainer.FitFullBatch(source, valid ? &valid_shard : nullptr);
  } else {
    out.result = trainer.FitStreamed(source, scan.rows, valid ? &valid_shard : nullptr,
                                     BatchesFor(stream, pipeline));
  }
  out.has_validation = valid.has_value();
  FillBundle(spec, task, classes, pipeline, std::move(model), o, comm.size(), &out);
  return out;
}

}  // namespace escala::train
