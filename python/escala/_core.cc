// escala's Python extension: the C++ core behind `import escala` (python/escala/__init__.py).
//
// Columns cross the boundary as a dict of name -> numpy array: numbers as float32, float64 or
// int64 arrays, categories as object or unicode arrays (None and NaN are missing). Tables read by
// escala's readers come back without copying: each array owns the column it views (a capsule
// holds the C++ column). Training and prediction release the GIL.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "escala/config.h"
#include "escala/core/communicator.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"
#include "escala/data/dataset.h"
#include "escala/data/stream.h"
#include "escala/data/table.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/worker_env.h"
#include "escala/features/pipeline.h"
#include "escala/features/summary.h"
#include "escala/io/bundle.h"
#include "escala/io/model_file.h"
#include "escala/io/onnx_export.h"
#include "escala/serving/client.h"
#include "escala/serving/server.h"
#include "escala/train/estimator.h"
#include "escala/train/labels.h"
#include "escala/train/params.h"

namespace py = pybind11;

namespace escala::python {
namespace {

// ---- logging into Python's logging --------------------------------------------------------------

// escala's log records, from any thread, as records of Python's logger "escala". The GIL
// serialises them (no mutex of its own: a thread waiting for the GIL holds no lock that the
// GIL's holder could want); every call into escala that computes releases the GIL first.
class PythonLogSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!Py_IsInitialized() || _Py_IsFinalizing()) return;
    static constexpr int kLevels[] = {5, 10, 20, 30, 40, 50, 0};  // trace .. critical, off
    py::gil_scoped_acquire gil;
    try {
      py::module_::import("logging").attr("getLogger")("escala").attr("log")(
          kLevels[static_cast<int>(msg.level)],
          std::string(msg.payload.data(), msg.payload.size()));
    } catch (const py::error_already_set&) {
      PyErr_Clear();  // a failing handler must not turn into an escala error
    }
  }
  void flush_() override {}
};

void LogToPython() {
  auto& sinks = Logger().sinks();
  sinks.clear();
  sinks.push_back(std::make_shared<PythonLogSink>());
}

// ---- columns in ---------------------------------------------------------------------------------

// None, NaN of any float type (Python's, numpy's float32...), and pandas' NA.
bool IsMissingObject(const py::handle& v) {
  if (v.is_none()) return true;
  if (PyFloat_Check(v.ptr()) || py::isinstance(v, py::module_::import("numpy").attr("floating"))) {
    return std::isnan(v.cast<double>());
  }
  return std::string(Py_TYPE(v.ptr())->tp_name) == "NAType";
}

// Text of a category: str, or bytes decoded as UTF-8 (not their repr).
std::string CategoryText(const py::handle& v) {
  if (PyBytes_Check(v.ptr())) return v.cast<std::string>();
  return py::str(v);
}

data::Column CategoricalColumn(const std::string& name, const py::array& a) {
  const auto n = static_cast<std::int64_t>(a.size());
  data::Column c(name, data::DataType::kCategorical, n);
  std::unordered_map<std::string, std::int32_t> codes;
  auto& dict = c.mutable_dictionary();
  const py::list values = a.attr("tolist")();
  for (std::int64_t i = 0; i < n; ++i) {
    const py::handle v = values[static_cast<std::size_t>(i)];
    if (IsMissingObject(v)) {
      c.SetMissing(i);
      continue;
    }
    const std::string s = CategoryText(v);
    auto [it, added] = codes.try_emplace(s, static_cast<std::int32_t>(dict.size()));
    if (added) dict.push_back(s);
    c.mutable_codes()[static_cast<std::size_t>(i)] = it->second;
  }
  return c;
}

template <class T>
data::Column NumericColumn(const std::string& name, data::DataType type, const py::array& a) {
  const auto v = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  const auto n = static_cast<std::int64_t>(v.size());
  data::Column c(name, type, n);
  std::span<T> out;
  if constexpr (std::is_same_v<T, float>) out = c.mutable_f32();
  if constexpr (std::is_same_v<T, double>) out = c.mutable_f64();
  if constexpr (std::is_same_v<T, std::int64_t>) out = c.mutable_i64();
  std::copy_n(v.data(), n, out.data());
  if constexpr (std::is_floating_point_v<T>) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (std::isnan(out[static_cast<std::size_t>(i)])) c.SetMissing(i);
    }
  }
  return c;
}

data::Column ToColumn(const std::string& name, const py::handle& obj) {
  const py::array a = py::array::ensure(obj);
  if (!a || a.ndim() != 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "column '" + name + "': expected a one-dimensional array");
  }
  switch (a.dtype().kind()) {
    case 'f':
      return a.dtype().itemsize() == 4 ? NumericColumn<float>(name, data::DataType::kFloat32, a)
                                       : NumericColumn<double>(name, data::DataType::kFloat64, a);
    case 'i':
    case 'u':
      return NumericColumn<std::int64_t>(name, data::DataType::kInt64, a);
    case 'b':
      return NumericColumn<double>(name, data::DataType::kFloat64, a);
    case 'O':
    case 'U':
    case 'S':
      return CategoricalColumn(name, a);
    default:
      throw Error(ErrorCode::kInvalidArgument, "column '" + name + "': numpy dtype '" +
                                                   std::string(py::str(a.dtype())) +
                                                   "' is neither numeric nor text");
  }
}

