#include "features/pipeline_spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <fast_float/fast_float.h>

#include "escala/core/error.h"
#include "features/pipeline_steps.h"

namespace escala::features::internal {

namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool ParseNumber(std::string_view s, double* out) {
  const auto r = fast_float::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Options whose value is a list: bare numbers after them extend the list ("q=0.01,0.99").
const std::set<std::string>& ListOptions() {
  static const std::set<std::string> k = {"q", "range", "boundaries"};
  return k;
}

// Splits on `sep` at parenthesis depth 0 (and outside back-quotes).
std::vector<std::string> SplitTop(std::string_view s, char sep) {
  std::vector<std::string> parts;
  int depth = 0;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '`') quoted = !quoted;
    if (quoted) continue;
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == sep && depth == 0) {
      parts.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

StepDef ParseStep(const std::string& text) {
  StepDef d;
  d.text = text;
  const std::size_t open = text.find('(');
  std::string name = Trim(open == std::string::npos ? std::string_view(text)
                                                    : std::string_view(text).substr(0, open));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name == "scale" || name == "standard_scaler") name = "standardize";
  if (name == "one_hot") name = "onehot";
  const StepKind* kind = LookupStepKind(name);
  ESCALA_CHECK(kind != nullptr, kInvalidArgument,
               "pipeline step '{}': unknown step '{}' (known: {})", text, name, StepKindList());
  d.kind = name;
  if (open == std::string::npos) return d;
  const std::size_t close = text.rfind(')');
  ESCALA_CHECK(close != std::string::npos && close > open && Trim(text.substr(close + 1)).empty(),
               kInvalidArgument, "pipeline step '{}': unbalanced parentheses", text);
  int depth = 0;
  for (std::size_t i = open; i <= close; ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')' && --depth == 0 && i != close) {
      Throw(ErrorCode::kInvalidArgument, "pipeline step '{}': unbalanced parentheses", text);
    }
  }
  ESCALA_CHECK(depth == 0, kInvalidArgument, "pipeline step '{}': unbalanced parentheses", text);
  d.raw = Trim(std::string_view(text).substr(open + 1, close - open - 1));
  if (kind->raw_argument) return d;  // e.g. an expression, parsed by Expression
  std::string last_list;
  for (const std::string& item_raw : SplitTop(d.raw, ',')) {
    const std::string item = Trim(item_raw);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq != std::string::npos) {
      std::string key = Trim(std::string_view(item).substr(0, eq));
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const std::string value = Trim(std::string_view(item).substr(eq + 1));
      ESCALA_CHECK(!key.empty() && !value.empty(), kInvalidArgument,
                   "pipeline step '{}': malformed option '{}'", text, item);
      d.options[key].push_back(value);
      last_list = ListOptions().count(key) ? key : "";
      continue;
    }
    double v;
    if (!last_list.empty() && ParseNumber(item, &v)) {
      d.options[last_list].push_back(item);
      continue;
    }
    last_list.clear();
    std::string col = item;
    if (col.size() >= 2 && col.front() == '`' && col.back() == '`')
      col = col.substr(1, col.size() - 2);
    d.positional.push_back(col);
  }
  return d;
}

}  // namespace

std::string StepDef::get(const std::string& key, const std::string& fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  ESCALA_CHECK(it->second.size() == 1, kInvalidArgument,
               "pipeline step '{}': option '{}' takes one value", text, key);
  return it->second[0];
}

double StepDef::number(const std::string& key, double fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  double v;
  ESCALA_CHECK(it->second.size() == 1 && ParseNumber(it->second[0], &v), kInvalidArgument,
               "pipeline step '{}': option '{}' must be one number", text, key);
  return v;
}

std::vector<double> StepDef::numbers(const std::string& key) const {
  std::vector<double> out;
  auto it = options.find(key);
  if (it == options.end()) return out;
  for (const auto& s : it->second) {
    double v;
    ESCALA_CHECK(ParseNumber(s, &v), kInvalidArgument,
                 "pipeline step '{}': option '{}' has a non-numeric value '{}'", text, key, s);
    out.push_back(v);
  }
  return out;
}

bool StepDef::flag(const std::string& key, bool fallback) const {
  const std::string v = get(key, fallback ? "true" : "false");
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  Throw(ErrorCode::kInvalidArgument, "pipeline step '{}': option '{}' must be true or false", text,
        key);
}

std::vector<StepDef> ParseSpec(std::string_view spec) {
  // Comments to end of line; newlines separate steps like '|'.
  std::string cleaned;
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == '#') {
      while (i < spec.size() && spec[i] != '\n') ++i;
      cleaned.push_back('\n');
      continue;
    }
    cleaned.push_back(spec[i]);
  }
  std::vector<StepDef> steps;
  for (const std::string& piece : SplitTop(cleaned, '|')) {
    // A newline at depth 0 also separates steps.
    for (const std::string& line : SplitTop(piece, '\n')) {
      const std::string text = Trim(line);
      if (!text.empty()) steps.push_back(ParseStep(text));
    }
  }
  return steps;
}

}  // namespace escala::features::internal
