// `escala serve` and `escala score`.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <signal.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/param_flags.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/core/progress.h"
#include "escala/data/csv.h"
#include "escala/data/npy.h"
#include "escala/data/stream.h"
#include "escala/io/bundle.h"
#include "escala/io/model_file.h"
#include "escala/serving/client.h"
#include "escala/serving/params.h"
#include "escala/serving/server.h"

namespace escala::cli {

namespace {

struct ServeFlags {
  // The declared server parameters (escala/serving/params.h), set flag by flag.
  std::shared_ptr<serving::ServeSpec> spec = std::make_shared<serving::ServeSpec>();
  std::vector<std::string> models;  // name=path.bundle
};

void RunServe(const ServeFlags& f) {
  const serving::ServeSpec& s = *f.spec;
  ESCALA_CHECK(!s.model_repository.empty() || !f.models.empty(), kInvalidArgument,
               "give --model-repository DIR or --model NAME=FILE");
  // Signals are taken synchronously by this thread; every thread the server starts inherits the
  // blocked mask, so SIGTERM is never delivered to a gRPC worker.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serving::PredictionServer::Builder b = serving::BuilderFor(s);
  for (const auto& m : f.models) {
    const std::size_t eq = m.find('=');
    ESCALA_CHECK(eq != std::string::npos && eq > 0, kInvalidArgument,
                 "--model '{}': expected NAME=path/to/model.bundle", m);
    b.AddModel(m.substr(0, eq),
               std::make_shared<const io::ModelBundle>(io::LoadModelFile(m.substr(eq + 1))));
  }
  auto server = b.Build();
  // One line on stdout for scripts and tests (ports are real even when 0 was asked for).
  std::printf("escala serve: grpc port %d, http port %d\n", server->grpc_port(),
              server->http_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  ESCALA_LOG_INFO("received {}; draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server->Shutdown(std::chrono::milliseconds(static_cast<std::int64_t>(s.drain_grace_secs * 1000)));
  ESCALA_LOG_INFO("stopped");
}

struct ScoreFlags {
  std::string model;
  std::vector<std::string> data;
  std::string out;
  std::vector<std::string> keep;
  double chunk_mb = 16;
  bool contributions = false;
  DataFlags data_flags;
};

// Predictions with the contributions beside them (one row each), for the .npy output.
MatrixF Beside(const MatrixF& p, const MatrixF& c) {
  MatrixF out(p.rows(), p.cols() + c.cols());
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    std::copy_n(p.row(i), p.cols(), out.row(i));
    std::copy_n(c.row(i), c.cols(), out.row(i) + p.cols());
  }
  return out;
}

// ",v1,v2,...\n" of a contributions row (or just the newline without them).
std::string ContributionFields(const MatrixF& c, std::int64_t i) {
  std::string out;
  for (std::int64_t j = 0; j < c.cols(); ++j) out += fmt::format(",{}", c(i, j));
  return out + "\n";
}

std::string CsvField(const data::Column& c, std::int64_t i) {
  if (c.is_missing(i)) return "";
  if (c.type() == data::DataType::kCategorical) {
    const std::string_view s = c.category(i);
    if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q.push_back('"');
      q.push_back(ch);
    }
    return q + "\"";
  }
  return fmt::format("{}", c.GetDouble(i));
}

void RunScore(const ScoreFlags& f) {
  const auto bundle = std::make_shared<const io::ModelBundle>(io::LoadModelFile(f.model));
  io::Predictor predictor(bundle);
  auto dopts = f.data_flags.WithCategoricalInputs(bundle->input_schema(), f.data).ToOptions();
  const auto dataset = data::Dataset::Open(f.data, dopts);
  CheckOutputIsNotInput(f.out, "--out", InputPaths(f.data, f.data_flags));
  CheckOutputIsNotInput(f.out, "--out", {f.model});
  ESCALA_CHECK(f.chunk_mb > 0 && f.chunk_mb <= 4096, kInvalidArgument,
               "--chunk-mb must be in (0, 4096], got {}", f.chunk_mb);
  data::StreamOptions so;
  so.block_bytes = static_cast<std::size_t>(f.chunk_mb * (1 << 20));
  data::DatasetStream stream(dataset, {}, so);
  const models::Task task = bundle->model->task();
  const bool npy = f.out.size() > 4 && f.out.substr(f.out.size() - 4) == ".npy";
  ESCALA_CHECK(!npy || f.keep.empty(), kInvalidArgument, "--keep needs CSV output");
  ESCALA_CHECK(!f.contributions || predictor.HasContributions(), kInvalidArgument,
               "--contributions: a {} model does not explain its predictions (gbdt models do)",
               bundle->model->kind());
  const std::vector<std::string> contribution_names =
      f.contributions ? predictor.ContributionNames() : std::vector<std::string>{};

  std::unique_ptr<data::NpyWriter> npy_writer;
  std::unique_ptr<AtomicFileWriter> csv;
  if (npy) {
    npy_writer = std::make_unique<data::NpyWriter>(
        f.out, predictor.num_outputs() + static_cast<std::int64_t>(contribution_names.size()));
  } else {
    csv = std::make_unique<AtomicFileWriter>(f.out);
    std::string header;
    for (const auto& k : f.keep) header += k + ",";
    if (task == models::Task::kRegression) {
      header += "prediction";
    } else {
      for (std::int64_t c = 0; c < (task == models::Task::kBinary ? 2 : predictor.num_outputs());
           ++c) {
        header += "p_" +
                  (static_cast<std::size_t>(c) < bundle->class_names.size()
                       ? bundle->class_names[static_cast<std::size_t>(c)]
                       : std::to_string(c)) +
                  ",";
      }
      header += "label";
    }
    for (const auto& name : contribution_names) header += ",contrib:" + name;
    csv->Write(header + "\n");
  }
  ProgressOptions popts;
  popts.unit = "rows";
  ProgressReporter progress("score", 0, popts);
  data::Table chunk;
  MatrixF p, contrib(0, 0);
  std::vector<std::int32_t> classes;
  std::int64_t rows = 0;
  {
    while (stream.Next(&chunk)) {
      if (chunk.num_rows() == 0) continue;
      predictor.PredictTable(chunk, &p);
      if (f.contributions) predictor.ContributionsTable(chunk, &contrib);
      contrib.Resize(p.rows(), f.contributions ? contrib.cols() : 0);
      if (npy) {
        const MatrixF rows_out = f.contributions ? Beside(p, contrib) : MatrixF();
        npy_writer->Append((f.contributions ? rows_out : std::as_const(p)).view());
      } else {
        io::Predictor::Classes(task, std::as_const(p).view(), &classes);
        std::string out;
        for (std::int64_t i = 0; i < p.rows(); ++i) {
          for (const auto& k : f.keep) out += CsvField(chunk.column(k), i) + ",";
          if (task == models::Task::kRegression) {
            out += fmt::format("{}", p(i, 0)) + ContributionFields(contrib, i);
            continue;
          }
          if (task == models::Task::kBinary) {
            out += fmt::format("{},{},", 1.0f - p(i, 0), p(i, 0));
          } else {
            for (std::int64_t c = 0; c < p.cols(); ++c) out += fmt::format("{},", p(i, c));
          }
          const auto cls = static_cast<std::size_t>(classes[static_cast<std::size_t>(i)]);
          out +=
              (cls < bundle->class_names.size() ? bundle->class_names[cls] : std::to_string(cls)) +
              ContributionFields(contrib, i);
        }
        csv->Write(out);
      }
      rows += chunk.num_rows();
      progress.Add(static_cast<std::uint64_t>(chunk.num_rows()));
    }
    if (npy) {
      npy_writer->Close();
    } else {
      csv->Commit();
    }
  }
  progress.Finish();
  std::printf("scored %lld rows -> %s (%s)\n", static_cast<long long>(rows), f.out.c_str(),
              stream.report().Summary().c_str());
}

struct QueryFlags {
  std::string server = "127.0.0.1:8001";
  std::string model;
  std::string data;
  std::int64_t rows = 10;
  std::string ca_file;
};

std::string InputNames(const serving::ModelInfo& info) {
  std::string names;
  for (const auto& in : info.inputs) names += (names.empty() ? "" : ", ") + in.name;
  return names;
}

// Sends rows of a CSV file to a running server, one tensor per column as the model's metadata
// asks, and prints what comes back.
void RunQuery(const QueryFlags& f) {
  serving::ClientOptions co;
  co.tls.enabled = !f.ca_file.empty();
  co.tls.ca_file = f.ca_file;
  serving::Client client(f.server, co);
  const auto info = client.ModelMetadata(f.model);
  data::Table t = data::ReadCsv(f.data);
  if (f.rows > 0 && t.num_rows() > f.rows) t = t.Slice(0, f.rows);
  const std::int64_t n = t.num_rows();
  std::vector<serving::Tensor> inputs;
  // Columns go by name (a column missing from the file is an error naming it); the file's other
  // columns, a label among them, are not sent.
  for (const auto& in : info.inputs) {
    ESCALA_CHECK(t.schema().Find(in.name) >= 0, kInvalidArgument,
                 "{}: no column '{}', which model '{}' takes as input (its inputs: {})", f.data,
                 in.name, f.model, InputNames(info));
    const data::Column& c = t.column(in.name);
    if (in.datatype == "BYTES") {
      std::vector<std::string> v;
      for (std::int64_t i = 0; i < n; ++i)
        v.emplace_back(c.is_missing(i) ? "" : std::string(c.category(i)));
      inputs.push_back(serving::Tensor::Bytes(in.name, std::move(v)));
    } else {
      std::vector<double> v;
      for (std::int64_t i = 0; i < n; ++i) v.push_back(c.GetDouble(i));
      inputs.push_back(serving::Tensor::Fp64(in.name, std::move(v)));
    }
  }
  const auto r = client.Infer(f.model, inputs);
  fmt::print("model {} version {}: {} row(s)\n", r.model_name, r.model_version, n);
  for (std::int64_t i = 0; i < n; ++i) {
    std::string line = fmt::format("  row {:>3}:", i);
    for (const auto& o : r.outputs) {
      if (o.datatype == "BYTES") {
        line += fmt::format(" {}={}", o.name, o.bytes[static_cast<std::size_t>(i)]);
      } else if (o.datatype == "FP32") {
        const std::size_t k = o.fp32.size() / static_cast<std::size_t>(n);
        std::string vals;
        for (std::size_t j = 0; j < k; ++j)
          vals +=
              fmt::format("{}{:.4f}", j ? "," : "", o.fp32[static_cast<std::size_t>(i) * k + j]);
        line += fmt::format(" {}=[{}]", o.name, vals);
      }
    }
    fmt::print("{}\n", line);
  }
}

}  // namespace

void RegisterQuery(CLI::App& app) {
  auto f = std::make_shared<QueryFlags>();
  auto* cmd = app.add_subcommand(
      "query", "Send rows of a CSV file to a running server and print the predictions");
  cmd->add_option("--server", f->server, "Server address host:port")->capture_default_str();
  cmd->add_option("--model", f->model, "Model name")->required();
  cmd->add_option("--data", f->data, "CSV file with the model's input columns")->required();
  cmd->add_option("--rows", f->rows, "Send at most this many rows (0: all)")->capture_default_str();
  cmd->add_option("--tls-ca", f->ca_file, "CA certificate of a TLS server");
  cmd->callback([f] { RunQuery(*f); });
}

void RegisterServe(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd =
      app.add_subcommand("serve", "Serve model bundles over the Open Inference Protocol (gRPC)");
  AddParamFlags(cmd, serving::ServeParams(), f->spec);
  cmd->add_option("--model", f->models,
                  "Serve one model without a repository: NAME=FILE (a bundle, or an XGBoost "
                  "model.json / model.ubj)");
  cmd->callback([f] { RunServe(*f); });
}

void RegisterScore(CLI::App& app) {
  auto f = std::make_shared<ScoreFlags>();
  auto* cmd = app.add_subcommand("score", "Batch-score data files with a model bundle (streaming)");
  cmd->add_option("--model", f->model, "Model bundle (or an XGBoost model .json / .ubj)")
      ->required();
  cmd->add_option("--data", f->data, "Data: files, globs or directories")->required();
  cmd->add_option("--out", f->out, "Predictions: .csv (probabilities and label) or .npy")
      ->required();
  cmd->add_option("--keep", f->keep, "Input columns copied into the CSV output (e.g. an id)");
  cmd->add_option("--chunk-mb", f->chunk_mb, "Input read per chunk (bounds memory)")
      ->capture_default_str();
  cmd->add_flag("--contributions", f->contributions,
                "gbdt: also write each feature's TreeSHAP contribution to the raw score (and the "
                "bias), columns contrib:<feature>; they sum to the raw score");
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunScore(*f); });
}

}  // namespace escala::cli