// The columns of a 2-D float matrix (any order or strides), named `names`: copied by row
// blocks in parallel (each block writes every column, reading the matrix once); NaN is missing.
template <class T>
std::vector<data::Column> MatrixColumns(const py::array_t<T>& x,
                                        const std::vector<std::string>& names) {
  const std::int64_t rows = x.shape(0), cols = x.shape(1);
  const auto type = std::is_same_v<T, float> ? data::DataType::kFloat32 : data::DataType::kFloat64;
  std::vector<data::Column> out;
  for (std::int64_t j = 0; j < cols; ++j) {
    // Grow, not Resize: every value is written below, so the memory is not zeroed first.
    out.emplace_back(names[static_cast<std::size_t>(j)], type, 0).Grow(rows);
  }
  std::vector<T*> dst;
  for (auto& c : out) {
    if constexpr (std::is_same_v<T, float>)
      dst.push_back(c.mutable_f32().data());
    else
      dst.push_back(c.mutable_f64().data());
  }
  const auto* base = reinterpret_cast<const char*>(x.data());
  const py::ssize_t rs = x.strides(0), cs = x.strides(1);
  std::vector<std::uint8_t> has_nan(static_cast<std::size_t>(cols), 0);
  std::mutex mu;
  {
    py::gil_scoped_release nogil;
    ParallelFor(static_cast<std::size_t>(rows), 4096, [&](std::size_t begin, std::size_t end) {
      std::vector<std::uint8_t> nan(static_cast<std::size_t>(cols), 0);
      for (std::size_t i = begin; i < end; ++i) {
        const char* row = base + static_cast<py::ssize_t>(i) * rs;
        for (std::int64_t j = 0; j < cols; ++j) {
          const T v = *reinterpret_cast<const T*>(row + j * cs);
          dst[static_cast<std::size_t>(j)][i] = v;
          nan[static_cast<std::size_t>(j)] |= static_cast<std::uint8_t>(std::isnan(v));
        }
      }
      std::lock_guard lock(mu);
      for (std::size_t j = 0; j < nan.size(); ++j) has_nan[j] |= nan[j];
    });
  }
  for (std::int64_t j = 0; j < cols; ++j) {
    if (!has_nan[static_cast<std::size_t>(j)]) continue;
    for (std::int64_t i = 0; i < rows; ++i) {
      if (std::isnan(dst[static_cast<std::size_t>(j)][i]))
        out[static_cast<std::size_t>(j)].SetMissing(i);
    }
  }
  return out;
}

// {name: 1-D array}, or (2-D float matrix, its column names, {name: 1-D array} of more columns).
data::Table ToTable(const py::object& columns) {
  std::vector<data::Column> out;
  py::dict more;
  if (py::isinstance<py::tuple>(columns)) {
    const auto t = columns.cast<py::tuple>();
    const auto names = t[1].cast<std::vector<std::string>>();
    const py::array x = py::array::ensure(t[0]);
    if (!x || x.ndim() != 2 || x.dtype().kind() != 'f' ||
        static_cast<std::size_t>(x.shape(1)) != names.size()) {
      throw Error(ErrorCode::kInvalidArgument, "expected a 2-D float matrix and its column names");
    }
    out = x.dtype().itemsize() == 4 ? MatrixColumns<float>(py::array_t<float>(x), names)
                                    : MatrixColumns<double>(py::array_t<double>(x), names);
    more = t[2].cast<py::dict>();
  } else {
    more = columns.cast<py::dict>();
  }
  for (const auto& [k, v] : more) out.push_back(ToColumn(py::str(k), v));
  return data::Table(std::move(out));
}

// ---- columns out, without copying ---------------------------------------------------------------

template <class T>
py::array View(std::shared_ptr<data::Column> owner, std::span<const T> values) {
  auto* keep = new std::shared_ptr<data::Column>(std::move(owner));
  py::capsule free(keep, [](void* p) { delete static_cast<std::shared_ptr<data::Column>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(values.size())}, values.data(), free);
}

// A column as numpy: numbers viewed in place (int64 with missing values as float64 with NaN),
// categories as (codes, categories) with -1 for missing.
py::object FromColumn(data::Column&& column) {
  auto c = std::make_shared<data::Column>(std::move(column));
  switch (c->type()) {
    case data::DataType::kFloat32:
      return View(c, c->f32());
    case data::DataType::kFloat64:
      return View(c, c->f64());
    case data::DataType::kInt64: {
      if (c->missing_count() == 0) return View(c, c->i64());
      py::array_t<double> out(static_cast<py::ssize_t>(c->size()));
      for (std::int64_t i = 0; i < c->size(); ++i) out.mutable_at(i) = c->GetDouble(i);
      return out;
    }
    case data::DataType::kCategorical:
      return py::make_tuple(View(c, c->codes()), py::cast(c->dictionary()));
  }
  return py::none();
}

py::dict ReadTable(const std::vector<std::string>& paths) {
  data::Table t;
  {
    py::gil_scoped_release nogil;
    t = data::Dataset::Open(paths).ReadTable();
  }
  py::dict out;
  for (int i = 0; i < t.num_columns(); ++i) {
    const std::string name = t.column(i).name();
    out[py::str(name)] = FromColumn(std::move(t.mutable_column(i)));
  }
  return out;
}

// ---- collectives on numpy arrays ----------------------------------------------------------------

// A job's communicator (escala launch, torchrun, Slurm, mpirun: the C++ side's discovery), or the
// size-1 one. Collectives run with the GIL released on the caller's arrays, in place.
class PyCommunicator {
 public:
  explicit PyCommunicator(std::unique_ptr<Communicator> c) : comm_(std::move(c)) {}
  static PyCommunicator Join() {
    py::gil_scoped_release nogil;
    return PyCommunicator(distributed::Connect(distributed::WorkerEnv::FromEnvironment(),
                                               distributed::ConnectOptions::FromEnvironment()));
  }
  static PyCommunicator Self() { return PyCommunicator(MakeSelfCommunicator()); }

  // A reference that keeps the communicator alive through a call, even if another thread
  // closes it meanwhile.
  std::shared_ptr<Communicator> get() const {
    std::shared_ptr<Communicator> c = std::atomic_load(&comm_);
    if (!c) throw Error(ErrorCode::kFailedPrecondition, "the communicator was closed");
    return c;
  }
  int rank() const { return get()->rank(); }
  int size() const { return get()->size(); }
  std::string backend() const { return std::string(get()->backend()); }

