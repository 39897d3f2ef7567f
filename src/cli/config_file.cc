#include "cli/config_file.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

#include "escala/core/error.h"

namespace escala::cli {
namespace {

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsName(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

// Formats escala does not read, by extension.
void CheckExtension(const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : Lower(path.substr(dot + 1));
  const char* format = ext == "yaml" || ext == "yml" ? "YAML" : ext == "json" ? "JSON" : nullptr;
  if (format != nullptr) {
    Throw(ErrorCode::kInvalidArgument,
          "--config {}: {} is not read; use TOML ([train] section, keys are the long option "
          "names, e.g. epochs = 3)",
          path, format);
  }
}

// Where the file's lines are being checked.
struct Cursor {
  const std::string& path;
  int line = 0;
  const CLI::App* section = nullptr;
  std::string section_name;
  [[noreturn]] void Fail(const std::string& what) const {
    Throw(ErrorCode::kInvalidArgument, "--config {}, line {}: {}", path, line, what);
  }
};

std::string Subcommands(const CLI::App& app) {
  std::string names;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + s->get_name();
  }
  return names;
}

// "train" or "a.b" -> that (nested) subcommand of `root`; null if there is none.
const CLI::App* FindSubcommand(const CLI::App& root, const std::vector<std::string>& path) {
  const CLI::App* app = &root;
  for (const std::string& name : path) {
    try {
      app = app->get_subcommand(name);
    } catch (const CLI::OptionNotFound&) {
      return nullptr;
    }
  }
  return app;
}

void CheckSection(const std::string& line, const CLI::App& root, Cursor& at) {
  std::string name = line.substr(1, line.size() - 2);
  if (name.size() > 1 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (line.back() != ']' || !IsName(name)) at.Fail("malformed section header '" + line + "'");
  at.section_name = name;
  at.section = Lower(name) == "default" ? &root : FindSubcommand(root, Split(name, '.'));
  if (at.section == nullptr) {
    at.Fail("[" + name + "] names no escala subcommand (" + Subcommands(root) + ")");
  }
}

// CLI11 looks a key up as --key, -k (one letter) or a positional's name.
void CheckKey(std::string key, const Cursor& at) {
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front()) {
    key = key.substr(1, key.size() - 2);
  }
  if (!IsName(key)) at.Fail("'" + key + "' is not a key (keys are long option names)");
  auto parts = Split(key, '.');
  const std::string name = parts.back();
  parts.pop_back();
  const CLI::App* app = FindSubcommand(*at.section, parts);
  const CLI::Option* opt = app == nullptr ? nullptr : app->get_option_no_throw("--" + name);
  if (app != nullptr && opt == nullptr && name.size() == 1)
    opt = app->get_option_no_throw("-" + name);
  if (app != nullptr && opt == nullptr) opt = app->get_option_no_throw(name);
  if (opt == nullptr) {
    const bool top = at.section->get_parent() == nullptr;
    at.Fail("unknown key '" + key + "' " +
            (top ? "at the top (escala's global options)" : "in [" + at.section_name + "]") +
            ": keys are the long option names of `escala " + (top ? "" : at.section_name + " ") +
            "--help`, without dashes");
  }
  if (!opt->get_configurable()) at.Fail("'" + key + "' cannot be set in a config file");
}

// One line of TOML/INI as CLI11 reads it; returns true when a multi-line array starts.
bool CheckLine(const std::string& raw, const CLI::App& root, Cursor& at) {
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\r') || u == 0x7f) {
      at.Fail("not text (a binary file?); expected TOML: [section] headers and key = value lines");
    }
  }
  const std::string line = Trim(raw);
  if (line.empty() || line.front() == '#' || line.front() == ';') return false;
  if (line.front() == '[') {
    CheckSection(line, root, at);
    return false;
  }
  const auto eq = line.find('=');
  if (eq == std::string::npos) {
    at.Fail("'" + line + "' is not key = value" +
            (line.find(':') != std::string::npos ? " (YAML is not read; use TOML)" : ""));
  }
  CheckKey(Trim(line.substr(0, eq)), at);
  const std::string value = Trim(line.substr(eq + 1));
  return value.size() > 1 && value.front() == '[' && value.back() != ']';
}

}  // namespace

void CheckConfigFile(const std::string& path, const CLI::App& app) {
  CheckExtension(path);
  std::ifstream in(path, std::ios::binary);
  ESCALA_CHECK(in.good(), kNotFound, "--config {}: cannot read the file", path);
  Cursor at{path};
  at.section = &app;
  bool in_array = false;
  for (std::string line; std::getline(in, line);) {
    ++at.line;
    if (in_array) {
      in_array = Trim(line).empty() || Trim(line).back() != ']';
      continue;
    }
    in_array = CheckLine(line, app, at);
  }
  ESCALA_CHECK(!in_array, kInvalidArgument, "--config {}: an array '[' is not closed", path);
}

void GuardConfigOption(CLI::App& app) {
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI::Option* config = app.get_option("--config");
  config->check(CLI::Validator(
      [&app](std::string& path) {
        CheckConfigFile(path, app);
        return std::string();
      },
      /*validator_desc=*/"", "config-file"));
}

}  // namespace escala::cli
