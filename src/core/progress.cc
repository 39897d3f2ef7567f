#include "escala/core/progress.h"

#include <cmath>
#include <unistd.h>

#include <fmt/format.h>

#include "escala/core/logging.h"

namespace escala {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto total = static_cast<long long>(seconds + 0.5);
  if (total < 3600) return fmt::format("{} min {:02} s", total / 60, total % 60);
  return fmt::format("{} h {:02} min", total / 3600, (total % 3600) / 60);
}

std::string FormatCount(double value) {
  const double a = std::fabs(value);
  if (a >= 1e9) return fmt::format("{:.2f} G", value / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f} M", value / 1e6);
  if (a >= 1e4) return fmt::format("{:.1f} k", value / 1e3);
  return fmt::format("{:.0f}", value);
}

ProgressReporter::ProgressReporter(std::string label, std::uint64_t total, ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      options_(std::move(options)),
      start_(std::chrono::steady_clock::now()),
      last_emit_(start_) {
  switch (options_.mode) {
    case ProgressOptions::Mode::kAuto:
      terminal_ = isatty(STDERR_FILENO) == 1;
      break;
    case ProgressOptions::Mode::kTerminal:
      terminal_ = true;
      break;
    default:
      terminal_ = false;
      break;
  }
}

ProgressReporter::~ProgressReporter() {
  Finish();
}

double ProgressReporter::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressReporter::Add(std::uint64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  MaybeEmit(false);
}

void ProgressReporter::Update(std::uint64_t done) {
  done_.store(done, std::memory_order_relaxed);
  MaybeEmit(false);
}

void ProgressReporter::SetStatus(std::string status) {
  std::lock_guard lock(mu_);
  status_ = std::move(status);
}

std::string ProgressReporter::Render() const {
  const std::uint64_t done = done_.load(std::memory_order_relaxed);
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string line = label_;
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    if (terminal_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(frac * kWidth);
      line += fmt::format(" [{}{}]", std::string(filled, '#'), std::string(kWidth - filled, '.'));
    }
    line += fmt::format(" {:5.1f}% {}/{} {}", 100.0 * frac, FormatCount(done), FormatCount(total_),
                        options_.unit);
    if (rate > 0 && done < total_) {
      line += fmt::format(", {} {}/s, ETA {}", FormatCount(rate), options_.unit,
                          FormatDuration(static_cast<double>(total_ - done) / rate));
    } else {
      line += fmt::format(", {} {}/s", FormatCount(rate), options_.unit);
    }
  } else {
    line += fmt::format(" {} {}, {} {}/s", FormatCount(done), options_.unit, FormatCount(rate),
                        options_.unit);
  }
  std::lock_guard lock(mu_);
  if (!status_.empty()) line += " | " + status_;
  return line;
}

void ProgressReporter::MaybeEmit(bool force) {
  if (options_.mode == ProgressOptions::Mode::kSilent) return;
  const auto now = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mu_, std::try_to_lock);
    // Another thread is emitting: skip rather than wait, progress is best-effort.
    if (!lock.owns_lock() && !force) return;
    if (!lock.owns_lock()) lock.lock();
    if (finished_) return;
    const auto interval = terminal_ ? options_.redraw_interval : options_.log_interval;
    if (!force && now - last_emit_ < interval) return;
    last_emit_ = now;
  }
  const std::string line = Render();
  if (terminal_) {
    std::fprintf(stderr, "\r\033[2K%s", line.c_str());
    std::fflush(stderr);
  } else {
    ESCALA_LOG_INFO("{}", line);
  }
}

void ProgressReporter::Finish() {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
  }
  if (options_.mode != ProgressOptions::Mode::kSilent) {
    const double elapsed = elapsed_seconds();
    const std::uint64_t done = done_.load(std::memory_order_relaxed);
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    std::string status;
    {
      std::lock_guard lock(mu_);
      status = status_;
    }
    std::string line =
        fmt::format("{} done: {} {} in {} ({} {}/s)", label_, FormatCount(done), options_.unit,
                    FormatDuration(elapsed), FormatCount(rate), options_.unit);
    if (!status.empty()) line += " | " + status;
    if (terminal_) {
      std::fprintf(stderr, "\r\033[2K%s\n", line.c_str());
      std::fflush(stderr);
    } else {
      ESCALA_LOG_INFO("{}", line);
    }
  }
  std::lock_guard lock(mu_);
  finished_ = true;
}

}  // namespace escala
