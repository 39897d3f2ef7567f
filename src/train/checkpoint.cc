#include "train/checkpoint.h"

#include <filesystem>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/models/factory.h"

namespace escala::train {

namespace {

constexpr char kCheckpointFile[] = "checkpoint.ckpt";

}  // namespace

std::string Fingerprint(const TrainOptions& o, const models::Model& m, std::uint64_t rows) {
  const auto& p = o.optimizer;
  const auto& s = o.schedule;
  return fmt::format(
      "model={};opt={},{},{},{},{},{},{},{},{};sched={},{},{},{},{};batch={};drop_last={};"
      "clip={};seed={};epochs={};rows={};data={}",
      m.Describe(), p.name, p.lr, p.momentum, p.beta1, p.beta2, p.epsilon, p.weight_decay, p.l2,
      p.l1, s.name, s.warmup_steps, s.step_size, s.gamma, s.min_lr, o.batch_size, o.drop_last,
      o.clip_norm, o.seed, o.epochs, rows, o.checkpoint.data_tag);
}

Checkpointer::Checkpointer(const CheckpointConfig& config, std::string fingerprint,
                           Communicator& comm)
    : config_(config), fingerprint_(std::move(fingerprint)), comm_(comm) {
  if (!config_.dir.empty()) {
    path_ = (std::filesystem::path(config_.dir) / kCheckpointFile).string();
  }
}

std::optional<io::TrainingCheckpoint> Checkpointer::LoadForResume(std::size_t num_parameters) {
  if (!config_.resume || path_.empty()) return std::nullopt;
  const std::int64_t found = std::filesystem::exists(path_) ? 1 : 0;
  const auto lo = comm_.AllReduceScalar<std::int64_t>(found, ReduceOp::kMin);
  const auto hi = comm_.AllReduceScalar<std::int64_t>(found, ReduceOp::kMax);
  ESCALA_CHECK(lo == hi, kFailedPrecondition,
               "checkpoint {} is visible on some ranks only (checkpoint directories must be "
               "shared)",
               path_);
  if (!found) return std::nullopt;
  auto ck = io::TrainingCheckpoint::Load(path_);
  ESCALA_CHECK(ck.config_fingerprint == fingerprint_, kFailedPrecondition,
               "{}: checkpoint was written with different options or data; refusing to resume "
               "(checkpoint: {}; now: {})",
               path_, ck.config_fingerprint, fingerprint_);
  const auto restored = models::ParseGradientModel(ck.model);
  ESCALA_CHECK(restored->parameters().size() == num_parameters, kFailedPrecondition,
               "{}: checkpoint model has {} parameters, this model {}", path_,
               restored->parameters().size(), num_parameters);
  return ck;
}

void Checkpointer::Save(io::TrainingCheckpoint checkpoint) const {
  if (path_.empty() || comm_.rank() != 0) return;
  checkpoint.config_fingerprint = fingerprint_;
  checkpoint.world_size = comm_.size();
  std::filesystem::create_directories(config_.dir);
  checkpoint.Save(path_);
}

std::string Checkpointer::LastGoodNote() const {
  std::error_code ec;
  if (path_.empty() || !std::filesystem::exists(path_, ec)) return "";
  return fmt::format("; the last good checkpoint is {}", path_);
}

}  // namespace escala::train
