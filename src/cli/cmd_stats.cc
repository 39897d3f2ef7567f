// `escala stats`: explore a dataset.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/features/summary.h"

namespace escala::cli {

namespace {

struct StatsFlags {
  std::vector<std::string> data;
  std::string label;
  std::string html;
  std::string json;
  int top_k = 5;
  int bins = 20;
  bool no_duplicates = false;
  DataFlags data_flags;
};

void RunStats(const StatsFlags& f) {
  for (const auto& [flag, out] : {std::pair{"--json", f.json}, std::pair{"--html", f.html}}) {
    if (!out.empty()) CheckOutputIsNotInput(out, flag, InputPaths(f.data, f.data_flags));
  }
  auto comm = MakeWorkerCommunicator();
  const data::Table t = ReadShard(f.data, f.data_flags, *comm, "data", f.label);
  features::SummaryOptions o;
  o.label = f.label;
  o.top_k = f.top_k;
  o.histogram_bins = f.bins;
  o.duplicates = !f.no_duplicates;
  const auto s = features::Summarize(t, o, *comm);
  if (comm->rank() != 0) return;
  fmt::print("{}", features::FormatText(s));
  if (!f.json.empty()) {
    WriteFileAtomic(f.json, features::FormatJson(s));
    ESCALA_LOG_INFO("wrote {}", f.json);
  }
  if (!f.html.empty()) {
    std::string title = "escala stats:";
    for (const auto& d : f.data) title += " " + d;
    WriteFileAtomic(f.html, features::FormatHtml(s, title));
    ESCALA_LOG_INFO("wrote {}", f.html);
  }
}

}  // namespace

void RegisterStats(CLI::App& app) {
  auto f = std::make_shared<StatsFlags>();
  auto* cmd = app.add_subcommand(
      "stats", "Summarise a dataset: per-column statistics, correlations, outliers, duplicates");
  cmd->add_option("--data", f->data, "Data: files, globs or directories")->required();
  cmd->add_option("--label", f->label, "Label column: report each column's correlation with it");
  cmd->add_option("--html", f->html, "Write a self-contained HTML report (histograms, heat map)");
  cmd->add_option("--json", f->json, "Write the statistics as JSON");
  cmd->add_option("--top", f->top_k, "Most frequent values shown per column")
      ->capture_default_str();
  cmd->add_option("--bins", f->bins, "Histogram bins")->capture_default_str();
  cmd->add_flag("--no-duplicates", f->no_duplicates, "Skip the duplicate-row count");
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunStats(*f); });
}

}  // namespace escala::cli
