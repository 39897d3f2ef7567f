#include "escala/train/selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/random.h"
#include "escala/train/metrics.h"

namespace escala::train {

namespace {

const std::set<std::string>& Keys() {
  static const std::set<std::string> k = {"lr",       "l2",        "l1",         "weight_decay",
                                          "momentum", "optimizer", "batch_size", "epochs",
                                          "dropout",  "hidden",    "activation"};
  return k;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(Trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

double ToNumber(const std::string& key, const std::string& value) {
  try {
    std::size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  Throw(ErrorCode::kInvalidArgument, "search parameter {}: '{}' is not a number", key, value);
}

}  // namespace

SearchSpace ParseSearchSpace(std::string_view text) {
  return ParseSearchSpace(text, std::vector<std::string>(Keys().begin(), Keys().end()));
}

SearchSpace ParseSearchSpace(std::string_view text, const std::vector<std::string>& known) {
  SearchSpace space;
  for (const std::string& part : Split(text, ';')) {
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    ESCALA_CHECK(eq != std::string::npos, kInvalidArgument,
                 "search space '{}': '{}' is not key=v1,v2,...", text, part);
    const std::string key = Trim(std::string_view(part).substr(0, eq));
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const auto& k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
      Throw(ErrorCode::kInvalidArgument, "search space: unknown parameter '{}' (known: {})", key,
            list);
    }
    auto values = Split(std::string_view(part).substr(eq + 1), ',');
    values.erase(std::remove(values.begin(), values.end(), std::string()), values.end());
    ESCALA_CHECK(!values.empty(), kInvalidArgument, "search space: '{}' has no values", key);
    space.params.emplace_back(key, values);
  }
  ESCALA_CHECK(!space.params.empty(), kInvalidArgument, "search space '{}' is empty", text);
  return space;
}

std::vector<Candidate> GridCandidates(const SearchSpace& space) {
  std::vector<Candidate> out(1);
  for (const auto& [key, values] : space.params) {
    std::vector<Candidate> next;
    for (const auto& c : out) {
      for (const auto& v : values) {
        Candidate n = c;
        n[key] = v;
        next.push_back(n);
      }
    }
    out.swap(next);
  }
  return out;
}

std::vector<Candidate> RandomCandidates(const SearchSpace& space, int count, std::uint64_t seed) {
  auto all = GridCandidates(space);
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  if (count > 0 && static_cast<std::size_t>(count) < all.size())
    all.resize(static_cast<std::size_t>(count));
  return all;
}

void ApplyCandidate(const Candidate& c, models::ModelSpec* spec, TrainOptions* o) {
  for (const auto& [key, value] : c) {
    if (key == "lr") {
      o->optimizer.lr = static_cast<float>(ToNumber(key, value));
    } else if (key == "l2") {
      o->optimizer.l2 = static_cast<float>(ToNumber(key, value));
    } else if (key == "l1") {
      o->optimizer.l1 = static_cast<float>(ToNumber(key, value));
    } else if (key == "weight_decay") {
      o->optimizer.weight_decay = static_cast<float>(ToNumber(key, value));
    } else if (key == "momentum") {
      o->optimizer.momentum = static_cast<float>(ToNumber(key, value));
    } else if (key == "optimizer") {
      o->optimizer.name = value;
    } else if (key == "batch_size") {
      o->batch_size = static_cast<std::int64_t>(ToNumber(key, value));
    } else if (key == "epochs") {
      o->epochs = static_cast<int>(ToNumber(key, value));
    } else if (key == "dropout") {
      spec->dropout = static_cast<float>(ToNumber(key, value));
    } else if (key == "activation") {
      spec->activation = models::ParseActivation(value);
    } else if (key == "hidden") {
      spec->hidden.clear();
      for (const auto& h : Split(value, 'x')) {
        spec->hidden.push_back(static_cast<std::int64_t>(ToNumber(key, h)));
      }
    } else {
      Throw(ErrorCode::kInvalidArgument, "search parameter '{}' is not supported", key);
    }
  }
  Validate(*o);
}

std::vector<int> AssignFolds(std::span<const std::uint64_t> row_ids, std::span<const float> labels,
                             int k, bool stratify, std::uint64_t seed, int world_size) {
  ESCALA_CHECK(k >= 2, kInvalidArgument, "cross-validation needs >= 2 folds, got {}", k);
  const std::size_t n = row_ids.size();
  std::vector<int> fold(n);
  const std::uint64_t key = Mix64(seed ^ 0xf01d5);
  if (!stratify || world_size > 1) {
    // Hash assignment: identical for any number of workers (stratified only in expectation).
    for (std::size_t i = 0; i < n; ++i) {
      fold[i] = static_cast<int>(HashCombine(key, row_ids[i]) % static_cast<std::uint64_t>(k));
    }
    return fold;
  }
  // Exact stratification: within each class, order rows by hash and deal them out in turn.
  std::map<float, std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < n; ++i) by_class[labels[i]].push_back(i);
  for (auto& [label, rows] : by_class) {
    std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) {
      return HashCombine(key, row_ids[a]) < HashCombine(key, row_ids[b]);
    });
    for (std::size_t j = 0; j < rows.size(); ++j)
      fold[rows[j]] = static_cast<int>(j % static_cast<std::size_t>(k));
  }
  return fold;
}

