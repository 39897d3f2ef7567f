#include "escala/io/history.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "escala/core/file_util.h"
#include "io/history_proto.h"

namespace escala::io {

namespace {

std::vector<std::string> MetricNames(const std::vector<EpochRecord>& history) {
  std::vector<std::string> names;
  for (const auto& r : history) {
    for (const auto& [k, v] : r.valid) {
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    }
  }
  return names;
}

}  // namespace

void WriteHistoryCsv(const std::vector<EpochRecord>& history, const std::string& path) {
  const auto names = MetricNames(history);
  std::string out = "epoch,step,train_loss,learning_rate,seconds,samples_per_second,comm_seconds";
  for (const auto& n : names) out += ",valid_" + n;
  out += "\n";
  for (const auto& r : history) {
    out += fmt::format("{},{},{:.9g},{:.9g},{:.6f},{:.1f},{:.6f}", r.epoch, r.step, r.train_loss,
                       r.learning_rate, r.seconds, r.samples_per_second, r.comm_seconds);
    for (const auto& n : names) {
      auto it = r.valid.find(n);
      out += it == r.valid.end() ? "," : fmt::format(",{:.9g}", it->second);
    }
    out += "\n";
  }
  WriteFileAtomic(path, out);
}

void WriteHistoryJson(const std::vector<EpochRecord>& history, const std::string& path) {
  auto num = [](double v) { return std::isfinite(v) ? fmt::format("{:.9g}", v) : "null"; };
  std::string out = "[\n";
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& r = history[i];
    out += fmt::format(
        "  {{\"epoch\": {}, \"step\": {}, \"train_loss\": {}, \"learning_rate\": {}, "
        "\"seconds\": {}, \"samples_per_second\": {}, \"comm_seconds\": {}, \"valid\": {{",
        r.epoch, r.step, num(r.train_loss), num(r.learning_rate), num(r.seconds),
        num(r.samples_per_second), num(r.comm_seconds));
    bool first = true;
    for (const auto& [k, v] : r.valid) {
      out += fmt::format("{}\"{}\": {}", first ? "" : ", ", k, num(v));
      first = false;
    }
    out += i + 1 < history.size() ? "}},\n" : "}}\n";
  }
  out += "]\n";
  WriteFileAtomic(path, out);
}

void HistoryToProto(const std::vector<EpochRecord>& history, HistoryProto* out) {
  for (const auto& r : history) {
    auto* h = out->Add();
    h->set_epoch(r.epoch);
    h->set_step(r.step);
    h->set_train_loss(r.train_loss);
    h->set_learning_rate(r.learning_rate);
    h->set_seconds(r.seconds);
    h->set_samples_per_second(r.samples_per_second);
    h->set_comm_seconds(r.comm_seconds);
    for (const auto& [k, v] : r.valid) {
      auto* mv = h->add_valid();
      mv->set_name(k);
      mv->set_value(v);
    }
  }
}

std::vector<EpochRecord> HistoryFromProto(const HistoryProto& in) {
  std::vector<EpochRecord> out;
  out.reserve(static_cast<std::size_t>(in.size()));
  for (const auto& h : in) {
    EpochRecord& r = out.emplace_back();
    r.epoch = h.epoch();
    r.step = h.step();
    r.train_loss = h.train_loss();
    r.learning_rate = h.learning_rate();
    r.seconds = h.seconds();
    r.samples_per_second = h.samples_per_second();
    r.comm_seconds = h.comm_seconds();
    for (const auto& mv : h.valid()) r.valid[mv.name()] = mv.value();
  }
  return out;
}

}  // namespace escala::io
