#include "escala/train/params.h"

#include "escala/models/factory.h"
#include "escala/models/model.h"

namespace escala::train {

namespace {

using param::Above;
using param::AtLeast;
using param::HalfOpen;

using P = Param<TrainSpec>;
std::vector<std::string> Tasks() {
  return {"auto", "regression", "binary", "multiclass"};
}
std::vector<std::string> Optimizers() {
  return {"sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs"};
}
// In (0, 1]: a share of rows or features.
param::Range Fraction() {
  return param::Custom("in (0, 1]", [](double v) { return v > 0 && v <= 1; });
}
std::vector<std::string> Objectives() {
  return {"auto", "squared_error", "absolute_error", "huber", "poisson", "logistic", "softmax"};
}
std::vector<std::string> Schedules() {
  return {"constant", "step", "cosine", "linear"};
}

// The activation is an enum: read and shown by name.
P ActivationParam() {
  P p;
  p.info = {"activation",
            ParamType::kString,
            "relu",
            "one of: relu, tanh, sigmoid, gelu",
            "MLP hidden-layer activation",
            "model"};
  p.set = [](TrainSpec& s, std::string_view v) {
    ESCALA_CHECK(v == "relu" || v == "tanh" || v == "sigmoid" || v == "gelu", kInvalidArgument,
                 "'{}' is not one of relu, tanh, sigmoid, gelu", v);
    s.activation = models::ParseActivation(v);
  };
  p.get = [](const TrainSpec& s) { return std::string(models::ActivationName(s.activation)); };
  return p;
}

// "none": numeric columns as they are (an empty spec).
P PipelineParam() {
  P p = param::Text<TrainSpec>(
      "pipeline", "data",
      "Feature pipeline spec (docs/features.md), or 'none' for numeric columns as they are (trees "
      "replace the default by ordinal(unknown=use_value), split categories natively and keep "
      "missing values)",
      [](auto& s) -> auto& { return s.pipeline; });
  p.set = [](TrainSpec& s, std::string_view v) { s.pipeline = v == "none" ? "" : std::string(v); };
  return p;
}

// The bucket size is stated in KiB.
P BucketParam() {
  P p;
  p.info = {"bucket_kb",
            ParamType::kInt,
            "",
            ">= 0",
            "Distributed training: all-reduce gradients in buckets of this many KiB, overlapped "
            "with the backward pass (0: one all-reduce per step)",
            "distributed"};
  p.set = [](TrainSpec& s, std::string_view v) {
    s.options.bucket_bytes = static_cast<std::size_t>(param::ReadInt(v, 0, std::int64_t{1} << 40))
                             << 10;
  };
  p.get = [](const TrainSpec& s) { return std::to_string(s.options.bucket_bytes >> 10); };
  p.info.default_text = p.get(TrainSpec{});
  return p;
}

std::vector<P> ModelParams() {
  return {
      param::Text<TrainSpec>(
          "model", "model", "The model family", [](auto& s) -> auto& { return s.model; },
          models::ModelKinds),
      param::Text<TrainSpec>(
          "task", "model", "For mlp and gbdt: the task (auto: from the label's values)",
          [](auto& s) -> auto& { return s.task; }, Tasks),
      param::IntList<TrainSpec>(
          "hidden", "model", "MLP hidden-layer widths", [](auto& s) -> auto& { return s.hidden; }),
      ActivationParam(),
      param::Number<TrainSpec>(
          "dropout", "model", "MLP dropout rate", [](auto& s) -> auto& { return s.dropout; },
          HalfOpen(0, 1)),
  };
}

std::vector<P> TreeParams() {
  return {
      param::Number<TrainSpec>(
          "rounds", "trees", "gbdt: boosting rounds (trees per output)",
          [](auto& s) -> auto& { return s.trees.rounds; }, AtLeast(1)),
      param::Number<TrainSpec>(
          "max_depth", "trees", "gbdt: depth of each tree",
          [](auto& s) -> auto& { return s.trees.max_depth; },
          param::Custom("an integer in [1, 30]", [](double v) { return v >= 1 && v <= 30; })),
      param::Number<TrainSpec>(
          "max_leaves", "trees",
          "gbdt: 0 grows depth-wise; otherwise leaf-wise (the best split first) up to this many "
          "leaves (num_leaves), within max_depth",
          [](auto& s) -> auto& { return s.trees.max_leaves; },
          param::Custom("0 or an integer in [2, 1048576]",
                        [](double v) { return v == 0 || (v >= 2 && v <= (1 << 20)); })),
      param::Number<TrainSpec>(
          "learning_rate", "trees", "gbdt: shrinkage of each tree's leaf values (eta)",
          [](auto& s) -> auto& { return s.trees.learning_rate; },
          param::Custom("in (0, 1]", [](double v) { return v > 0 && v <= 1; })),
      param::Number<TrainSpec>(
          "max_bin", "trees",
          "gbdt: value bins per feature, from quantiles of a row sample (up to 255: one byte per "
          "value)",
          [](auto& s) -> auto& { return s.trees.max_bin; },
          param::Custom("an integer in [2, 65534]", [](double v) { return v >= 2 && v <= 65534; })),
      param::Number<TrainSpec>(
          "lambda", "trees", "gbdt: L2 penalty on leaf values (reg_lambda)",
          [](auto& s) -> auto& { return s.trees.lambda; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "alpha", "trees", "gbdt: L1 penalty on leaf values (reg_alpha)",
          [](auto& s) -> auto& { return s.trees.alpha; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "gamma", "trees", "gbdt: smallest loss reduction that makes a split (min_split_gain)",
          [](auto& s) -> auto& { return s.trees.gamma; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "min_child_weight", "trees", "gbdt: smallest hessian sum in a child",
          [](auto& s) -> auto& { return s.trees.min_child_weight; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "min_data_in_leaf", "trees",
          "gbdt: smallest row count in a child (estimated from its hessian share)",
          [](auto& s) -> auto& { return s.trees.min_data_in_leaf; }, AtLeast(0)),
      param::Text<TrainSpec>(
          "objective", "trees",
          "gbdt: the loss (auto: squared_error, logistic or softmax by task; absolute_error, huber "
          "and poisson for regression, absolute_error refitting leaves to residual medians, "
          "poisson predicting exp(score))",
          [](auto& s) -> auto& { return s.trees.objective; }, Objectives),
      param::Number<TrainSpec>(
          "huber_delta", "trees", "gbdt: huber residuals beyond this count linearly (label units)",
          [](auto& s) -> auto& { return s.trees.huber_delta; }, Above(0)),
      param::Number<TrainSpec>(
          "subsample", "trees",
          "gbdt: fraction of the rows each tree sees (by row identity and round)",
          [](auto& s) -> auto& { return s.trees.subsample; }, Fraction()),
      param::Number<TrainSpec>(
          "colsample_bytree", "trees", "gbdt: fraction of the features each tree sees",
          [](auto& s) -> auto& { return s.trees.colsample_bytree; }, Fraction()),
      param::Number<TrainSpec>(
          "colsample_bynode", "trees", "gbdt: fraction of the tree's features each node sees",
          [](auto& s) -> auto& { return s.trees.colsample_bynode; }, Fraction()),
      param::Number<TrainSpec>(
          "max_cat_to_onehot", "trees",
          "gbdt: a node with at most this many categories splits one against the rest, with more "
          "by the best partition",
          [](auto& s) -> auto& { return s.trees.max_cat_to_onehot; }, AtLeast(1)),
      param::Text<TrainSpec>(
          "monotone_constraints", "trees",
          "gbdt: 'feature=1,other=-1': the prediction only increases (1) or decreases (-1) with "
          "these features (names after the pipeline)",
          [](auto& s) -> auto& { return s.monotone_constraints; }),
  };
}

std::vector<P> DataParams() {
  return {
      param::Text<TrainSpec>(
          "label", "data", "The column to predict", [](auto& s) -> auto& { return s.label; },
          nullptr, "(required)"),
      param::Text<TrainSpec>(
          "weight", "data",
          "A numeric column of per-row sample weights (finite, >= 0; not a feature): each row's "
          "loss and gradient count that many times (empty: every row weighs 1)",
          [](auto& s) -> auto& { return s.weight; }),
      PipelineParam(),
      param::Number<TrainSpec>(
          "valid_fraction", "data",
          "Hold out this fraction of the training rows for validation (by row identity: the same "
          "split for any number of workers)",
          [](auto& s) -> auto& { return s.valid_fraction; }, HalfOpen(0, 1)),
      param::Flag<TrainSpec>(
          "drop_missing_labels", "data",
          "Drop rows whose label is missing (otherwise they are an error)",
          [](auto& s) -> auto& { return s.drop_missing_labels; }),
      param::Text<TrainSpec>(
          "name", "data", "The model's name, stored in the bundle",
          [](auto& s) -> auto& { return s.name; }),
  };
}

std::vector<P> OptimizerParams() {
  return {
      param::Text<TrainSpec>(
          "optimizer", "optimizer", "The optimizer", [](auto& s) -> auto& { return s.optimizer; },
          Optimizers, "lbfgs for linear models on the CPU, adam otherwise"),
      param::Number<TrainSpec>(
          "lr", "optimizer", "Learning rate", [](auto& s) -> auto& { return s.lr; }, Above(0),
          "1e-3 for adam/adamw, 1e-2 otherwise"),
      param::Number<TrainSpec>(
          "l2", "optimizer", "L2 penalty on the mean loss", [](auto& s) -> auto& { return s.l2; },
          AtLeast(0), "1/n for linear models (scikit-learn's C=1), 0 for mlp"),
      param::Number<TrainSpec>(
          "l1", "optimizer", "L1 penalty (OWL-QN with lbfgs, proximal steps otherwise)",
          [](auto& s) -> auto& { return s.options.optimizer.l1; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "weight_decay", "optimizer", "Decoupled weight decay (adamw)",
          [](auto& s) -> auto& { return s.options.optimizer.weight_decay; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "momentum", "optimizer", "Momentum (momentum, nesterov)",
          [](auto& s) -> auto& { return s.options.optimizer.momentum; }, HalfOpen(0, 1)),
      param::Number<TrainSpec>(
          "batch_size", "optimizer", "Global batch size, over all workers",
          [](auto& s) -> auto& { return s.options.batch_size; }, AtLeast(1)),
      param::Text<TrainSpec>(
          "schedule", "optimizer", "Learning-rate schedule",
          [](auto& s) -> auto& { return s.options.schedule.name; }, Schedules),
      param::Number<TrainSpec>(
          "warmup_steps", "optimizer", "Linear learning-rate warm-up steps",
          [](auto& s) -> auto& { return s.options.schedule.warmup_steps; }),
      param::Number<TrainSpec>(
          "clip_norm", "optimizer", "Clip the gradient to this global L2 norm (0: off)",
          [](auto& s) -> auto& { return s.options.clip_norm; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "lbfgs_iterations", "optimizer", "L-BFGS iteration limit",
          [](auto& s) -> auto& { return s.options.lbfgs_max_iterations; }, AtLeast(1)),
      param::Number<TrainSpec>(
          "tol", "optimizer",
          "L-BFGS stops when the largest gradient component is at most tol x max(1, |objective|)",
          [](auto& s) -> auto& { return s.options.lbfgs_tolerance; }, AtLeast(0)),
      param::Number<TrainSpec>(
          "seed", "optimizer", "Random seed (initialisation, shuffling)",
          [](auto& s) -> auto& { return s.options.seed; }),
  };
}

std::vector<P> StoppingParams() {
  return {
      param::Number<TrainSpec>(
          "epochs", "stopping", "Epochs of minibatch optimizers",
          [](auto& s) -> auto& { return s.epochs; }, AtLeast(1),
          "at most 200, with early stopping (patience 10, min_delta 1e-4)"),
      param::Number<TrainSpec>(
          "early_stopping", "stopping",
          "Stop after this many epochs without improvement of the metric (0: off)",
          [](auto& s) -> auto& { return s.early_stopping; }, AtLeast(0),
          "10 when epochs is not given, else 0"),
      param::Number<TrainSpec>(
          "min_delta", "stopping", "Smallest improvement that counts",
          [](auto& s) -> auto& { return s.options.early_stopping.min_delta; }, AtLeast(0)),
      param::Text<TrainSpec>(
          "metric", "stopping", "Validation metric monitored for early stopping and selection",
          [](auto& s) -> auto& { return s.options.metric; }, nullptr,
          "logloss, or rmse for regression"),
  };
}

std::vector<P> SelectionParams() {
  return {
      param::Number<TrainSpec>(
          "cv", "selection", "k-fold cross-validation before the final fit",
          [](auto& s) -> auto& { return s.cv; },
          param::Custom("0 (off) or at least 2 folds", [](double v) { return v == 0 || v >= 2; })),
      param::Text<TrainSpec>(
          "search", "selection",
          "Hyperparameter search space, e.g. 'lr=1e-3,1e-2;l2=0,1e-4' (grid); for trees their "
          "parameters, e.g. 'max_depth=4,6;learning_rate=0.1,0.3'",
          [](auto& s) -> auto& { return s.search; }),
      param::Number<TrainSpec>(
          "search_samples", "selection",
          "Random search: try this many points of the space instead of the whole grid",
          [](auto& s) -> auto& { return s.search_samples; }, AtLeast(0)),
  };
}

std::vector<P> RunParams() {
  return {
      param::Text<TrainSpec>(
          "checkpoint_dir", "checkpoints", "Write checkpoints here",
          [](auto& s) -> auto& { return s.options.checkpoint.dir; }),
      param::Number<TrainSpec>(
          "checkpoint_every_steps", "checkpoints",
          "Also checkpoint every N steps (0: at epoch ends only)",
          [](auto& s) -> auto& { return s.options.checkpoint.every_steps; }, AtLeast(0)),
      param::Flag<TrainSpec>(
          "resume", "checkpoints", "Continue from the checkpoint in checkpoint_dir",
          [](auto& s) -> auto& { return s.options.checkpoint.resume; }),
      param::Flag<TrainSpec>(
          "refit_pipeline", "checkpoints", "With a warm start: refit the pipeline on this data",
          [](auto& s) -> auto& { return s.refit_pipeline; }),
      BucketParam(),
  };
}

// Tree parameters record that they were given: a random forest keeps its own defaults for the
// others.
std::vector<P> RecordedTreeParams() {
  std::vector<P> params = TreeParams();
  for (P& p : params) {
    p.set = [set = p.set, name = p.info.name](TrainSpec& s, std::string_view v) {
      set(s, v);
      s.trees_given.insert(name);
    };
  }
  return params;
}

ParamTable<TrainSpec> Build() {
  std::vector<P> all;
  for (auto part : {DataParams(), ModelParams(), RecordedTreeParams(), OptimizerParams(),
                    StoppingParams(), SelectionParams(), RunParams()}) {
    for (auto& p : part) all.push_back(std::move(p));
  }
  return ParamTable<TrainSpec>(std::move(all));
}

}  // namespace

const ParamTable<TrainSpec>& TrainParams() {
  static const ParamTable<TrainSpec> table = Build();
  return table;
}

}  // namespace escala::train
