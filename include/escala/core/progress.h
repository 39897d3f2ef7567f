// Progress reporting for long loops (parsing, epochs, scoring).
//
// On a terminal the reporter redraws one status line in place (a bar, counts, rate and ETA);
// otherwise (a log file, CI, a worker under `escala launch`) it writes a log record at most once
// per interval, so logs stay readable. Callers report absolute or incremental progress plus an
// optional free-form status ("loss 0.412 acc 0.87").
//
// Thread-safety: Add() may be called concurrently from many threads; Update(), SetStatus() and
// Finish() must come from one thread at a time.
#ifndef ESCALA_CORE_PROGRESS_H_
#define ESCALA_CORE_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace escala {

struct ProgressOptions {
  // What is counted ("rows", "samples", "bytes"); shown with the rate.
  std::string unit = "items";
  // Minimum time between log records when not on a terminal.
  std::chrono::milliseconds log_interval{10'000};
  // Minimum time between redraws on a terminal.
  std::chrono::milliseconds redraw_interval{100};
  // Force terminal or log mode; by default isatty(stderr) decides.
  enum class Mode { kAuto, kTerminal, kLog, kSilent } mode = Mode::kAuto;
};

class ProgressReporter {
 public:
  // total == 0 means unknown: no bar and no ETA, only count and rate.
  ProgressReporter(std::string label, std::uint64_t total, ProgressOptions options = {});
  ~ProgressReporter();  // calls Finish() if it was not called

  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Adds n to the count (thread-safe) and redraws if due.
  void Add(std::uint64_t n);
  // Sets the absolute count.
  void Update(std::uint64_t done);
  // Free-form status shown after the counts.
  void SetStatus(std::string status);
  // Final line: total count, elapsed time and mean rate.
  void Finish();

  std::uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  double elapsed_seconds() const;

  // The rendered status line (no terminal control characters); exposed for tests.
  std::string Render() const;

 private:
  void MaybeEmit(bool force);

  std::string label_;
  std::uint64_t total_;
  ProgressOptions options_;
  bool terminal_;
  std::atomic<std::uint64_t> done_{0};
  std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;  // guards status_, last_emit_, finished_
  std::string status_;
  std::chrono::steady_clock::time_point last_emit_;
  bool finished_ = false;
};

// "1.2 s", "3 min 04 s", "2 h 05 min".
std::string FormatDuration(double seconds);
// "950", "12.3 k", "4.56 M".
std::string FormatCount(double value);

}  // namespace escala

#endif  // ESCALA_CORE_PROGRESS_H_
