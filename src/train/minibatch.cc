#include "train/minibatch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/progress.h"
#include "escala/core/random.h"
#include "escala/models/factory.h"
#include "train/checkpoint.h"
#include "train/cpu_backend.h"
#include "train/early_stopping.h"

namespace escala::train {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A finite loss diverges too: no sane run's epoch loss is this many times its loss at the start.
constexpr double kDivergenceFactor = 1e4;

// Metrics logged as "accuracy 0.8712  logloss 0.3012".
std::string MetricsLine(const std::map<std::string, double>& values) {
  Metrics m;
  m.values = values;
  return m.ToString();
}

class MinibatchLoop {
 public:
  explicit MinibatchLoop(const MinibatchInputs& in);
  TrainResult Run();

 private:
  void Resume();
  void StartBackend();
  void OrderEpoch();
  void RunEpoch();
  void Step(std::uint64_t j);
  // The epoch's record, validation and early stopping; true when training should stop.
  bool EndEpoch(Clock::time_point epoch_start, std::uint64_t step_at_start);
  void CheckDivergence(const io::EpochRecord& rec);
  void LogEpoch(const io::EpochRecord& rec) const;
  void SaveCheckpoint(int epoch, std::int64_t next_batch);
  void SyncHost(bool with_optimizer_state);
  // A summed (weighted) loss over `rows` rows per unit of weight.
  double MeanLoss(double sum, std::int64_t rows) const {
    return sum / (static_cast<double>(rows) * in_.mean_weight);
  }
  TrainResult Finish(Clock::time_point start);

  const MinibatchInputs& in_;
  const TrainOptions& o_;
  Communicator& comm_;
  std::span<float> params_;
  std::uint64_t batch_ = 0, num_batches_ = 0, total_steps_ = 0;
  Checkpointer checkpointer_;
  EarlyStopping early_;
  std::unique_ptr<TrainBackend> backend_;
  std::vector<std::vector<float>> optimizer_state_;  // restored, or synced for a checkpoint
  std::uint64_t optimizer_steps_ = 0;
  std::optional<ProgressReporter> progress_;
  bool show_progress_ = false;

  // Where the loop stands (what a checkpoint restores).
  int epoch_ = 0;
  std::int64_t next_batch_ = 0;
  std::uint64_t step_ = 0;
  double epoch_loss_sum_ = 0;
  std::int64_t epoch_loss_count_ = 0;
  std::vector<float> best_params_;
  std::vector<io::EpochRecord> history_;
  bool resumed_ = false, early_stopped_ = false;
  double start_loss_ = std::nan("");  // the first step's mean loss in this run
  float lr_ = 0;
  Metrics last_valid_;  // the last epoch's validation metrics