  void AllReduce(const py::array& a, const std::string& op) const {
    const auto [data, dtype] = Buffer(a);
    const ReduceOp rop = ParseOp(op);
    const auto c = get();
    py::gil_scoped_release nogil;
    CheckSameOnEveryRank(*c, static_cast<std::int64_t>(a.nbytes()), "allreduce");
    c->AllReduceAsync(data, static_cast<std::size_t>(a.size()), dtype, rop, {})->Wait();
  }
  void Broadcast(const py::array& a, int root) const {
    void* data = Buffer(a).first;
    const auto c = get();
    py::gil_scoped_release nogil;
    CheckSameOnEveryRank(*c, static_cast<std::int64_t>(a.nbytes()), "broadcast");
    c->BroadcastAsync(data, static_cast<std::size_t>(a.nbytes()), root, {})->Wait();
  }
  py::array AllGather(const py::array& a) const {
    const py::array in = py::array::ensure(a, py::array::c_style);
    std::vector<py::ssize_t> shape = {size()};
    for (py::ssize_t d = 0; d < in.ndim(); ++d) shape.push_back(in.shape(d));
    py::array out(in.dtype(), shape);
    const auto c = get();
    {
      py::gil_scoped_release nogil;
      CheckSameOnEveryRank(*c, static_cast<std::int64_t>(in.nbytes()), "allgather");
      c->AllGatherAsync(in.data(), static_cast<std::size_t>(in.nbytes()), out.mutable_data(), {})
          ->Wait();
    }
    return out;
  }
  std::vector<py::bytes> AllGatherBytes(const py::bytes& b) const {
    const std::string s = b;
    std::vector<std::vector<std::byte>> parts;
    const auto c = get();
    {
      py::gil_scoped_release nogil;
      parts = c->AllGatherV(std::as_bytes(std::span(s.data(), s.size())));
    }
    std::vector<py::bytes> out;
    for (const auto& p : parts) out.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
    return out;
  }
  void Barrier() const {
    const auto c = get();
    py::gil_scoped_release nogil;
    c->Barrier();
  }
  // Says goodbye to the job (the hosting rank waits for the others) once no call uses it;
  // idempotent.
  void Close() {
    std::shared_ptr<Communicator> c = std::atomic_exchange(&comm_, {});
    py::gil_scoped_release nogil;
    c.reset();
  }

 private:
  static std::pair<void*, DType> Buffer(const py::array& a) {
    if (!(a.flags() & py::array::c_style) || !a.writeable()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "collectives work in place: give a writeable C-contiguous array");
    }
    const char kind = a.dtype().kind();
    const auto size = a.dtype().itemsize();
    DType t;
    if (kind == 'f' && size == 4)
      t = DType::kFloat32;
    else if (kind == 'f' && size == 8)
      t = DType::kFloat64;
    else if (kind == 'i' && size == 4)
      t = DType::kInt32;
    else if (kind == 'i' && size == 8)
      t = DType::kInt64;
    else
      throw Error(ErrorCode::kInvalidArgument,
                  "dtype " + std::string(py::str(a.dtype())) +
                      ": collectives take float32, float64, int32 or int64");
    return {const_cast<void*>(a.data()), t};
  }
  // Every rank must pass the same number of bytes: checked first (one all-gather), so that a
  // mismatch is an error naming the ranks' sizes, not a hang or an overrun.
  static void CheckSameOnEveryRank(Communicator& c, std::int64_t bytes, const char* what) {
    if (c.size() == 1) return;
    const auto all = c.AllGather(std::span<const std::int64_t>(&bytes, 1));
    for (std::size_t r = 0; r < all.size(); ++r) {
      if (all[r] != bytes) {
        throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": rank " + std::to_string(r) +
                                                     " gave " + std::to_string(all[r]) +
                                                     " bytes, this rank " + std::to_string(bytes));
      }
    }
  }
  static ReduceOp ParseOp(const std::string& op) {
    if (op == "sum") return ReduceOp::kSum;
    if (op == "avg" || op == "mean") return ReduceOp::kAvg;
    if (op == "max") return ReduceOp::kMax;
    if (op == "min") return ReduceOp::kMin;
    throw Error(ErrorCode::kInvalidArgument, "op '" + op + "': one of sum, avg, max, min");
  }

  std::shared_ptr<Communicator> comm_;
};

// All-numeric files straight into one float32 matrix (the readers' dense path: no table in
// between), returned without a copy, with the label column apart when one is named.
py::tuple ReadDense(const std::vector<std::string>& paths, const std::string& label) {
  auto d = std::make_shared<data::DenseData>();
  {
    py::gil_scoped_release nogil;
    data::DenseSpec spec;
    spec.label = label;
    spec.row_ids = false;  // 8 bytes a row that numpy has no use for
    *d = data::Dataset::Open(paths).ReadDense(spec);
  }
  auto* keep = new std::shared_ptr<data::DenseData>(d);
  py::capsule free(keep, [](void* p) { delete static_cast<std::shared_ptr<data::DenseData>*>(p); });
  py::array x =
      py::array_t<float>({static_cast<py::ssize_t>(d->rows()), static_cast<py::ssize_t>(d->cols())},
                         d->features.data(), free);
  py::object y = py::none();
  if (!label.empty())
    y = py::array_t<float>({static_cast<py::ssize_t>(d->labels.size())}, d->labels.data(), free);
  return py::make_tuple(x, y, d->feature_names);
}

// ---- training -----------------------------------------------------------------------------------

