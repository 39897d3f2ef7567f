// The per-epoch record of a training run: what the trainer reports, checkpoints carry and bundles
// keep, and its CSV/JSON export (`escala train --history`).
#ifndef ESCALA_IO_HISTORY_H_
#define ESCALA_IO_HISTORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace escala::io {

struct EpochRecord {
  int epoch = 0;           // 1-based
  std::uint64_t step = 0;  // global steps completed
  double train_loss = 0;   // mean loss over the epoch's batches (L-BFGS: the objective)
  double learning_rate = 0;
  double seconds = 0;
  double samples_per_second = 0;
  // Time this rank waited for gradient all-reduces that the backward pass did not hide.
  double comm_seconds = 0;
  // Validation metrics by name; empty without validation data.
  std::map<std::string, double> valid;
};

// Writes the history atomically as CSV (one row per epoch, one column per metric) or JSON.
void WriteHistoryCsv(const std::vector<EpochRecord>& history, const std::string& path);
void WriteHistoryJson(const std::vector<EpochRecord>& history, const std::string& path);

}  // namespace escala::io

#endif  // ESCALA_IO_HISTORY_H_
