// Early stopping as a small policy: it watches one value per epoch (a validation metric, or the
// training loss without validation data) and says when it is the best so far and when to stop.
// Private to src/train.
#ifndef ESCALA_SRC_TRAIN_EARLY_STOPPING_H_
#define ESCALA_SRC_TRAIN_EARLY_STOPPING_H_

#include <cmath>

#include "escala/train/trainer.h"

namespace escala::train {

class EarlyStopping {
 public:
  EarlyStopping(const EarlyStoppingConfig& config, bool higher_is_better)
      : config_(config), higher_(higher_is_better) {}

  // Records epoch `epoch`'s value; true when it improves on the best by more than min_delta
  // (the first value always does).
  bool Observe(int epoch, double value) {
    const bool improved = std::isnan(best_) || (higher_ ? value > best_ + config_.min_delta
                                                        : value < best_ - config_.min_delta);
    if (improved) {
      best_ = value;
      best_epoch_ = epoch;
      without_improvement_ = 0;
    } else {
      ++without_improvement_;
    }
    return improved;
  }

  bool ShouldStop() const {
    return config_.patience > 0 && without_improvement_ >= config_.patience;
  }
  // Whether the best epoch's parameters are kept, to end with them.
  bool KeepsBest() const { return config_.patience > 0 && config_.restore_best; }

  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }
  int epochs_without_improvement() const { return without_improvement_; }
  // The state a checkpoint carries.
  void Restore(double best, int best_epoch, int without_improvement) {
    best_ = best;
    best_epoch_ = best_epoch;
    without_improvement_ = without_improvement;
  }

 private:
  EarlyStoppingConfig config_;
  bool higher_;
  double best_ = std::nan("");
  int best_epoch_ = 0;
  int without_improvement_ = 0;
};

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_EARLY_STOPPING_H_
