// Command-line flags (and so config-file keys) from a table of declared parameters
// (escala/core/params.h): one flag per parameter, named FlagName(name), its help, range and
// default from the table. A parsed value is read by the table into the target at once, so a
// malformed value fails naming the flag before the command starts any work.
#ifndef ESCALA_CLI_PARAM_FLAGS_H_
#define ESCALA_CLI_PARAM_FLAGS_H_

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "escala/core/params.h"

namespace escala::cli {

// What `--help` shows after the flag.
inline std::string TypeName(ParamType type) {
  switch (type) {
    case ParamType::kInt:
      return "INT";
    case ParamType::kNumber:
      return "NUMBER";
    case ParamType::kIntList:
      return "INT,...";
    default:
      return "TEXT";
  }
}

template <class Target>
void AddParamFlags(CLI::App* cmd, const ParamTable<Target>& table, std::shared_ptr<Target> target) {
  for (const auto& p : table.params()) {
    const std::string flag = "--" + FlagName(p.info.name);
    std::string help = p.info.help;
    if (!p.info.range.empty()) help += " (" + p.info.range + ")";
    if (p.info.type == ParamType::kBool) {
      cmd->add_flag_function(
          flag,
          [&table, target, name = p.info.name, flag](std::int64_t n) {
            table.Set(*target, name, n > 0 ? "true" : "false", flag);
          },
          help);
      continue;
    }
    CLI::Option* o = cmd->add_option_function<std::string>(
        flag,
        [&table, target, name = p.info.name, flag](const std::string& v) {
          table.Set(*target, name, v, flag);
        },
        help);
    o->type_name(TypeName(p.info.type));
    if (!p.info.default_text.empty()) o->default_str(p.info.default_text);
  }
}

}  // namespace escala::cli

#endif  // ESCALA_CLI_PARAM_FLAGS_H_
