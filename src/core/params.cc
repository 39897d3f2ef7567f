#include "escala/core/params.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace escala {

std::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kBool:
      return "bool";
    case ParamType::kInt:
      return "int";
    case ParamType::kNumber:
      return "number";
    case ParamType::kString:
      return "string";
    case ParamType::kIntList:
      return "int list";
  }
  return "?";
}

std::string FlagName(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

namespace {

// A Markdown table cell: pipes escaped, empty shown as a dash.
std::string Cell(std::string_view text) {
  if (text.empty()) return "—";
  std::string out;
  for (char c : text) {
    if (c == '|' || c == '<') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string ParamsMarkdown(std::string_view heading, const std::vector<ParamInfo>& params) {
  std::vector<std::string> groups;
  for (const auto& p : params) {
    if (std::find(groups.begin(), groups.end(), p.group) == groups.end()) groups.push_back(p.group);
  }
  std::string out = fmt::format("## {}\n", heading);
  for (const auto& g : groups) {
    out += fmt::format("\n### {}\n\n", g);
    out += "| parameter (flag, config key) | type | default | valid values | what it does |\n";
    out += "| --- | --- | --- | --- | --- |\n";
    for (const auto& p : params) {
      if (p.group != g) continue;
      out += fmt::format("| `{}` (`--{}`) | {} | {} | {} | {} |\n", p.name, FlagName(p.name),
                         ParamTypeName(p.type), Cell(p.default_text), Cell(p.range), Cell(p.help));
    }
  }
  return out;
}

namespace param {

namespace {
std::string FormatNumber(double v) {
  return fmt::format("{}", v);
}
}  // namespace

Range Any() {
  return {"", [](double v) { return !std::isnan(v); }};
}
Range AtLeast(double lo) {
  return {">= " + FormatNumber(lo), [lo](double v) { return v >= lo; }};
}
Range Above(double lo) {
  return {"> " + FormatNumber(lo), [lo](double v) { return v > lo; }};
}
Range Closed(double lo, double hi) {
  return {fmt::format("in [{}, {}]", FormatNumber(lo), FormatNumber(hi)),
          [lo, hi](double v) { return v >= lo && v <= hi; }};
}
Range HalfOpen(double lo, double hi) {
  return {fmt::format("in [{}, {})", FormatNumber(lo), FormatNumber(hi)),
          [lo, hi](double v) { return v >= lo && v < hi; }};
}
Range Custom(std::string text, std::function<bool(double)> contains) {
  return {std::move(text), std::move(contains)};
}

double ReadNumber(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  ESCALA_CHECK(!s.empty() && end == s.c_str() + s.size(), kInvalidArgument, "'{}' is not a number",
               text);
  ESCALA_CHECK(std::isfinite(v), kInvalidArgument, "'{}' is not a finite number", text);
  return v;
}

std::int64_t ReadInt(std::string_view text, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  ESCALA_CHECK(
      !text.empty() && end == text.data() + text.size() && ec != std::errc::invalid_argument,
      kInvalidArgument, "'{}' is not an integer", text);
  ESCALA_CHECK(ec != std::errc::result_out_of_range && v >= lo && v <= hi, kInvalidArgument,
               "'{}' is outside [{}, {}]", text, lo, hi);
  return v;
}

bool ReadBool(std::string_view text) {
  for (std::string_view t : {"true", "1", "yes", "on"}) {
    if (text == t) return true;
  }
  for (std::string_view f : {"false", "0", "no", "off"}) {
    if (text == f) return false;
  }
  Throw(ErrorCode::kInvalidArgument, "'{}' is not true or false", text);
}

std::vector<std::int64_t> ReadIntList(std::string_view text) {
  constexpr std::int64_t kMax = std::int64_t{1} << 24;
  std::vector<std::int64_t> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    ESCALA_CHECK(!item.empty() && end == item.data() + item.size() && ec == std::errc() && v > 0 &&
                     v <= kMax,
                 kInvalidArgument, "'{}': item {} ('{}') is not a positive integer up to {}", text,
                 out.size() + 1, item, kMax);
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace param
}  // namespace escala