  // This rank's rows in the epoch's global order, and where each batch begins in it.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> order_;
  std::vector<std::uint32_t> epoch_rows_;
  std::vector<std::size_t> batch_begin_;
};

MinibatchLoop::MinibatchLoop(const MinibatchInputs& in)
    : in_(in),
      o_(in.options),
      comm_(in.comm),
      params_(in.model.parameters()),
      checkpointer_(in.options.checkpoint, Fingerprint(in.options, in.model, in.global_rows),
                    in.comm),
      early_(in.options.early_stopping, in.valid != nullptr && HigherIsBetter(in.options.metric)) {
  batch_ = static_cast<std::uint64_t>(o_.batch_size);
  num_batches_ = o_.drop_last ? in.global_rows / batch_ : (in.global_rows + batch_ - 1) / batch_;
  if (in.feed != nullptr) num_batches_ = in.feed->batches_per_epoch();
  ESCALA_CHECK(num_batches_ > 0, kInvalidArgument,
               "no complete batch: {} rows in all, batch size {}{}", in.global_rows, batch_,
               o_.drop_last ? " with drop_last" : "");
  total_steps_ = num_batches_ * static_cast<std::uint64_t>(o_.epochs);
  lr_ = o_.optimizer.lr;
}

void MinibatchLoop::Resume() {
  auto ck = checkpointer_.LoadForResume(params_.size());
  if (!ck) return;
  const auto restored = models::ParseGradientModel(ck->model);
  std::copy(restored->parameters().begin(), restored->parameters().end(), params_.begin());
  optimizer_state_ = std::move(ck->optimizer_state);
  optimizer_steps_ = ck->optimizer_steps;
  epoch_ = ck->epoch;
  next_batch_ = ck->next_batch;
  step_ = ck->global_step;
  epoch_loss_sum_ = ck->epoch_loss_sum;
  epoch_loss_count_ = ck->epoch_loss_count;
  early_.Restore(ck->best_metric, ck->best_epoch, ck->epochs_without_improvement);
  best_params_ = std::move(ck->best_parameters);
  history_ = std::move(ck->history);
  resumed_ = true;
  if (comm_.rank() == 0) {
    ESCALA_LOG_INFO("resuming from {} at epoch {}, batch {} (step {})", checkpointer_.path(),
                    epoch_ + 1, next_batch_, step_);
  }
}

void MinibatchLoop::StartBackend() {
  backend_ = o_.backend ? o_.backend() : MakeCpuBackend(in_.model, in_.threads);
  BackendSetup setup;
  setup.model = &in_.model;
  setup.optimizer = o_.optimizer;
  setup.clip_norm = o_.clip_norm;
  setup.features = in_.train.features;
  setup.labels = in_.train.labels;
  setup.row_ids = in_.row_ids;
  setup.weights = in_.train.weights;
  setup.mean_weight = in_.mean_weight;
  setup.max_batch_rows =
      static_cast<std::int64_t>(std::min<std::uint64_t>(batch_, in_.train.features.rows()));
  if (in_.feed != nullptr) {
    setup.features = in_.feed->features();
    setup.labels = in_.feed->labels();
    setup.row_ids = in_.feed->row_ids();
    setup.max_batch_rows = in_.feed->max_batch_rows();
  }
  setup.comm = &comm_;
  setup.bucket_bytes = o_.bucket_bytes;
  setup.optimizer_state = std::move(optimizer_state_);
  setup.optimizer_steps = optimizer_steps_;
  optimizer_state_.clear();
  backend_->Start(setup);
  if (o_.backend && comm_.rank() == 0) ESCALA_LOG_INFO("training on {}", backend_->Describe());
}

// The backend holds the current parameters (and optimizer state); copies them to the host
// before anything reads them.
void MinibatchLoop::SyncHost(bool with_optimizer_state) {
  optimizer_steps_ = backend_->Sync(params_, with_optimizer_state ? &optimizer_state_ : nullptr);
}

// Places this rank's rows in the epoch's global order (a keyed permutation of global row ids)
// and finds where each global batch begins among them.
void MinibatchLoop::OrderEpoch() {
  const std::size_t n = order_.size();
  const RandomPermutation perm(in_.global_rows,
                               HashCombine(o_.seed, static_cast<std::uint64_t>(epoch_)));
  for (std::size_t i = 0; i < n; ++i) {
    order_[i] = {perm.Map(in_.row_ids[i]), static_cast<std::uint32_t>(i)};
  }
  std::sort(order_.begin(), order_.end());
  for (std::size_t i = 0; i < n; ++i) epoch_rows_[i] = order_[i].second;
  std::size_t pos = 0;
  for (std::uint64_t j = 0; j <= num_batches_; ++j) {
    while (pos < n && order_[pos].first < j * batch_) ++pos;
    batch_begin_[j] = pos;
  }
}

void MinibatchLoop::Step(std::uint64_t j) {
  const std::span<const std::uint32_t> rows(epoch_rows_);
  std::uint64_t global_count = std::min(batch_, in_.global_rows - j * batch_);
  lr_ = ScheduledLr(o_.schedule, o_.optimizer.lr, step_, total_steps_);
  BackendBatch bb;
  if (in_.feed != nullptr) {
    const auto [local, global] = in_.feed->Next(j);
    bb.rows = rows.first(static_cast<std::size_t>(local));  // the staging rows, in order
    global_count = global;
  } else {
    bb.rows = rows.subspan(batch_begin_[j], batch_begin_[j + 1] - batch_begin_[j]);
    if (j + 1 < num_batches_) {
      bb.next_rows = rows.subspan(batch_begin_[j + 1], batch_begin_[j + 2] - batch_begin_[j + 1]);
    }
  }
  bb.global_count = global_count;
  bb.step = step_;
  bb.seed = o_.seed;
  bb.lr = lr_;
  const double batch_loss = backend_->Step(bb);
  if (!std::isfinite(batch_loss)) {
    SyncHost(false);  // the parameters before this step
    Throw(ErrorCode::kAborted,
          "training diverged at epoch {} step {}: the loss is {} (learning rate {} may be too "
          "high){}",
          epoch_ + 1, step_, batch_loss, lr_, checkpointer_.LastGoodNote());
  }
  if (std::isnan(start_loss_)) {
    start_loss_ = batch_loss / (static_cast<double>(global_count) * in_.mean_weight);
  }
  ++step_;
  epoch_loss_sum_ += batch_loss;
  epoch_loss_count_ += static_cast<std::int64_t>(global_count);
  progress_->Add(global_count);
  // The status string is formatted only now and then: the step itself must not allocate.
  if (show_progress_ && (step_ % 64 == 0 || j + 1 == num_batches_)) {
    progress_->SetStatus(fmt::format("epoch {}/{} loss {:.4f}", epoch_ + 1, o_.epochs,
                                     MeanLoss(epoch_loss_sum_, epoch_loss_count_)));
  }
  if (o_.checkpoint.every_steps > 0 &&
      step_ % static_cast<std::uint64_t>(o_.checkpoint.every_steps) == 0) {
    SaveCheckpoint(epoch_, static_cast<std::int64_t>(j + 1));
  }
}

void MinibatchLoop::RunEpoch() {
  if (in_.feed != nullptr) {
    in_.feed->StartEpoch(epoch_);
    for (std::uint64_t j = 0; j < static_cast<std::uint64_t>(next_batch_); ++j) in_.feed->Next(j);
  } else {
    OrderEpoch();
  }
  for (auto j = static_cast<std::uint64_t>(next_batch_); j < num_batches_; ++j) Step(j);
}

void MinibatchLoop::CheckDivergence(const io::EpochRecord& rec) {
  if (!(start_loss_ > 0 && rec.train_loss > kDivergenceFactor * start_loss_)) return;
  SyncHost(false);  // a backend's parameters, as a non-finite loss leaves them
  Throw(ErrorCode::kAborted,
        "training diverged at epoch {}: the mean training loss {:.4g} is over {:.0e} times the "
        "loss at the start ({:.4g}); lower the learning rate (now {}){}",
        rec.epoch, rec.train_loss, kDivergenceFactor, start_loss_, lr_,
        checkpointer_.LastGoodNote());
}

void MinibatchLoop::LogEpoch(const io::EpochRecord& rec) const {
  if (comm_.rank() != 0) return;
  ESCALA_LOG_INFO(
      "epoch {}/{}: loss {:.5f}{}{} ({:.1f} s, {:.0f} samples/s{})", rec.epoch, o_.epochs,
      rec.train_loss, in_.valid != nullptr ? "  valid " : "", MetricsLine(rec.valid), rec.seconds,
      rec.samples_per_second,
      comm_.size() > 1 ? fmt::format(", {:.2f} s waiting on all-reduce", rec.comm_seconds) : "");
}

bool MinibatchLoop::EndEpoch(Clock::time_point epoch_start, std::uint64_t step_at_start) {
  io::EpochRecord rec;
  rec.epoch = epoch_ + 1;
  rec.step = step_;
  rec.train_loss =
      epoch_loss_count_ > 0 ? MeanLoss(epoch_loss_sum_, epoch_loss_count_) : std::nan("");
  rec.learning_rate = lr_;
  rec.seconds = Seconds(epoch_start);
  rec.comm_seconds = backend_->TakeCommSeconds();
  const double samples = static_cast<double>(step_ - step_at_start) * static_cast<double>(batch_);
  rec.samples_per_second =
      rec.seconds > 0 ? std::min(samples, static_cast<double>(in_.global_rows)) / rec.seconds : 0;
  CheckDivergence(rec);
  if (in_.valid != nullptr || o_.early_stopping.patience > 0) SyncHost(false);
  last_valid_ = in_.validate();
  rec.valid = last_valid_.values;
  const double monitored = in_.valid != nullptr ? rec.valid.at(o_.metric) : rec.train_loss;
  if (early_.Observe(rec.epoch, monitored) && early_.KeepsBest()) {
    best_params_.assign(params_.begin(), params_.end());
  }
  history_.push_back(rec);
  LogEpoch(rec);
  epoch_loss_sum_ = 0;
  epoch_loss_count_ = 0;
  const bool stop = early_.ShouldStop();
  const int every = o_.checkpoint.every_epochs;
  if (every > 0 && ((epoch_ + 1) % every == 0 || stop || epoch_ + 1 == o_.epochs)) {
    SaveCheckpoint(epoch_ + 1, 0);
  }
  return stop;
}

void MinibatchLoop::SaveCheckpoint(int epoch, std::int64_t next_batch) {
  if (!checkpointer_.enabled() || comm_.rank() != 0) return;
  SyncHost(true);
  io::TrainingCheckpoint ck;
  ck.model = models::SerializeModel(in_.model);
  ck.optimizer_state = std::move(optimizer_state_);
  ck.optimizer_steps = optimizer_steps_;
  ck.epoch = epoch;
  ck.next_batch = next_batch;
  ck.global_step = step_;
  ck.epoch_loss_sum = epoch_loss_sum_;
  ck.epoch_loss_count = epoch_loss_count_;
  ck.best_metric = early_.best();
  ck.best_epoch = early_.best_epoch();
  ck.epochs_without_improvement = early_.epochs_without_improvement();
  ck.best_parameters = best_params_;
  ck.history = history_;
  ck.global_rows = static_cast<std::int64_t>(in_.global_rows);
  checkpointer_.Save(std::move(ck));
  optimizer_state_.clear();
}

TrainResult MinibatchLoop::Finish(Clock::time_point start) {
  SyncHost(false);
  backend_.reset();
  progress_->Finish();
  TrainResult result;
  const bool restore = early_stopped_ && early_.KeepsBest() && !best_params_.empty();
  if (restore) std::copy(best_params_.begin(), best_params_.end(), params_.begin());
  result.history = std::move(history_);
  result.best_epoch = early_.best_epoch();
  result.steps = step_;
  result.valid = restore || result.history.empty() ? in_.validate() : last_valid_;
  result.early_stopped = early_stopped_;
  result.resumed = resumed_;
  result.stop_reason = early_stopped_
                           ? fmt::format("early stopping: no improvement of {} for {} epoch(s)",
                                         o_.metric, o_.early_stopping.patience)
                           : "completed all epochs";
  result.seconds = Seconds(start);
  return result;
}

TrainResult MinibatchLoop::Run() {
  const auto start = Clock::now();
  if (o_.initialize) in_.model.Initialize(o_.seed);
  Resume();
  StartBackend();
  if (in_.feed != nullptr) {
    epoch_rows_.resize(static_cast<std::size_t>(in_.feed->max_batch_rows()));
    std::iota(epoch_rows_.begin(), epoch_rows_.end(), 0u);
  } else {
    const std::size_t n = static_cast<std::size_t>(in_.train.rows());
    order_.resize(n);
    epoch_rows_.resize(n);
    batch_begin_.resize(num_batches_ + 1);
  }
  ProgressOptions popts;
  popts.unit = "samples";
  show_progress_ = o_.progress && comm_.rank() == 0;
  if (!show_progress_) popts.mode = ProgressOptions::Mode::kSilent;
  const std::uint64_t total = in_.global_rows * static_cast<std::uint64_t>(o_.epochs);
  progress_.emplace(fmt::format("train {}", in_.model.kind()), total, popts);
  progress_->Update(std::min(step_ * batch_, total));
  for (; epoch_ < o_.epochs; ++epoch_, next_batch_ = 0) {
    const auto epoch_start = Clock::now();
    const std::uint64_t step_at_start = step_;
    RunEpoch();
    if (EndEpoch(epoch_start, step_at_start)) {
      early_stopped_ = true;
      ++epoch_;
      break;
    }
  }
  return Finish(start);
}

}  // namespace

TrainResult FitMinibatch(const MinibatchInputs& in) {
  return MinibatchLoop(in).Run();
}

}  // namespace escala::train