// Runs `work` on its own thread while the calling (Python) thread watches for Ctrl-C. On a
// signal the communicator is aborted, so the work stops at its next collective (every training
// loop runs one per step, round or iteration), and KeyboardInterrupt is raised once it has:
// the process stays usable. A job's communicator is poisoned by this; the size-1 one is per
// call.
void RunInterruptible(Communicator& comm, const std::function<void()>& work) {
  std::packaged_task<void()> task(work);
  std::future<void> done = task.get_future();
  std::thread worker(std::move(task));
  bool interrupted = false;
  for (;;) {
    {
      py::gil_scoped_release nogil;
      if (done.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) break;
    }
    if (!interrupted && PyErr_CheckSignals() != 0) {
      interrupted = true;
      comm.Abort(Status(ErrorCode::kCancelled, "interrupted from Python (KeyboardInterrupt)"));
    }
  }
  worker.join();
  if (interrupted) throw py::error_already_set();
  done.get();  // rethrows the work's error
}

train::TrainSpec SpecFrom(const std::string& label, const py::dict& params) {
  train::TrainSpec spec;
  spec.label = label;
  spec.options.progress = false;
  for (const auto& [k, v] : params) {
    const std::string name = py::str(k);
    train::TrainParams().Set(spec, name, std::string(py::str(v)), name);
  }
  return spec;
}

// What a run reported, and the bundle's bytes.
py::tuple Outcome(const train::TrainOutcome& out) {
  py::dict report;
  report["stop_reason"] = out.result.stop_reason;
  report["seconds"] = out.result.seconds;
  report["epochs"] = out.result.history.size();
  report["valid"] = out.result.valid.values;
  if (out.selection) {
    py::list cands;
    for (const auto& cand : out.selection->candidates) {
      cands.append(py::dict(py::arg("params") = cand.params, py::arg("mean") = cand.mean,
                            py::arg("stddev") = cand.stddev, py::arg("folds") = cand.fold_scores));
    }
    report["cv"] = cands;
    report["best"] = out.selection->best;
  }
  return py::make_tuple(py::bytes(out.bundle.SerializeToString()), report);
}

// The job's communicator (kept alive by `held`), or a size-1 one in `self`.
Communicator& CommOf(const py::object& comm, std::unique_ptr<Communicator>* self,
                     std::shared_ptr<Communicator>* held) {
  if (comm.is_none()) {
    *self = MakeSelfCommunicator();
    return **self;
  }
  *held = comm.cast<const PyCommunicator&>().get();
  return **held;
}

// Runs train(valid table, communicator) on its own thread (RunInterruptible) with the job's
// communicator, or a size-1 one; returns the bundle's bytes and what the run reported.
template <class Fn>
py::tuple RunTraining(const py::object& valid, const py::object& comm, Fn&& train) {
  std::optional<data::Table> valid_table;
  if (!valid.is_none()) valid_table = ToTable(valid.cast<py::dict>());
  std::unique_ptr<Communicator> self;
  std::shared_ptr<Communicator> held;
  Communicator& c = CommOf(comm, &self, &held);
  train::TrainOutcome out;
  RunInterruptible(c, [&] { out = train(std::move(valid_table), c); });
  return Outcome(out);
}

// Trains on `columns` (label included) with parameters by their declared names (the CLI's flags
// without "--", underscores).
py::tuple Train(const py::object& columns, const std::string& label, const py::dict& params,
                const py::object& valid, const py::object& comm) {
  const train::TrainSpec spec = SpecFrom(label, params);
  data::Table table = ToTable(columns);
  return RunTraining(valid, comm, [&](std::optional<data::Table> v, Communicator& c) {
    return train::TrainTable(spec, std::move(table), std::move(v), c);
  });
}

// Trains on a float32 C-contiguous matrix of numeric features, viewed in place (the library's
// TrainMatrix: no table of its columns is built), with the label (and weight) columns in
// `targets`; as Train otherwise.
py::tuple TrainOnMatrix(const py::array_t<float, py::array::c_style>& x,
                        const std::vector<std::string>& names, const py::dict& targets,
                        const std::string& label, const py::dict& params, const py::object& valid,
                        const py::object& comm) {
  const train::TrainSpec spec = SpecFrom(label, params);
  ESCALA_CHECK(x.ndim() == 2, kInvalidArgument, "X: expected a 2-D matrix, got {} dimensions",
               x.ndim());
  train::MatrixShard shard{ConstMatrixViewF(x.data(), x.shape(0), x.shape(1)), names,
                           ToTable(targets)};
  return RunTraining(valid, comm, [&](std::optional<data::Table> v, Communicator& c) {
    return train::TrainMatrix(spec, std::move(shard), std::move(v), c);
  });
}

// Trains on files, globs or directories read by escala's readers, this rank's shard of them:
// in memory, or streamed in bounded memory when memory_budget > 0 (bytes; the models that can
// stream: escala train --memory-budget).
py::tuple TrainFiles(const std::vector<std::string>& paths, const std::string& label,
                     const py::dict& params, const std::vector<std::string>& valid_paths,
                     const py::object& comm, std::int64_t memory_budget) {
  const train::TrainSpec spec = SpecFrom(label, params);
  data::DatasetOptions options;
  options.label_column = label;
  std::unique_ptr<Communicator> self;
  std::shared_ptr<Communicator> held;
  Communicator& c = CommOf(comm, &self, &held);
  train::TrainOutcome out;
  RunInterruptible(c, [&] {
    const auto dataset = data::Dataset::Open(paths, options);
    std::optional<data::Table> valid;
    if (!valid_paths.empty()) valid = data::Dataset::Open(valid_paths, options).ReadTable();
    const data::Shard shard{c.rank(), c.size()};
    if (memory_budget > 0) {
      train::StreamSpec stream;
      stream.memory_budget = static_cast<std::size_t>(memory_budget);
      out = train::TrainStreamed(spec, dataset, shard, std::move(valid), c, stream);
    } else {
      out = train::TrainTable(spec, dataset.ReadTable(shard), std::move(valid), c);
    }
  });
  return Outcome(out);
}

