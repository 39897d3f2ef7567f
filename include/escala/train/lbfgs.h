// Full-batch L-BFGS, with OWL-QN for an L1 penalty.
//
// The way Spark MLlib trains linear models: the objective and its gradient are sums over all
// rows, so each evaluation parallelises over threads and, through the communicator, over
// workers; L-BFGS then needs only tens of passes to converge on convex problems. With l1 > 0 the
// orthant-wise variant (Andrew & Gao, 2007) minimises f(x) + l1 * sum |x_i| over the masked
// components and produces exact zeros.
//
// Deterministic: the same objective values give the same iterates on every rank, so workers stay
// in lock-step without exchanging parameters.
#ifndef ESCALA_TRAIN_LBFGS_H_
#define ESCALA_TRAIN_LBFGS_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace escala::train {

struct LbfgsOptions {
  int max_iterations = 100;
  int memory = 10;  // correction pairs kept
  // Stop when the largest |(pseudo-)gradient| component is at most this times max(1, |f|): the
  // gradient rule of SciPy's L-BFGS-B (pgtol) and scikit-learn (tol), scaled for objectives far
  // from 1.
  double gradient_tolerance = 1e-5;
  // Also stop when the relative decrease of the objective over one iteration is at most this. A
  // safeguard against stalls at rounding level (SciPy's factr * eps), not the main rule: a slow
  // decrease on an ill-conditioned problem is not convergence.
  double function_tolerance = 64 * 2.220446049250313e-16;
  int max_line_search_steps = 30;
  double l1 = 0.0;
  // Components subject to l1 (1) or not (0); empty means all. Must outlive the call.
  std::span<const std::uint8_t> l1_mask;
};

struct LbfgsResult {
  int iterations = 0;
  int evaluations = 0;
  double objective = 0;  // including the l1 term
  bool converged = false;
  std::string reason;  // why it stopped
};

// Smooth part f: returns f(x) and writes its gradient. Must be deterministic.
using LbfgsObjective = std::function<double(std::span<const double> x, std::span<double> grad)>;
// Called after each iteration with (iteration, objective); return false to stop early.
using LbfgsCallback = std::function<bool(int iteration, double objective)>;

// Minimises from the starting point in x (updated in place). Throws kFailedPrecondition if the
// objective returns a non-finite value at the start.
LbfgsResult MinimizeLbfgs(const LbfgsObjective& f, std::span<double> x, const LbfgsOptions& options,
                          const LbfgsCallback& callback = {});

}  // namespace escala::train

#endif  // ESCALA_TRAIN_LBFGS_H_
