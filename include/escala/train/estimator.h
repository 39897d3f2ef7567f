// Training from a table in one call: what `escala train` does, for C++ programs.
//
// TrainTable takes this rank's shard of a raw table (and optionally a validation table) and a
// TrainSpec, and returns a complete ModelBundle: it resolves the task and the classes from the
// label, fits the feature pipeline on all ranks' data, encodes the labels, holds out a
// validation split when asked, cross-validates or searches when asked, builds and trains the
// model (on any Communicator: size 1, threads, processes), and fills the bundle's metadata,
// metrics and history. The defaults are those of `escala train` (docs/training.md): they work on
// small tables as scikit-learn's do.
//
//   auto comm = escala::MakeSelfCommunicator();
//   escala::train::TrainSpec spec;
//   spec.label = "species";
//   spec.model = "mlp";
//   auto outcome = escala::train::TrainTable(spec, escala::data::ReadCsv("penguins.csv"),
//                                            std::nullopt, *comm);
//   outcome.bundle.Save("penguins.bundle");
//
// Every rank calls it with its shard and gets the same bundle. It logs what it decides (the
// defaults it applied, the pipeline, the model) on rank 0 and prints nothing.
#ifndef ESCALA_TRAIN_ESTIMATOR_H_
#define ESCALA_TRAIN_ESTIMATOR_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/dataset.h"
#include "escala/data/stream.h"
#include "escala/data/table.h"
#include "escala/io/bundle.h"
#include "escala/train/gbdt.h"
#include "escala/train/selection.h"
#include "escala/train/trainer.h"

