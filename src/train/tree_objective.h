// The objectives boosted trees minimise: per-row gradients and hessians of the raw scores, the
// per-row loss the validation metric averages, the base score, and the label domain.
//
// Thread-safety: pure functions, except BaseScore (a collective).
#ifndef ESCALA_SRC_TRAIN_TREE_OBJECTIVE_H_
#define ESCALA_SRC_TRAIN_TREE_OBJECTIVE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"

namespace escala::train::trees {

enum class Objective { kSquaredError, kAbsoluteError, kHuber, kPoisson, kLogistic, kSoftmax };

// The name ResolveObjective returned, back to its enum.
Objective ParseObjective(const std::string& name);

struct ObjectiveFn {
  Objective kind;
  double huber_delta = 1.0;

  // g and h (rows x outputs) at the raw scores f.
  void Gradients(const MatrixF& f, std::span<const float> y, std::vector<double>* g,
                 std::vector<double>* h) const;
  // One row's: z and the gradient and hessian have `outputs` values.
  void RowGradients(const float* z, std::int64_t outputs, float y, double* g, double* h) const;
  // One row's loss at raw scores z (outputs values).
  double RowLoss(const float* z, std::int64_t outputs, float y) const;
  // kInvalidArgument naming the first label outside the objective's domain, by its global id.
  void CheckLabels(std::span<const float> y, std::int64_t outputs,
                   std::span<const std::uint64_t> ids) const;
  // One value per output, from the labels of every rank, weighted by `w` (empty: 1 per row):
  // their mean (its log for Poisson, the log-odds, the class log-priors), or for absolute error
  // their median (train/tree_median.h).
  std::vector<float> BaseScore(std::int64_t outputs, std::span<const float> y,
                               std::span<const float> w, Communicator& comm) const;
};

}  // namespace escala::train::trees

#endif  // ESCALA_SRC_TRAIN_TREE_OBJECTIVE_H_