// What the estimators' parameters need of files before training on them (one streamed pass,
// this rank's shard with comm): the rows over every rank, the label's classes merged over every
// rank when `classify` (and whether the label is categorical), the weight column's sum, and the
// columns other than the label and the weight.
py::dict ScanFiles(const std::vector<std::string>& paths, const std::string& label,
                   const std::string& weight, bool classify, const py::object& comm) {
  std::unique_ptr<Communicator> self;
  std::shared_ptr<Communicator> held;
  Communicator& c = CommOf(comm, &self, &held);
  data::DatasetOptions options;
  options.label_column = label;
  train::LabelScan scan;
  std::vector<std::string> classes;
  double weight_sum = 0;
  std::vector<std::string> names;
  bool categorical = false;
  RunInterruptible(c, [&] {
    const auto dataset = data::Dataset::Open(paths, options);
    data::StreamedTable table(dataset, data::Shard{c.rank(), c.size()},
                              train::StreamOptionsFor({}));
    const data::Schema& schema = table.schema();
    schema.Index(label);  // a missing label column fails here, listing the columns
    for (const auto& f : schema.fields()) {
      if (f.name != label && f.name != weight) names.push_back(f.name);
    }
    categorical = schema.field(schema.Index(label)).type == data::DataType::kCategorical;
    if (!weight.empty()) {
      schema.Index(weight);
      table.ForEachChunk([&](const data::Table& t) {
        const data::Column& w = t.column(weight);
        for (std::int64_t i = 0; i < t.num_rows(); ++i) weight_sum += w.GetDouble(i);
      });
      weight_sum = c.AllReduceScalar(weight_sum, ReduceOp::kSum);
    }
    scan = train::ScanLabels(table, label);
    scan.rows = c.AllReduceScalar<std::int64_t>(scan.rows, ReduceOp::kSum);
    if (classify) classes = train::ClassNames(scan.distinct, label, c);
  });
  py::dict out;
  out["rows"] = scan.rows;
  out["classes"] = classes;
  out["categorical"] = categorical;
  out["weight_sum"] = weight.empty() ? static_cast<double>(scan.rows) : weight_sum;
  out["columns"] = names;
  return out;
}

// ---- prediction ---------------------------------------------------------------------------------

// A computed matrix (predictions, features) as a new numpy array.
py::array_t<float> ToNumpy(const MatrixF& m) {
  py::array_t<float> a({static_cast<py::ssize_t>(m.rows()), static_cast<py::ssize_t>(m.cols())});
  for (std::int64_t i = 0; i < m.rows(); ++i) std::copy_n(m.row(i), m.cols(), a.mutable_data(i, 0));
  return a;
}

class Predictor {
 public:
  explicit Predictor(std::shared_ptr<const io::ModelBundle> b)
      : bundle_(std::move(b)), predictor_(bundle_) {}
  static Predictor FromBytes(const py::bytes& bytes) {
    return Predictor(std::make_shared<const io::ModelBundle>(
        io::ModelBundle::ParseFromString(std::string(bytes), "bundle bytes")));
  }
  static Predictor FromFile(const std::string& path) {
    return Predictor(std::make_shared<const io::ModelBundle>(io::LoadModelFile(path)));
  }

  py::array_t<float> Predict(const py::dict& columns) const {
    const data::Table t = ToTable(columns);
    MatrixF out;
    {
      py::gil_scoped_release nogil;
      predictor_.PredictTable(t, &out);
    }
    return ToNumpy(out);
  }
  // Files (CSV, NPY, LIBSVM; globs, directories) read in chunks of about 16 MiB and predicted in
  // turn: memory holds one chunk and the predictions. The model's categorical inputs are read as
  // categories whatever their values look like.
  py::array_t<float> PredictFiles(const std::vector<std::string>& paths) const {
    std::vector<float> values;
    std::int64_t rows = 0;
    const std::int64_t cols = predictor_.num_outputs();
    {
      py::gil_scoped_release nogil;
      data::DatasetOptions options;
      options.label_column.clear();
      for (const auto& f : bundle_->input_schema().fields()) {
        if (f.type == data::DataType::kCategorical) options.csv.column_types.push_back(f);
      }
      const auto dataset = data::Dataset::Open(paths, options);
      data::StreamedTable table(dataset, data::Shard{}, train::StreamOptionsFor({}));
      MatrixF out;
      table.ForEachChunk([&](const data::Table& chunk) {
        try {
          predictor_.PredictTable(chunk, &out);
        } catch (const Error& e) {
          throw e.WithContext("in the chunk from row " + std::to_string(rows));
        }
        values.insert(values.end(), out.data(), out.data() + out.rows() * out.cols());
        rows += out.rows();
      });
    }
    py::array_t<float> a({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
    std::copy(values.begin(), values.end(), a.mutable_data());
    return a;
  }
  // A row-major float32 or float64 matrix whose columns are the model's numeric inputs in
  // order, viewed in place (no table): the low-latency path of predict on arrays.
  template <class T>
  py::array_t<float> PredictMatrix(const py::array_t<T, py::array::c_style>& x) const {
    const auto& fields = bundle_->input_schema().fields();
    if (x.ndim() != 2 || x.shape(1) != static_cast<py::ssize_t>(fields.size())) {
      throw Error(ErrorCode::kInvalidArgument,
                  "expected a matrix of " + std::to_string(fields.size()) + " columns");
    }
    const std::int64_t rows = x.shape(0), cols = x.shape(1);
    py::array_t<float> out(
        {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(predictor_.num_outputs())});
    const T* data = x.data();
    float* o = out.mutable_data();
    py::gil_scoped_release nogil;
    constexpr std::size_t kBlock = 1024;
    ParallelFor(static_cast<std::size_t>(rows), kBlock, [&](std::size_t begin, std::size_t end) {
      io::PredictScratch scratch;
      features::RawBatch batch;
      batch.rows = static_cast<std::int64_t>(end - begin);
      for (std::int64_t j = 0; j < cols; ++j) {
        features::RawColumn c;
        c.kind = std::is_same_v<T, float> ? features::RawColumn::Kind::kFloat32
                                          : features::RawColumn::Kind::kFloat64;
        c.values = data + static_cast<std::int64_t>(begin) * cols + j;
        c.stride = cols;
        batch.columns.push_back(c);
      }
      MatrixViewF view(o + begin * static_cast<std::size_t>(predictor_.num_outputs()), batch.rows,
                       predictor_.num_outputs());
      predictor_.Predict(batch, view, scratch);
      io::Predictor::CheckFinite(view, static_cast<std::int64_t>(begin));
    });
    return out;
  }

  py::tuple Contributions(const py::dict& columns) const {
    const data::Table t = ToTable(columns);
    MatrixF out;
    {
      py::gil_scoped_release nogil;
      predictor_.ContributionsTable(t, &out);
    }
    return py::make_tuple(ToNumpy(out), predictor_.ContributionNames());
  }
  py::bytes Serialize() const { return py::bytes(bundle_->SerializeToString()); }
  void Save(const std::string& path) const { bundle_->Save(path); }
  void SaveOnnx(const std::string& path, int opset) const {
    py::gil_scoped_release release;
    io::OnnxExportOptions options;
    options.opset = opset;
    io::ExportOnnxFile(*bundle_, path, options);
  }
  const io::ModelBundle& bundle() const { return *bundle_; }
  std::shared_ptr<const io::ModelBundle> shared_bundle() const { return bundle_; }
  std::vector<std::pair<std::string, std::string>> Inputs() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : bundle_->input_schema().fields()) {
      out.emplace_back(f.name, std::string(data::DataTypeName(f.type)));
    }
    return out;
  }

