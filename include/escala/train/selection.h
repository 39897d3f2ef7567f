// Model selection: k-fold cross-validation (stratified for classification) and grid or random
// search over hyperparameters, choosing by a named validation metric and refitting the best
// candidate on all the training data.
//
// A search space is written 'lr=1e-3,1e-2;l2=0,1e-4;hidden=64,128x128': ';' between parameters,
// ',' between values, 'x' between the layer widths of one hidden value. Keys: lr, l2, l1,
// weight_decay, momentum, optimizer, batch_size, epochs, dropout, hidden, activation.
//
// Folds are assigned from a hash of each row's global identity, so every worker agrees on them
// without communication and the assignment does not depend on the number of workers; in a
// single process classification folds are also exactly stratified (each class is spread evenly).
#ifndef ESCALA_TRAIN_SELECTION_H_
#define ESCALA_TRAIN_SELECTION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/models/factory.h"
#include "escala/train/trainer.h"

namespace escala::train {

using Candidate = std::map<std::string, std::string>;

struct SearchSpace {
  std::vector<std::pair<std::string, std::vector<std::string>>> params;
};

// Throws kInvalidArgument for unknown keys or malformed text.
SearchSpace ParseSearchSpace(std::string_view text);
// The same over another model family's keys (trees: their declared parameter names).
SearchSpace ParseSearchSpace(std::string_view text, const std::vector<std::string>& known);
// Every combination, in a stable order.
std::vector<Candidate> GridCandidates(const SearchSpace& space);
// `count` combinations drawn without replacement (all of them if there are fewer).
std::vector<Candidate> RandomCandidates(const SearchSpace& space, int count, std::uint64_t seed);

// Applies one hyperparameter to a model spec and training options. Throws kInvalidArgument
// naming the key and value.
void ApplyCandidate(const Candidate& candidate, models::ModelSpec* spec, TrainOptions* options);

// Fold index (0..k-1) of each local row. Stratified by label when `stratify` (classification).
std::vector<int> AssignFolds(std::span<const std::uint64_t> row_ids, std::span<const float> labels,
                             int k, bool stratify, std::uint64_t seed, int world_size);

struct CandidateResult {
  Candidate params;
  std::vector<double> fold_scores;
  double mean = 0;
  double stddev = 0;
};

struct SelectionResult {
  std::vector<CandidateResult> candidates;
  int best = -1;
  std::string metric;
};

struct SelectionOptions {
  int folds = 5;
  std::string metric;  // empty: DefaultMetric(task)
  std::uint64_t seed = 42;
};

// Fits one candidate on a fold's training rows and returns its `metric` on the fold's validation
// rows (every rank the same value: a collective).
using FoldScoreFn = std::function<double(const Candidate& candidate, const DataShard& train,
                                         const DataShard& valid, const std::string& metric)>;

// Cross-validates every candidate with `score` on `data` (this rank's shard, dense): the folds,
// their scores, mean and spread, and the best candidate by the metric (options.metric, or the
// task's default). Every rank must call it with the same candidates. Each fold's shards carry the
// rows' global identities.
SelectionResult CrossValidateWith(models::Task task, const std::vector<Candidate>& candidates,
                                  const DataShard& data, const SelectionOptions& options,
                                  Communicator& comm, const FoldScoreFn& score);

// Cross-validates every candidate on `data` (this rank's shard, dense), returning the scores and
// the best candidate by the metric. Every rank must call it with the same candidates.
SelectionResult CrossValidate(const models::ModelSpec& base_spec, const TrainOptions& base_options,
                              const std::vector<Candidate>& candidates, const DataShard& data,
                              const SelectionOptions& options, Communicator& comm);

}  // namespace escala::train

#endif  // ESCALA_TRAIN_SELECTION_H_