namespace {

// Global row identities of this rank's rows: the shard's own, or rank-order positions.
std::vector<std::uint64_t> RowIds(const DataShard& data, Communicator& comm) {
  std::vector<std::uint64_t> ids(data.row_ids.begin(), data.row_ids.end());
  if (!ids.empty()) return ids;
  const auto n = static_cast<std::int64_t>(data.rows());
  const auto counts = comm.AllGather(std::span<const std::int64_t>(&n, 1));
  std::uint64_t offset = 0;
  for (int r = 0; r < comm.rank(); ++r) offset += static_cast<std::uint64_t>(counts[r]);
  ids.resize(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), offset);
  return ids;
}

// Dense copies of the rows of one side of a fold, with their labels and identities.
struct FoldPart {
  MatrixF x;
  std::vector<float> y;
  std::vector<std::uint64_t> ids;
  std::vector<float> w;  // the rows' weights, when the data has weights
  DataShard shard() const { return {std::as_const(x).view(), y, ids, w}; }
};

FoldPart TakeRows(const DataShard& data, const std::vector<std::uint64_t>& ids,
                  const std::vector<int>& folds, int fold, bool inside) {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < folds.size(); ++i) {
    if ((folds[i] == fold) == inside) rows.push_back(i);
  }
  const std::int64_t d = data.features.cols();
  FoldPart p;
  p.x.Resize(static_cast<std::int64_t>(rows.size()), d);
  for (std::size_t j = 0; j < rows.size(); ++j) {
    std::copy_n(data.features.row(static_cast<std::int64_t>(rows[j])), d,
                p.x.row(static_cast<std::int64_t>(j)));
    p.y.push_back(data.labels[rows[j]]);
    p.ids.push_back(ids[rows[j]]);
    if (data.weighted()) p.w.push_back(data.weights[rows[j]]);
  }
  return p;
}

void Summarize(CandidateResult* cr, const std::string& metric, Communicator& comm) {
  double s = 0;
  for (double v : cr->fold_scores) s += v;
  const auto n = static_cast<double>(cr->fold_scores.size());
  cr->mean = s / n;
  double ss = 0;
  for (double v : cr->fold_scores) ss += (v - cr->mean) * (v - cr->mean);
  cr->stddev = n > 1 ? std::sqrt(ss / (n - 1)) : 0;
  if (comm.rank() != 0) return;
  std::string desc;
  for (const auto& [k, v] : cr->params)
    desc += fmt::format("{}{}={}", desc.empty() ? "" : " ", k, v);
  ESCALA_LOG_INFO("cv {}: {} {:.5f} +/- {:.5f}", desc, metric, cr->mean, cr->stddev);
}

int Best(const std::vector<CandidateResult>& candidates, bool higher) {
  int best = -1;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const double v = candidates[i].mean;
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    const double b = candidates[static_cast<std::size_t>(best)].mean;
    if (std::isnan(b) || (higher ? v > b : v < b)) best = static_cast<int>(i);
  }
  return best;
}

}  // namespace

SelectionResult CrossValidateWith(models::Task task, const std::vector<Candidate>& candidates,
                                  const DataShard& data, const SelectionOptions& options,
                                  Communicator& comm, const FoldScoreFn& score) {
  ESCALA_CHECK(!candidates.empty(), kInvalidArgument, "no candidates to cross-validate");
  SelectionResult result;
  result.metric = options.metric.empty() ? DefaultMetric(task) : options.metric;
  CheckMetric(task, result.metric);
  const auto rows = comm.AllReduceScalar<std::int64_t>(data.rows(), ReduceOp::kSum);
  ESCALA_CHECK(options.folds >= 2 && options.folds <= rows, kInvalidArgument,
               "cross-validation folds (--cv) must be in [2, {}] (the number of rows), got {}",
               rows, options.folds);
  const std::vector<std::uint64_t> ids = RowIds(data, comm);
  const auto folds = AssignFolds(ids, data.labels, options.folds, task != models::Task::kRegression,
                                 options.seed, comm.size());
  for (const auto& cand : candidates) {
    CandidateResult cr;
    cr.params = cand;
    for (int f = 0; f < options.folds; ++f) {
      const FoldPart train = TakeRows(data, ids, folds, f, false);
      const FoldPart valid = TakeRows(data, ids, folds, f, true);
      cr.fold_scores.push_back(score(cand, train.shard(), valid.shard(), result.metric));
    }
    Summarize(&cr, result.metric, comm);
    result.candidates.push_back(cr);
  }
  result.best = Best(result.candidates, HigherIsBetter(result.metric));
  return result;
}

SelectionResult CrossValidate(const models::ModelSpec& base_spec, const TrainOptions& base_options,
                              const std::vector<Candidate>& candidates, const DataShard& data,
                              const SelectionOptions& options, Communicator& comm) {
  const auto score = [&](const Candidate& cand, const DataShard& train, const DataShard& valid,
                         const std::string& metric) {
    models::ModelSpec spec = base_spec;
    TrainOptions o = base_options;
    ApplyCandidate(cand, &spec, &o);
    o.checkpoint = {};
    o.early_stopping.patience = 0;
    o.progress = false;
    auto model = models::MakeModel(spec);
    Trainer trainer(*model, o, comm);
    // The fold's training rows are numbered by the trainer in rank order (dense identities).
    const DataShard v{valid.features, valid.labels, {}, valid.weights};
    const TrainResult r = trainer.Fit({train.features, train.labels, {}, train.weights}, &v);
    return r.valid.at(metric);
  };
  return CrossValidateWith(models::TaskForKind(base_spec.kind, base_spec.task), candidates, data,
                           options, comm, score);
}

}  // namespace escala::train
