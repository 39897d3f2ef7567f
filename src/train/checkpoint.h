// The trainer's side of checkpoints: where they live, what must match for a resume (the
// fingerprint of options and data), and the ranks' agreement on whether one exists. The file
// itself is escala/io/checkpoint.h. Private to src/train.
#ifndef ESCALA_SRC_TRAIN_CHECKPOINT_H_
#define ESCALA_SRC_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "escala/core/communicator.h"
#include "escala/io/checkpoint.h"
#include "escala/train/trainer.h"

namespace escala::train {

// Options that must be identical for a resumed run to continue the same trajectory.
std::string Fingerprint(const TrainOptions& options, const models::Model& model,
                        std::uint64_t global_rows);

class Checkpointer {
 public:
  Checkpointer(const CheckpointConfig& config, std::string fingerprint, Communicator& comm);

  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // With `resume` set and a checkpoint present: the checkpoint, after checking that every rank
  // sees it (kFailedPrecondition otherwise: checkpoint directories must be shared), that it was
  // written under the same fingerprint and that its model has `num_parameters` parameters.
  // Otherwise nullopt.
  std::optional<io::TrainingCheckpoint> LoadForResume(std::size_t num_parameters);

  // Rank 0 writes `checkpoint` (with this run's fingerprint) atomically; other ranks do nothing.
  void Save(io::TrainingCheckpoint checkpoint) const;

  // "; the last good checkpoint is P" when one was written, for divergence messages.
  std::string LastGoodNote() const;

 private:
  CheckpointConfig config_;
  std::string fingerprint_;
  Communicator& comm_;
  std::string path_;
};

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_CHECKPOINT_H_
