// Parsing of pipeline specs ("impute(median) | standardize | onehot(species)") into step
// definitions. Private to the features module.
#ifndef ESCALA_SRC_FEATURES_PIPELINE_SPEC_H_
#define ESCALA_SRC_FEATURES_PIPELINE_SPEC_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace escala::features::internal {

struct StepDef {
  std::string kind;                                         // lower-case step name
  std::string text;                                         // the step as written
  std::vector<std::string> positional;                      // bare arguments, in order
  std::map<std::string, std::vector<std::string>> options;  // key -> value list
  std::string raw;                                          // the whole argument text (expr)

  bool has(const std::string& key) const { return options.count(key) != 0; }
  // Single value of an option, or `fallback`.
  std::string get(const std::string& key, const std::string& fallback) const;
  double number(const std::string& key, double fallback) const;
  std::vector<double> numbers(const std::string& key) const;
  bool flag(const std::string& key, bool fallback) const;
};

// Splits the spec into steps and arguments. Throws kInvalidArgument naming the step text.
std::vector<StepDef> ParseSpec(std::string_view spec);

}  // namespace escala::features::internal

#endif  // ESCALA_SRC_FEATURES_PIPELINE_SPEC_H_
