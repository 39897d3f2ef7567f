#include "escala/data/loader.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "escala/core/error.h"
#include "escala/data/split.h"

namespace escala::data {
namespace {

__extension__ typedef unsigned __int128 U128;

// A counter-based generator: the stream for (seed, epoch) never depends on anything else.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : state_(Mix(seed ^ Mix(stream + 0x51ed2701))) {}
  std::uint64_t Next() { return Mix(state_ += 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, n), without modulo bias (Lemire's method).
  std::uint64_t Below(std::uint64_t n) {
    U128 m = static_cast<U128>(Next()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<U128>(Next()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

 private:
  static std::uint64_t Mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::uint64_t state_;
};

void ValidateOptions(const LoaderOptions& o) {
  ESCALA_CHECK(o.batch_size > 0, kInvalidArgument, "batch size must be positive, got {}",
               o.batch_size);
  ESCALA_CHECK(o.fraction > 0.0 && o.fraction <= 1.0, kInvalidArgument,
               "sample fraction must be in (0, 1], got {}", o.fraction);
  ESCALA_CHECK(o.prefetch >= 0, kInvalidArgument, "prefetch must be >= 0, got {}", o.prefetch);
  ESCALA_CHECK(o.shard.world >= 1 && o.shard.rank >= 0 && o.shard.rank < o.shard.world,
               kInvalidArgument, "invalid shard: rank {} of world {}", o.shard.rank, o.shard.world);
  ESCALA_CHECK(o.shuffle_buffer > 0, kInvalidArgument, "shuffle buffer must be positive, got {}",
               o.shuffle_buffer);
}

// One batch buffer.
struct Slot {
  MatrixF features;
  std::vector<float> labels;
  std::vector<std::int64_t> rows;
  std::vector<std::uint64_t> ids;
  std::int64_t n = 0;
  std::int64_t index = 0;
  bool has_labels = false;
  std::exception_ptr error;
};

// A ring of preallocated batch slots filled ahead by one background thread (or on demand when
// prefetch is 0). fill(slot) returns false when the epoch has no more batches.
class BatchRing {
 public:
  explicit BatchRing(int prefetch)
      : slots_(static_cast<std::size_t>(prefetch + 1)),
        states_(slots_.size(), kFree),
        async_(prefetch > 0) {}
  ~BatchRing() {
    if (thread_.joinable()) {
      {
        std::lock_guard lock(mu_);
        quit_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
  }

  void Start(std::function<bool(Slot&)> fill) {
    std::unique_lock lock(mu_);
    active_ = false;
    cv_.wait(lock, [&] { return filling_ == 0; });
    fill_ = std::move(fill);
    std::fill(states_.begin(), states_.end(), kFree);
    next_fill_ = 0;
    next_take_ = 0;
    end_ = std::numeric_limits<std::int64_t>::max();
    held_ = -1;
    active_ = true;
    if (async_ && !thread_.joinable()) thread_ = std::thread([this] { Run(); });
    lock.unlock();
    cv_.notify_all();
  }

  // The next filled slot, or nullptr at the end of the epoch. The slot stays valid until the
  // next call or Start().
  Slot* Next() {
    if (!async_) {
      Slot& s = slots_[0];
      if (next_take_ >= end_) return nullptr;
      s.index = next_take_;
      if (!fill_(s)) {
        end_ = next_take_;
        return nullptr;
      }
      ++next_take_;
      return &s;
    }
    std::unique_lock lock(mu_);
    if (held_ >= 0) {
      states_[static_cast<std::size_t>(held_)] = kFree;
      held_ = -1;
      cv_.notify_all();
    }
    const auto k = static_cast<std::size_t>(next_take_ % static_cast<std::int64_t>(slots_.size()));
    cv_.wait(lock, [&] { return states_[k] == kReady || next_take_ >= end_; });
    if (states_[k] != kReady) return nullptr;
    states_[k] = kHeld;
    held_ = static_cast<int>(k);
    ++next_take_;
    Slot& s = slots_[k];
    if (s.error) std::rethrow_exception(s.error);
    return &s;
  }

 private:
  enum State { kFree, kFilling, kReady, kHeld };

  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      std::size_t k = 0;
      cv_.wait(lock, [&] {
        if (quit_) return true;
        if (!active_ || next_fill_ >= end_) return false;
        k = static_cast<std::size_t>(next_fill_ % static_cast<std::int64_t>(slots_.size()));
        return states_[k] == kFree;
      });
      if (quit_) return;
      states_[k] = kFilling;
      ++filling_;
      Slot& s = slots_[k];
      s.index = next_fill_;
      s.error = nullptr;
      lock.unlock();
      bool more = true;
      try {
        more = fill_(s);
      } catch (...) {
        s.error = std::current_exception();
      }
      lock.lock();
      --filling_;
      if (!more && !s.error) {
        states_[k] = kFree;
        end_ = next_fill_;
      } else {
        states_[k] = kReady;
        ++next_fill_;
        if (s.error) end_ = next_fill_;
      }
      cv_.notify_all();
    }
  }

  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<State> states_;        // guarded by mu_
  std::function<bool(Slot&)> fill_;  // set under mu_ while no fill runs
  std::int64_t next_fill_ = 0;       // guarded by mu_
  std::int64_t next_take_ = 0;       // guarded by mu_ (async)
  std::int64_t end_ = 0;             // guarded by mu_: batches in this epoch, once known
  int held_ = -1;                    // guarded by mu_
  int filling_ = 0;                  // guarded by mu_
  bool active_ = false;              // guarded by mu_
  bool quit_ = false;                // guarded by mu_
  bool async_;
  std::thread thread_;

 public:
  std::vector<Slot>& slots() { return slots_; }
};

void Expose(const Slot& s, std::int64_t epoch, Batch* b) {
  b->features = MatrixView<const float>(s.features.data(), s.n, s.features.cols());
  b->labels = s.has_labels ? std::span<const float>(s.labels.data(), static_cast<std::size_t>(s.n))
                           : std::span<const float>();
  b->rows = std::span<const std::int64_t>(s.rows.data(),
                                          s.rows.empty() ? 0 : static_cast<std::size_t>(s.n));
  b->row_ids = std::span<const std::uint64_t>(s.ids.data(),
                                              s.ids.empty() ? 0 : static_cast<std::size_t>(s.n));
  b->epoch = epoch;
  b->index = s.index;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loader

struct Loader::Impl {
  MatrixView<const float> x;
  std::span<const float> labels;
  std::span<const std::uint64_t> ids;
  LoaderOptions o;
  std::vector<std::int64_t> kept;   // rows kept by sampling
  std::vector<std::int64_t> order;  // this epoch's visiting order
  std::int64_t epoch = -1;
  BatchRing ring;

  Impl(MatrixView<const float> f, std::span<const float> l, LoaderOptions opt,
       std::span<const std::uint64_t> row_ids)
      : x(f), labels(l), ids(row_ids), o(opt), ring(opt.prefetch) {
    ValidateOptions(o);
    ESCALA_CHECK(labels.empty() || static_cast<std::int64_t>(labels.size()) == x.rows(),
                 kInvalidArgument, "{} labels for {} rows", labels.size(), x.rows());
    ESCALA_CHECK(ids.empty() || static_cast<std::int64_t>(ids.size()) == x.rows(), kInvalidArgument,
                 "{} row ids for {} rows", ids.size(), x.rows());
    for (std::int64_t i = 0; i < x.rows(); ++i) {
      const std::uint64_t id =
          ids.empty() ? static_cast<std::uint64_t>(i) : ids[static_cast<std::size_t>(i)];
      if (InSample(id, o.fraction, o.seed)) kept.push_back(i);
    }
    order.resize(kept.size());
    for (auto& slot : ring.slots()) {
      slot.features.Resize(o.batch_size, x.cols());
      slot.labels.resize(static_cast<std::size_t>(o.batch_size));
      slot.rows.resize(static_cast<std::size_t>(o.batch_size));
      slot.ids.resize(static_cast<std::size_t>(o.batch_size));
      slot.has_labels = !labels.empty();
    }
  }

  std::int64_t n() const { return static_cast<std::int64_t>(kept.size()); }
  std::int64_t batches() const {
    return o.drop_last ? n() / o.batch_size : (n() + o.batch_size - 1) / o.batch_size;
  }

  void Start(std::int64_t e) {
    epoch = e;
    // Fisher-Yates over the kept rows with the (seed, epoch) stream; computed before the
    // producer starts, so its result cannot depend on timing.
    std::copy(kept.begin(), kept.end(), order.begin());
    if (o.shuffle) {
      Rng rng(o.seed, static_cast<std::uint64_t>(e));
      for (std::size_t i = order.size(); i > 1; --i) {
        std::swap(order[i - 1], order[rng.Below(i)]);
      }
    }
    ring.Start([this](Slot& s) { return Fill(s); });
  }

  bool Fill(Slot& s) {
    const std::int64_t b = s.index;
    if (b >= batches()) return false;
    const std::int64_t lo = b * o.batch_size;
    const std::int64_t len = std::min(o.batch_size, n() - lo);
    const std::int64_t w = o.shard.world;
    const std::int64_t r = o.shard.rank;
    const std::int64_t from = lo + len * r / w;
    const std::int64_t to = lo + len * (r + 1) / w;
    s.n = to - from;
    const std::int64_t cols = x.cols();
    for (std::int64_t i = 0; i < s.n; ++i) {
      const std::int64_t row = order[static_cast<std::size_t>(from + i)];
      std::memcpy(s.features.row(i), x.row(row), static_cast<std::size_t>(cols) * sizeof(float));
      if (s.has_labels)
        s.labels[static_cast<std::size_t>(i)] = labels[static_cast<std::size_t>(row)];
      s.rows[static_cast<std::size_t>(i)] = row;
      s.ids[static_cast<std::size_t>(i)] =
          ids.empty() ? static_cast<std::uint64_t>(row) : ids[static_cast<std::size_t>(row)];
    }
    return true;
  }
};

Loader::Loader(MatrixView<const float> features, std::span<const float> labels,
               LoaderOptions options, std::span<const std::uint64_t> row_ids)
    : impl_(std::make_unique<Impl>(features, labels, options, row_ids)) {}

Loader::Loader(const DenseData& data, LoaderOptions options)
    : Loader(data.features.view(), data.labels, options, data.row_ids) {}

Loader::~Loader() = default;

std::int64_t Loader::num_rows() const {
  return impl_->n();
}

std::int64_t Loader::batches_per_epoch() const {
  return impl_->batches();
}

void Loader::StartEpoch(std::int64_t epoch) {
  impl_->Start(epoch);
}

bool Loader::Next(Batch* batch) {
  if (impl_->epoch < 0) impl_->Start(0);
  Slot* s = impl_->ring.Next();
  if (s == nullptr) return false;
  Expose(*s, impl_->epoch, batch);
  return true;
}

// ---------------------------------------------------------------------------------------------
// StreamingLoader

struct StreamingLoader::Impl {
  const Dataset& ds;
  DenseSpec spec;
  LoaderOptions o;
  DatasetStream stream;
  DenseData chunk;
  std::int64_t chunk_pos = 0;
  bool stream_done = false;
  // Shuffle buffer.
  MatrixF buf;
  std::vector<float> buf_labels;
  std::vector<std::uint64_t> buf_ids;
  std::int64_t buf_n = 0;
  bool drained_shuffled = false;
  std::int64_t cols = 0;
  bool has_labels = false;
  std::unique_ptr<Rng> rng;
  std::int64_t epoch = -1;
  mutable std::mutex report_mu;
  ReadReport report_copy;  // guarded by report_mu
  BatchRing ring;

  Impl(const Dataset& d, Shard shard, DenseSpec s, LoaderOptions opt, StreamOptions so)
      : ds(d), spec(std::move(s)), o(opt), stream(d, shard, so), ring(opt.prefetch) {
    ValidateOptions(o);
    ESCALA_CHECK(o.shard.world == 1, kInvalidArgument,
                 "StreamingLoader distributes by dataset shard; leave options.shard at 1 worker");
    DenseSpec features_only = spec;
    if (ds.format() == Format::kNpy) features_only.label.clear();  // labels from companion files
    cols = static_cast<std::int64_t>(ResolveFeatures(ds.schema(), features_only).size());
    has_labels = !spec.label.empty();
    const std::int64_t cap = o.shuffle ? o.shuffle_buffer : 0;
    buf.Resize(cap, cols);
    buf_labels.resize(static_cast<std::size_t>(cap));
    buf_ids.resize(static_cast<std::size_t>(cap));
    for (auto& slot : ring.slots()) {
      slot.features.Resize(o.batch_size, cols);
      slot.labels.resize(static_cast<std::size_t>(o.batch_size));
      slot.ids.resize(static_cast<std::size_t>(o.batch_size));
      slot.has_labels = has_labels;
    }
  }

  // The next row of the stream that passes sampling; false at the end.
  bool NextRow(const float** x, float* y, std::uint64_t* id) {
    for (;;) {
      if (chunk_pos < chunk.rows()) {
        const std::int64_t i = chunk_pos++;
        const std::uint64_t rid = chunk.row_ids[static_cast<std::size_t>(i)];
        if (!InSample(rid, o.fraction, o.seed)) continue;
        *x = chunk.features.row(i);
        *y = has_labels ? chunk.labels[static_cast<std::size_t>(i)] : 0.0f;
        *id = rid;
        return true;
      }
      if (stream_done) return false;
      chunk_pos = 0;
      if (!stream.NextDense(spec, &chunk)) {
        stream_done = true;
        chunk.features.Resize(0, cols);
      }
      std::lock_guard lock(report_mu);
      report_copy = stream.report();
    }
  }

  void Emit(Slot& s, const float* x, float y, std::uint64_t id) {
    std::memcpy(s.features.row(s.n), x, static_cast<std::size_t>(cols) * sizeof(float));
    s.labels[static_cast<std::size_t>(s.n)] = y;
    s.ids[static_cast<std::size_t>(s.n)] = id;
    ++s.n;
  }

  bool Fill(Slot& s) {
    s.n = 0;
    const float* x;
    float y;
    std::uint64_t id;
    while (s.n < o.batch_size) {
      if (!o.shuffle) {
        if (!NextRow(&x, &y, &id)) break;
        Emit(s, x, y, id);
        continue;
      }
      // Shuffle buffer: fill it, then each new row replaces a random resident that is emitted.
      if (!stream_done || chunk_pos < chunk.rows()) {
        if (NextRow(&x, &y, &id)) {
          if (buf_n < o.shuffle_buffer) {
            std::memcpy(buf.row(buf_n), x, static_cast<std::size_t>(cols) * sizeof(float));
            buf_labels[static_cast<std::size_t>(buf_n)] = y;
            buf_ids[static_cast<std::size_t>(buf_n)] = id;
            ++buf_n;
            continue;
          }
          const auto j = static_cast<std::int64_t>(rng->Below(static_cast<std::uint64_t>(buf_n)));
          Emit(s, buf.row(j), buf_labels[static_cast<std::size_t>(j)],
               buf_ids[static_cast<std::size_t>(j)]);
          std::memcpy(buf.row(j), x, static_cast<std::size_t>(cols) * sizeof(float));
          buf_labels[static_cast<std::size_t>(j)] = y;
          buf_ids[static_cast<std::size_t>(j)] = id;
          continue;
        }
      }
      // The stream is exhausted: drain the buffer in random order.
      if (buf_n == 0) break;
      const auto j = static_cast<std::int64_t>(rng->Below(static_cast<std::uint64_t>(buf_n)));
      Emit(s, buf.row(j), buf_labels[static_cast<std::size_t>(j)],
           buf_ids[static_cast<std::size_t>(j)]);
      --buf_n;
      if (j != buf_n) {
        std::memcpy(buf.row(j), buf.row(buf_n), static_cast<std::size_t>(cols) * sizeof(float));
        buf_labels[static_cast<std::size_t>(j)] = buf_labels[static_cast<std::size_t>(buf_n)];
        buf_ids[static_cast<std::size_t>(j)] = buf_ids[static_cast<std::size_t>(buf_n)];
      }
    }
    if (s.n == 0) return false;
    if (o.drop_last && s.n < o.batch_size) return false;
    return true;
  }

  void Start(std::int64_t e) {
    epoch = e;
    // Stop the producer first (Start waits for any fill in progress), then reset the stream.
    ring.Start([](Slot&) { return false; });
    rng = std::make_unique<Rng>(o.seed, static_cast<std::uint64_t>(e));
    std::vector<int> order(static_cast<std::size_t>(stream.num_ranges()));
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    if (o.shuffle) {
      Rng file_rng(o.seed ^ 0x66696c6573ULL, static_cast<std::uint64_t>(e));
      for (std::size_t i = order.size(); i > 1; --i) {
        std::swap(order[i - 1], order[file_rng.Below(i)]);
      }
    }
    stream.SetRangeOrder(std::move(order));
    chunk.features.Resize(0, cols);
    chunk.labels.clear();
    chunk.row_ids.clear();
    chunk_pos = 0;
    stream_done = false;
    buf_n = 0;
    ring.Start([this](Slot& s) { return Fill(s); });
  }
};

StreamingLoader::StreamingLoader(const Dataset& dataset, Shard shard, DenseSpec spec,
                                 LoaderOptions options, StreamOptions stream_options)
    : impl_(std::make_unique<Impl>(dataset, shard, std::move(spec), options, stream_options)) {}

StreamingLoader::~StreamingLoader() = default;

void StreamingLoader::StartEpoch(std::int64_t epoch) {
  impl_->Start(epoch);
}

bool StreamingLoader::Next(Batch* batch) {
  if (impl_->epoch < 0) impl_->Start(0);
  Slot* s = impl_->ring.Next();
  if (s == nullptr) return false;
  Expose(*s, impl_->epoch, batch);
  return true;
}

ReadReport StreamingLoader::report() const {
  std::lock_guard lock(impl_->report_mu);
  return impl_->report_copy;
}

}  // namespace escala::data
