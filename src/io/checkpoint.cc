#include "escala/io/checkpoint.h"

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/train/v1/checkpoint.pb.h"
#include "io/history_proto.h"

namespace escala::io {

namespace pb = escala::train::v1;

namespace {

constexpr char kMagic[] = "ESCALACK";
constexpr std::uint32_t kVersion = 1;

void StateToProto(const TrainingCheckpoint& c, pb::Checkpoint* ck) {
  ck->set_config_fingerprint(c.config_fingerprint);
  ESCALA_CHECK(ck->mutable_model()->ParseFromString(c.model), kInternal,
               "checkpoint model does not round-trip");
  for (const auto& v : c.optimizer_state) {
    ck->add_optimizer_state()->mutable_values()->Assign(v.begin(), v.end());
  }
  ck->set_optimizer_steps(c.optimizer_steps);
  ck->set_epoch(c.epoch);
  ck->set_next_batch(c.next_batch);
  ck->set_global_step(c.global_step);
  ck->set_epoch_loss_sum(c.epoch_loss_sum);
  ck->set_epoch_loss_count(c.epoch_loss_count);
  ck->set_best_metric(c.best_metric);
  ck->set_best_epoch(c.best_epoch);
  ck->set_epochs_without_improvement(c.epochs_without_improvement);
  ck->mutable_best_parameters()->Assign(c.best_parameters.begin(), c.best_parameters.end());
  HistoryToProto(c.history, ck->mutable_history());
  ck->set_world_size(c.world_size);
  ck->set_global_rows(c.global_rows);
}

TrainingCheckpoint StateFromProto(const pb::Checkpoint& ck) {
  TrainingCheckpoint c;
  c.config_fingerprint = ck.config_fingerprint();
  c.model = ck.model().SerializeAsString();
  for (const auto& s : ck.optimizer_state())
    c.optimizer_state.emplace_back(s.values().begin(), s.values().end());
  c.optimizer_steps = ck.optimizer_steps();
  c.epoch = ck.epoch();
  c.next_batch = ck.next_batch();
  c.global_step = ck.global_step();
  c.epoch_loss_sum = ck.epoch_loss_sum();
  c.epoch_loss_count = ck.epoch_loss_count();
  c.best_metric = ck.best_metric();
  c.best_epoch = ck.best_epoch();
  c.epochs_without_improvement = ck.epochs_without_improvement();
  c.best_parameters.assign(ck.best_parameters().begin(), ck.best_parameters().end());
  c.history = HistoryFromProto(ck.history());
  c.world_size = ck.world_size();
  c.global_rows = ck.global_rows();
  return c;
}

}  // namespace

void TrainingCheckpoint::Save(const std::string& path) const {
  pb::Checkpoint ck;
  StateToProto(*this, &ck);
  WriteFileAtomic(path, FramePayload(kMagic, kVersion, ck.SerializeAsString()));
}

TrainingCheckpoint TrainingCheckpoint::Load(const std::string& path) {
  std::uint32_t version = 0;
  const std::string file = ReadFileToString(path);
  const auto payload = UnframePayload(file, kMagic, &version, path);
  ESCALA_CHECK(version == kVersion, kFailedPrecondition,
               "{}: checkpoint format version {} is not supported (expected {})", path, version,
               kVersion);
  pb::Checkpoint ck;
  ESCALA_CHECK(ck.ParseFromArray(payload.data(), static_cast<int>(payload.size())), kDataLoss,
               "{}: checkpoint does not parse", path);
  return StateFromProto(ck);
}

}  // namespace escala::io
