// The training checkpoint file: everything needed to continue a run exactly where it stopped.
//
// Format: a frame (magic "ESCALACK", format version, payload length, CRC-32) around the
// escala.train.v1.Checkpoint protobuf, written atomically (temporary file, fsync, rename), so a
// crash never leaves a half-written checkpoint where a good one was. Load() reports which check
// failed (kDataLoss) and refuses other format versions (kFailedPrecondition).
//
// This is the file only; what a checkpoint must agree with to be resumed (options, data, ranks)
// is the trainer's business (src/train/checkpoint.h).
#ifndef ESCALA_IO_CHECKPOINT_H_
#define ESCALA_IO_CHECKPOINT_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "escala/io/history.h"

namespace escala::io {

struct TrainingCheckpoint {
  // The options and data that must not change across a resume, as one string.
  std::string config_fingerprint;
  std::string model;  // models::SerializeModel bytes
  // One vector per optimizer moment, each with one value per parameter; and its step count.
  std::vector<std::vector<float>> optimizer_state;
  std::uint64_t optimizer_steps = 0;
  // Where to continue: epoch (0-based) and the index of the next batch within it.
  int epoch = 0;
  std::int64_t next_batch = 0;
  std::uint64_t global_step = 0;
  // Partial training-loss sums of the current epoch, so the resumed epoch reports the same loss.
  double epoch_loss_sum = 0;
  std::int64_t epoch_loss_count = 0;
  // Early stopping.
  double best_metric = std::nan("");
  int best_epoch = 0;
  int epochs_without_improvement = 0;
  std::vector<float> best_parameters;
  std::vector<EpochRecord> history;
  int world_size = 0;
  std::int64_t global_rows = 0;

  void Save(const std::string& path) const;
  static TrainingCheckpoint Load(const std::string& path);
};

}  // namespace escala::io

#endif  // ESCALA_IO_CHECKPOINT_H_