 private:
  std::shared_ptr<const io::ModelBundle> bundle_;
  io::Predictor predictor_;
};

// ---- feature pipelines and statistics -----------------------------------------------------------

class PyPipeline {
 public:
  explicit PyPipeline(const std::string& spec) : p_(features::Pipeline::FromSpec(spec)) {}
  void Fit(const py::dict& columns, const std::vector<std::string>& exclude, bool keep_missing) {
    const data::Table t = ToTable(columns);
    features::FitOptions o;
    o.exclude = exclude;
    o.keep_missing = keep_missing;
    py::gil_scoped_release nogil;
    p_.Fit(t, o, *MakeSelfCommunicator());
  }
  py::array_t<float> Transform(const py::dict& columns) const {
    const data::Table t = ToTable(columns);
    MatrixF out;
    {
      py::gil_scoped_release nogil;
      p_.Transform(t, &out);
    }
    return ToNumpy(out);
  }
  std::vector<std::string> OutputNames() const { return p_.output_names(); }
  bool fitted() const { return p_.fitted(); }
  std::string Describe() const { return p_.Describe(); }
  py::bytes Serialize() const { return py::bytes(p_.Serialize()); }
  static PyPipeline Parse(const py::bytes& b) {
    PyPipeline p("");
    p.p_ = features::Pipeline::Parse(std::string(b));
    return p;
  }

 private:
  features::Pipeline p_;
};

features::TableSummary SummaryOf(const py::dict& columns, const std::string& label) {
  const data::Table t = ToTable(columns);
  features::SummaryOptions o;
  o.label = label;
  py::gil_scoped_release nogil;
  return features::Summarize(t, o, *MakeSelfCommunicator());
}

py::tuple Describe(const py::dict& columns, const std::string& label) {
  const features::TableSummary s = SummaryOf(columns, label);
  py::list rows;
  for (const auto& c : s.columns) {
    py::dict r;
    r["column"] = c.name;
    r["type"] = std::string(data::DataTypeName(c.type));
    r["count"] = c.count;
    r["missing"] = c.missing;
    r["mean"] = c.mean;
    r["std"] = c.stddev;
    r["min"] = c.min;
    r["25%"] = c.q25;
    r["50%"] = c.median;
    r["75%"] = c.q75;
    r["max"] = c.max;
    r["distinct"] = c.distinct;
    r["outliers"] = c.outliers;
    r["label_correlation"] = c.label_correlation;
    rows.append(r);
  }
  py::dict table;
  table["rows"] = s.rows;
  table["duplicate_rows"] = s.duplicate_rows;
  table["numeric"] = s.numeric;
  table["correlation"] = s.correlation;
  return py::make_tuple(rows, table);
}

std::string ReportHtml(const py::dict& columns, const std::string& label,
                       const std::string& title) {
  return features::FormatHtml(SummaryOf(columns, label), title);
}

// ---- the embedded prediction server -------------------------------------------------------------

class PyServer {
 public:
  PyServer(const std::vector<std::pair<std::string, py::object>>& models,
           const std::string& repository, const std::string& grpc_address,
           const std::string& http_address) {
    serving::PredictionServer::Builder b;
    b.SetGrpcAddress(grpc_address).SetHttpAddress(http_address);
    if (!repository.empty()) b.SetModelRepository(repository);
    for (const auto& [name, m] : models) {
      if (py::isinstance<Predictor>(m)) {
        b.AddModel(name, m.cast<const Predictor&>().shared_bundle());
      } else {
        b.AddModel(name, std::make_shared<const io::ModelBundle>(
                             io::LoadModelFile(py::str(m).cast<std::string>())));
      }
    }
    py::gil_scoped_release nogil;
    server_ = b.Build();
  }
  int grpc_port() const { return server_ ? server_->grpc_port() : 0; }
  int http_port() const { return server_ ? server_->http_port() : 0; }
  void Stop(double grace_seconds) {
    py::gil_scoped_release nogil;
    if (server_)
      server_->Shutdown(std::chrono::milliseconds(static_cast<std::int64_t>(grace_seconds * 1000)));
    server_.reset();
  }

