#include "escala/train/lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::train {
namespace {

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double InfNorm(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

struct Pair {
  std::vector<double> s, y;
  double rho;
};

}  // namespace

LbfgsResult MinimizeLbfgs(const LbfgsObjective& f, std::span<double> x_io, const LbfgsOptions& opt,
                          const LbfgsCallback& callback) {
  const std::size_t n = x_io.size();
  const bool owl = opt.l1 > 0;
  auto penalised = [&](std::size_t i) { return opt.l1_mask.empty() || opt.l1_mask[i] != 0; };
  auto l1_term = [&](const std::vector<double>& x) {
    if (!owl) return 0.0;
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (penalised(i)) s += std::fabs(x[i]);
    }
    return opt.l1 * s;
  };
  // Pseudo-gradient of f + l1|x| (equals g without l1).
  auto pseudo = [&](const std::vector<double>& x, const std::vector<double>& g,
                    std::vector<double>& pg) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!owl || !penalised(i)) {
        pg[i] = g[i];
      } else if (x[i] > 0) {
        pg[i] = g[i] + opt.l1;
      } else if (x[i] < 0) {
        pg[i] = g[i] - opt.l1;
      } else if (g[i] + opt.l1 < 0) {
        pg[i] = g[i] + opt.l1;
      } else if (g[i] - opt.l1 > 0) {
        pg[i] = g[i] - opt.l1;
      } else {
        pg[i] = 0;
      }
    }
  };

  LbfgsResult result;
  std::vector<double> x(x_io.begin(), x_io.end()), g(n), pg(n), d(n), xn(n), gn(n), q(n);
  double fx = f(x, g) + l1_term(x);
  ++result.evaluations;
  ESCALA_CHECK(std::isfinite(fx), kFailedPrecondition,
               "L-BFGS: the objective is not finite at the starting point ({})", fx);
  pseudo(x, g, pg);
  std::deque<Pair> mem;
  std::vector<double> alpha(static_cast<std::size_t>(std::max(1, opt.memory)));

  for (int it = 1; it <= opt.max_iterations; ++it) {
    const double gtol = opt.gradient_tolerance * std::max(1.0, std::fabs(fx));
    if (InfNorm(pg) <= gtol) {
      result.converged = true;
      result.reason = fmt::format("largest gradient component {:.3g} <= {:.3g}", InfNorm(pg), gtol);
      break;
    }
    // Two-loop recursion: d = -H pg.
    q = pg;
    for (std::size_t k = mem.size(); k-- > 0;) {
      alpha[k] = mem[k].rho * Dot(mem[k].s, q);
      for (std::size_t i = 0; i < n; ++i) q[i] -= alpha[k] * mem[k].y[i];
    }
    double gamma = 1.0;
    if (!mem.empty()) gamma = Dot(mem.back().s, mem.back().y) / Dot(mem.back().y, mem.back().y);
    for (std::size_t i = 0; i < n; ++i) q[i] *= gamma;
    for (std::size_t k = 0; k < mem.size(); ++k) {
      const double beta = mem[k].rho * Dot(mem[k].y, q);
      for (std::size_t i = 0; i < n; ++i) q[i] += mem[k].s[i] * (alpha[k] - beta);
    }
    for (std::size_t i = 0; i < n; ++i) d[i] = -q[i];
    if (owl) {
      // Keep only components that descend along the pseudo-gradient.
      for (std::size_t i = 0; i < n; ++i) {
        if (d[i] * pg[i] >= 0) d[i] = 0;
      }
    }
    double dir = Dot(d, pg);
    if (dir >= 0) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      mem.clear();
      for (std::size_t i = 0; i < n; ++i) d[i] = -pg[i];
      dir = Dot(d, pg);
    }
    // Backtracking line search (Armijo) from the unit step (scaled on the first iteration).
    double step = mem.empty() ? std::min(1.0, 1.0 / std::max(1e-12, std::sqrt(Dot(pg, pg)))) : 1.0;
    double fn = 0;
    bool accepted = false;
    for (int ls = 0; ls < opt.max_line_search_steps; ++ls) {
      for (std::size_t i = 0; i < n; ++i) {
        xn[i] = x[i] + step * d[i];
        if (owl && penalised(i)) {
          // Project onto the orthant of x (or of -pg where x is zero).
          const double orthant = x[i] != 0 ? x[i] : -pg[i];
          if (xn[i] * orthant <= 0) xn[i] = 0;
        }
      }
      fn = f(xn, gn) + l1_term(xn);
      ++result.evaluations;
      double decrease = 0;
      for (std::size_t i = 0; i < n; ++i) decrease += pg[i] * (xn[i] - x[i]);
      if (std::isfinite(fn) && fn <= fx + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) {
      result.reason = fmt::format(
          "no further decrease at rounding level (largest gradient component {:.3g})", InfNorm(pg));
      // At rounding level the line search cannot decrease f further: converged if the gradient
      // is small, if not to the tolerance asked for.
      result.converged = InfNorm(pg) <= 1e3 * opt.gradient_tolerance * std::max(1.0, std::fabs(fx));
      break;
    }
    Pair p;
    p.s.resize(n);
    p.y.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      p.s[i] = xn[i] - x[i];
      p.y[i] = gn[i] - g[i];
    }
    const double sy = Dot(p.s, p.y);
    if (sy > 1e-12 * Dot(p.y, p.y)) {  // keep H positive definite
      p.rho = 1.0 / sy;
      mem.push_back(std::move(p));
      if (static_cast<int>(mem.size()) > opt.memory) mem.pop_front();
    }
    const double rel = (fx - fn) / std::max({std::fabs(fx), std::fabs(fn), 1.0});
    x.swap(xn);
    g.swap(gn);
    fx = fn;
    pseudo(x, g, pg);
    result.iterations = it;
    if (callback && !callback(it, fx)) {
      result.reason = "stopped by callback";
      break;
    }
    if (rel <= opt.function_tolerance) {
      result.converged = true;
      result.reason = fmt::format("relative decrease below {}", opt.function_tolerance);
      break;
    }
    if (it == opt.max_iterations) result.reason = "iteration limit";
  }
  result.objective = fx;
  std::copy(x.begin(), x.end(), x_io.begin());
  return result;
}

}  // namespace escala::train