namespace escala::train {

// The pipeline used when none is given: fill missing values, standardise numbers, one-hot
// categories (unseen categories at prediction time are ignored rather than rejected).
inline constexpr char kDefaultPipeline[] =
    "impute(median) | impute(most_frequent) | standardize | onehot(unknown=ignore)";
// The trees', when the default is left as it is: trees need neither imputed nor scaled numbers,
// and split categories natively: a missing number stays missing (the trees learn its direction),
// a category becomes its code (a category missing at fit time its own code; one unseen then, -1,
// goes the way of the categories not chosen).
inline constexpr char kTreesPipeline[] = "ordinal(unknown=use_value)";

struct TrainSpec {
  std::string label;  // required: the column to predict
  std::string name;   // the bundle's name
  // Sample weights: a numeric column of per-row weights (finite, >= 0, not all 0), which is not
  // a feature; empty: every row weighs 1. Every model honours them (DataShard::weights), as does
  // validation when the validation rows have the column; the pipeline is fitted unweighted.
  std::string weight;
  // The model: a registered kind (escala/models/factory.h) and, for an mlp, its task and shape.
  std::string model = "logistic";
  std::string task = "auto";  // auto, regression, binary, multiclass
  std::vector<std::int64_t> hidden = {256, 256};
  models::Activation activation = models::Activation::kReLU;
  float dropout = 0.0f;
  // gbdt and random_forest: the tree parameters (escala/train/gbdt.h). A random_forest takes
  // train::ForestDefaults for every option not named in trees_given (which the flag and config
  // parsers fill; a library caller adds the names of the options it sets).
  GbdtOptions trees;
  std::set<std::string> trees_given;
  // Trees: "feature=1,other=-1" by the pipeline's output feature names (escala info lists
  // them); replaces trees.monotone when not empty.
  std::string monotone_constraints;
  // The feature pipeline's spec (docs/features.md); empty: numeric columns as they are.
  std::string pipeline = kDefaultPipeline;
  // Rows whose label is missing are dropped (with a count in the log) rather than refused.
  bool drop_missing_labels = false;
  // Without a validation table: this fraction of rows is held out (by row id, seeded).
  double valid_fraction = 0.0;
  // Options whose defaults depend on the model and data when unset: optimizer (lbfgs for linear
  // models on the CPU, adam otherwise), lr (1e-3 for adam/adamw, 1e-2 otherwise), l2 (1/n for
  // linear models, scikit-learn's C=1), epochs (up to 200 with early stopping: patience 10,
  // min_delta 1e-4, as MLPClassifier's max_iter, n_iter_no_change and tol).
  std::optional<std::string> optimizer;
  std::optional<float> lr;
  std::optional<float> l2;
  std::optional<int> epochs;
  std::optional<int> early_stopping;  // patience
  // Everything else (batch size, l1, schedule, seed, metric, checkpoints, backend...). Its
  // optimizer name, lr, l2, epochs and patience are replaced by the fields above.
  TrainOptions options;
  // Model selection: k-fold cross-validation (cv >= 2) of the defaults or of a search space
  // ("lr=0.01,0.1 l2=0,1e-4"; search_samples > 0 draws that many at random instead of the grid).
  int cv = 0;
  std::string search;
  int search_samples = 0;
  // Warm start: the pipeline (unless refit_pipeline), classes, target scaling and weights of an
  // earlier bundle of the same model.
  const io::ModelBundle* init_from = nullptr;
  bool refit_pipeline = false;
};

// Throws kInvalidArgument naming the first bad field.
void Validate(const TrainSpec& spec);

struct TrainOutcome {
  io::ModelBundle bundle;  // complete on every rank; training_config records the options
  TrainResult result;
  std::optional<SelectionResult> selection;  // with cv or search
  bool has_validation = false;
};

// Trains on this rank's shard of `table` (and of `valid`, when given). Errors: kInvalidArgument
// for a spec or data that cannot train (naming the field, column or row), kFailedPrecondition
// for a warm start that does not match, and the trainer's and communicator's errors.
TrainOutcome TrainTable(const TrainSpec& spec, data::Table table, std::optional<data::Table> valid,
                        Communicator& comm);

// This rank's rows as one row-major float32 matrix of numeric features (numpy's, a
// data::DenseData's), with the label column — and the weight column when the spec names one — as
// a table of the same rows.
struct MatrixShard {
  ConstMatrixViewF features;               // viewed for the whole call, never copied
  std::vector<std::string> feature_names;  // one per column, distinct
  data::Table targets;
};

// Trains as TrainTable does on a table of the matrix's columns (float32 numbers) with the labels,
// without building that table: the matrix is the model's input as it is. So the pipeline must be
// one that only passes numbers through — the empty one (the flag's "none"), or for trees their
// default (which codes categories, and there are none) — and the rows are the ones given (no
// drop_missing_labels or valid_fraction: hold rows out before). The matrix is checked as the
// pipeline would (a NaN or infinite feature is refused naming its row and column; trees keep
// NaN). Errors: kInvalidArgument naming the field (a spec the matrix cannot train, mismatched
// sizes or names), otherwise as TrainTable.
TrainOutcome TrainMatrix(const TrainSpec& spec, MatrixShard train, std::optional<data::Table> valid,
                         Communicator& comm);

// Trains as TrainTable does on this rank's shard held as consecutive chunks of rows with the
// columns `schema` (what a DatasetStream returns, e.g. read with float32 numbers): the pipeline
// is fitted on the chunks and each chunk is transformed into the feature matrix and freed in
// turn, so that the peak memory is about the larger of the chunks and the matrix, not their sum.
// `declared`: the columns' declared types, when the chunks hold numbers narrower
// (features::FitOptions::declared). Errors as TrainTable; a transform or label error names the
// row within its chunk and the chunk's first row.
TrainOutcome TrainChunks(const TrainSpec& spec, std::vector<data::Table> chunks,
                         data::Schema schema, std::optional<data::Table> valid, Communicator& comm,
                         const data::Schema& declared = {});

// Training on data larger than memory (`escala train --memory-budget`).
struct StreamSpec {
  // Bytes a rank may use for data while training: the chunks of input in flight and their parsed
  // and transformed columns. The model, a validation table, the labels' distinct values and the
  // process's fixed overhead (libraries, thread stacks) come on top. Chunks are about 1/16 of it
  // in input bytes (at least 64 KiB; docs/training.md, "Data larger than memory").
  std::size_t memory_budget = std::size_t{256} << 20;
};

// Trains as TrainTable does on this rank's shard of a CSV or NPY `dataset`, streamed: the shard is
// never one table in memory. One pass reads the labels (task, classes, rows), the pipeline is
// fitted in passes over chunks (features::Pipeline::Fit on chunks), and L-BFGS makes one pass per
// objective evaluation (Trainer::FitFullBatch), each chunk parsed, transformed and freed in turn.
// The model is TrainTable's for the same rows, to rounding (quantile steps within their sketch's
// error). Only full-batch training streams: the linear kinds with their default optimizer (L-BFGS),
// and no cross-validation, search or valid_fraction (a `valid` table may be given); other specs are
// kInvalidArgument naming the field. Errors otherwise as TrainTable.
TrainOutcome TrainStreamed(const TrainSpec& spec, const data::Dataset& dataset, data::Shard shard,
                           std::optional<data::Table> valid, Communicator& comm,
                           const StreamSpec& stream = {});

// Empty when TrainStreamed can train `spec`; otherwise why not (naming the field).
std::string StreamingRefusal(const TrainSpec& spec);

// The stream options of a memory budget (chunk size), as TrainStreamed uses them.
data::StreamOptions StreamOptionsFor(const StreamSpec& stream);

}  // namespace escala::train

#endif  // ESCALA_TRAIN_ESTIMATOR_H_