 private:
  std::unique_ptr<serving::PredictionServer> server_;
};

// ---- the client ---------------------------------------------------------------------------------

// A response tensor as numpy. The server's shape is checked against the values it sent.
template <class T>
py::array Checked(const serving::Tensor& t, const std::vector<T>& values,
                  const std::vector<py::ssize_t>& shape, std::size_t elements) {
  if (values.size() != elements) {
    throw Error(ErrorCode::kDataLoss, "output '" + t.name + "': " + std::to_string(values.size()) +
                                          " values for shape of " + std::to_string(elements));
  }
  return py::array_t<T>(shape, values.data());
}

py::object TensorToNumpy(const serving::Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  std::size_t elements = 1;
  for (const std::int64_t d : t.shape) {
    if (d < 0) throw Error(ErrorCode::kDataLoss, "output '" + t.name + "': negative dimension");
    elements *= static_cast<std::size_t>(d);
  }
  if (t.datatype == "FP32") return Checked(t, t.fp32, shape, elements);
  if (t.datatype == "FP64") return Checked(t, t.fp64, shape, elements);
  if (t.datatype == "INT64") return Checked(t, t.int64, shape, elements);
  if (t.datatype == "INT32") return Checked(t, t.int32, shape, elements);
  if (t.datatype != "BYTES") {
    throw Error(ErrorCode::kUnimplemented,
                "output '" + t.name + "': datatype " + t.datatype + " is not decoded");
  }
  if (t.bytes.size() != elements) {
    throw Error(ErrorCode::kDataLoss, "output '" + t.name + "': " + std::to_string(t.bytes.size()) +
                                          " strings for shape of " + std::to_string(elements));
  }
  py::array out = py::array(py::dtype("O"), shape);
  auto* p = static_cast<PyObject**>(out.mutable_data());
  for (std::size_t i = 0; i < t.bytes.size(); ++i) {
    Py_XDECREF(p[i]);
    p[i] = py::str(t.bytes[i]).release().ptr();
  }
  return out;
}

// A tensor to send: a 2-D numeric array is the dense "features" input; a dict's 1-D arrays are
// the named raw columns (numbers as FP64, text as BYTES).
std::vector<serving::Tensor> RequestTensors(const py::object& x) {
  std::vector<serving::Tensor> out;
  if (!py::isinstance<py::dict>(x)) {
    const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!a || a.ndim() != 2) {
      throw Error(ErrorCode::kInvalidArgument,
                  "infer: give a 2-D numeric array (the model's features) or a dict of columns");
    }
    out.push_back(serving::Tensor::Fp32("features", {a.shape(0), a.shape(1)},
                                        std::vector<float>(a.data(), a.data() + a.size())));
    return out;
  }
  for (const auto& [k, v] : x.cast<py::dict>()) {
    const data::Column c = ToColumn(py::str(k), v);
    if (c.type() == data::DataType::kCategorical) {
      std::vector<std::string> s;
      for (std::int64_t i = 0; i < c.size(); ++i) s.emplace_back(c.category(i));
      out.push_back(serving::Tensor::Bytes(c.name(), std::move(s)));
    } else {
      std::vector<double> d;
      for (std::int64_t i = 0; i < c.size(); ++i) d.push_back(c.GetDouble(i));
      out.push_back(serving::Tensor::Fp64(c.name(), std::move(d)));
    }
  }
  return out;
}

class PyClient {
 public:
  explicit PyClient(const std::string& target) : c_(std::make_unique<serving::Client>(target)) {}
  py::dict Infer(const std::string& model, const py::object& x,
                 const std::vector<std::string>& outputs, const std::string& version) {
    const auto tensors = RequestTensors(x);
    serving::InferResult r;
    {
      py::gil_scoped_release nogil;
      r = c_->Infer(model, tensors, outputs, version);
    }
    py::dict out;
    for (const auto& t : r.outputs) out[py::str(t.name)] = TensorToNumpy(t);
    return out;
  }
  bool Ready() {
    py::gil_scoped_release nogil;
    return c_->ServerReady();
  }

 private:
  std::unique_ptr<serving::Client> c_;
};

// escala::Error -> the Python class registered for its code (escala/__init__.py sets them).
py::dict& ErrorClasses() {
  static py::dict* classes = new py::dict();
  return *classes;
}

void TranslateErrors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error& e) {
    const auto code = static_cast<int>(e.code());
    py::dict& classes = ErrorClasses();
    py::object cls =
        classes.contains(py::int_(code)) ? classes[py::int_(code)] : classes[py::int_(-1)];
    py::object err = cls(e.what());
    err.attr("code") = std::string(ErrorCodeName(e.code()));
    PyErr_SetObject(cls.ptr(), err.ptr());
  }
}

std::vector<py::dict> Parameters() {
  std::vector<py::dict> out;
  for (const auto& p : train::TrainParams().params()) {
    out.push_back(py::dict(py::arg("name") = p.info.name, py::arg("default") = p.info.default_text,
                           py::arg("range") = p.info.range, py::arg("help") = p.info.help,
                           py::arg("group") = p.info.group));
  }
  return out;
}

}  // namespace
}  // namespace escala::python

PYBIND11_MODULE(_core, m) {
  using namespace escala::python;
  m.doc() = "escala's C++ core (use the escala package, not this module)";
  m.attr("__version__") = ESCALA_VERSION_STRING;
  m.def("_set_error_classes", [](const py::dict& d) {
    for (const auto& [k, v] : d) ErrorClasses()[k] = v;
  });
  py::register_exception_translator(&TranslateErrors);
  m.def("set_num_threads", &escala::SetNumThreads, py::arg("threads"),
        "Caps escala's threads (0: all cores); returns the cap");
  m.def("num_threads", &escala::NumThreads);
  py::class_<PyClient>(m, "Client")
      .def(py::init<const std::string&>(), py::arg("target"))
      .def("infer", &PyClient::Infer, py::arg("model"), py::arg("x"),
           py::arg("outputs") = std::vector<std::string>{}, py::arg("version") = "")
      .def("ready", &PyClient::Ready);
  m.def("read_table", &ReadTable, py::arg("paths"),
        "Reads CSV/LIBSVM/NPY/IDX files, globs or directories into {name: array}");
  m.def("read_dense", &ReadDense, py::arg("paths"), py::arg("label") = "",
        "Reads all-numeric files into (float32 matrix, labels or None, feature names)");
  m.def("train_files", &TrainFiles, py::arg("paths"), py::arg("label"), py::arg("params"),
        py::arg("valid_paths") = std::vector<std::string>{}, py::arg("comm") = py::none(),
        py::arg("memory_budget") = 0,
        "Trains on files (this rank's shard), streamed when memory_budget > 0 bytes");
  m.def("scan_files", &ScanFiles, py::arg("paths"), py::arg("label"), py::arg("weight"),
        py::arg("classify"), py::arg("comm"),
        "Rows, classes, weight sum and columns of files, in one streamed pass");
  m.def("train_matrix", &TrainOnMatrix, py::arg("x"), py::arg("names"), py::arg("targets"),
        py::arg("label"), py::arg("params"), py::arg("valid"), py::arg("comm"),
        "Trains on a float32 C-contiguous feature matrix viewed in place (pipeline 'none').");
  m.def("train", &Train, py::arg("columns"), py::arg("label"), py::arg("params"),
        py::arg("valid") = py::none(), py::arg("comm") = py::none(),
        "Trains on {name: array} (this rank's shard with comm); returns (bundle bytes, report)");
  py::class_<PyCommunicator>(m, "Communicator")
      .def_static("join", &PyCommunicator::Join)
      .def_static("self", &PyCommunicator::Self)
      .def_property_readonly("rank", &PyCommunicator::rank)
      .def_property_readonly("size", &PyCommunicator::size)
      .def_property_readonly("backend", &PyCommunicator::backend)
      .def("allreduce", &PyCommunicator::AllReduce, py::arg("array"), py::arg("op") = "sum")
      .def("broadcast", &PyCommunicator::Broadcast, py::arg("array"), py::arg("root") = 0)
      .def("allgather", &PyCommunicator::AllGather, py::arg("array"))
      .def("allgather_bytes", &PyCommunicator::AllGatherBytes, py::arg("data"))
      .def("barrier", &PyCommunicator::Barrier)
      .def("close", &PyCommunicator::Close);
  m.def("parameters", &Parameters, "The declared training parameters");
  m.def("log_to_python", &LogToPython, "Routes escala's logs to Python's logger 'escala'");
  m.def(
      "set_log_level",
      [](const std::string& level) { escala::SetLogLevel(escala::ParseLogLevel(level)); },
      py::arg("level"), "trace, debug, info, warn, error or off");
  py::class_<PyPipeline>(m, "Pipeline")
      .def(py::init<const std::string&>(), py::arg("spec"))
      .def("fit", &PyPipeline::Fit, py::arg("columns"), py::arg("exclude"),
           py::arg("keep_missing") = false)
      .def("transform", &PyPipeline::Transform)
      .def_property_readonly("output_names", &PyPipeline::OutputNames)
      .def_property_readonly("fitted", &PyPipeline::fitted)
      .def("describe", &PyPipeline::Describe)
      .def("serialize", &PyPipeline::Serialize)
      .def_static("parse", &PyPipeline::Parse);
  m.def("describe", &Describe, py::arg("columns"), py::arg("label") = "");
  m.def("report_html", &ReportHtml, py::arg("columns"), py::arg("label") = "",
        py::arg("title") = "escala report");
  py::class_<PyServer>(m, "Server")
      .def(py::init<const std::vector<std::pair<std::string, py::object>>&, const std::string&,
                    const std::string&, const std::string&>(),
           py::arg("models"), py::arg("repository"), py::arg("grpc_address"),
           py::arg("http_address"))
      .def_property_readonly("grpc_port", &PyServer::grpc_port)
      .def_property_readonly("http_port", &PyServer::http_port)
      .def("stop", &PyServer::Stop, py::arg("grace_seconds") = 5.0);
  py::class_<Predictor>(m, "Predictor")
      .def_static("from_bytes", &Predictor::FromBytes)
      .def_static("from_file", &Predictor::FromFile)
      .def("predict", &Predictor::Predict)
      .def("predict_files", &Predictor::PredictFiles)
      .def("predict_matrix", &Predictor::PredictMatrix<float>)
      .def("predict_matrix", &Predictor::PredictMatrix<double>)
      .def("contributions", &Predictor::Contributions)
      .def("serialize", &Predictor::Serialize)
      .def("save", &Predictor::Save)
      .def("save_onnx", &Predictor::SaveOnnx, py::arg("path"), py::arg("opset") = 17)
      .def_property_readonly("inputs", &Predictor::Inputs)
      .def_property_readonly("class_names",
                             [](const Predictor& p) { return p.bundle().class_names; })
      .def_property_readonly("label", [](const Predictor& p) { return p.bundle().label; })
      .def_property_readonly(
          "task",
          [](const Predictor& p) {
            return std::string(escala::models::TaskName(p.bundle().model->task()));
          })
      .def_property_readonly("feature_names",
                             [](const Predictor& p) { return p.bundle().pipeline.output_names(); })
      .def_property_readonly("training_config",
                             [](const Predictor& p) { return p.bundle().training_config; })
      .def_property_readonly("metrics", [](const Predictor& p) { return p.bundle().metrics; })
      .def("describe", [](const Predictor& p) { return p.bundle().model->Describe(); });
}
