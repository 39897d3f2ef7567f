#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "escala/core/error.h"
#include "escala/models/xgboost.h"

namespace escala::models {
namespace {

using Json = nlohmann::json;

// The largest category code a categorical split may name: every code below it is a whole float.
constexpr double kMaxCategory = 1 << 24;
// A split's category set is a bitset as long as its largest code: a file listing one large code
// per node would make gigabytes from kilobytes. The whole model's sets may take this many 32-bit
// words (256 MiB).
constexpr std::size_t kMaxCategoryWords = std::size_t{1} << 26;

// A bare NaN, Infinity or -Infinity (which XGBoost writes for non-finite floats, and which JSON
// does not allow) becomes the string "NaN", "Infinity" or "-Infinity"; Number() reads them back.
// Strings are copied as they are.
std::string QuoteNonFinite(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 64);
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    std::size_t matched = 0;
    for (std::string_view token : {"NaN", "Infinity", "-Infinity"}) {
      if (text.substr(i, token.size()) == token) {
        out += fmt::format("\"{}\"", token);
        matched = token.size();
        break;
      }
    }
    if (matched > 0) {
      i += matched - 1;
    } else {
      out += c;
    }
  }
  return out;
}

// JSON when the first byte after '{' (and any blanks) opens a key or closes the object; UBJSON
// otherwise (its keys start with a length marker).
bool IsTextJson(std::string_view bytes) {
  const std::size_t open = bytes.find_first_not_of(" \t\r\n");
  const std::size_t next = bytes.find_first_not_of(" \t\r\n", open + 1);
  return next != std::string_view::npos && (bytes[next] == '"' || bytes[next] == '}');
}

Json ParseBytes(std::string_view bytes, std::string_view what) {
  try {
    if (IsTextJson(bytes)) return Json::parse(QuoteNonFinite(bytes));
    return Json::from_ubjson(bytes.begin(), bytes.end());
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: not an XGBoost model file: {}", what, e.what()));
  }
}

// Where a value sits, for messages: "learner.gradient_booster.model.trees[3].left_children".
class Reader {
 public:
  explicit Reader(std::string_view what) : what_(what) {}

  [[noreturn]] void Fail(std::string_view path, std::string_view why) const {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: {}: {}", what_, path, why));
  }

  const Json& Member(const Json& obj, const std::string& path, std::string_view key) const {
    if (!obj.is_object()) Fail(path, "expected an object");
    const auto it = obj.find(key);
    if (it == obj.end()) Fail(path, fmt::format("missing \"{}\"", key));
    return *it;
  }

  // A number, a bool, or a string holding one ("5E-1", "NaN", "[5E-1]").
  double Number(const Json& v, const std::string& path) const {
    if (v.is_number()) return v.get<double>();
    if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
    if (!v.is_string()) Fail(path, "expected a number");
    std::string s = v.get<std::string>();
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    char* end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
      Fail(path, fmt::format("'{}' is not a number", s));
    return x;
  }

  double Number(const Json& obj, const std::string& path, std::string_view key) const {
    return Number(Member(obj, path, key), fmt::format("{}.{}", path, key));
  }

  std::int64_t Integer(const Json& obj, const std::string& path, std::string_view key,
                       std::int64_t lo, std::int64_t hi) const {
    const double x = Number(obj, path, key);
    if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)) || x != std::floor(x)) {
      Fail(fmt::format("{}.{}", path, key),
           fmt::format("{} is not a whole number in [{}, {}]", x, lo, hi));
    }
    return static_cast<std::int64_t>(x);
  }

  // An array of numbers; `size` >= 0 requires that many.
  std::vector<double> Numbers(const Json& obj, const std::string& path, std::string_view key,
                              std::int64_t size = -1) const {
    const Json& a = Member(obj, path, key);
    const std::string where = fmt::format("{}.{}", path, key);
    if (!a.is_array()) Fail(where, "expected an array");
    if (size >= 0 && static_cast<std::int64_t>(a.size()) != size) {
      Fail(where, fmt::format("{} values, expected {}", a.size(), size));
    }
    std::vector<double> out;
    out.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      out.push_back(Number(a[i], fmt::format("{}[{}]", where, i)));
    }
    return out;
  }

  std::string Text(const Json& obj, const std::string& path, std::string_view key) const {
    const Json& v = Member(obj, path, key);
    if (!v.is_string()) Fail(fmt::format("{}.{}", path, key), "expected a string");
    return v.get<std::string>();
  }

 private:
  std::string_view what_;
};

// ---- objectives ---------------------------------------------------------------------------------

struct ObjectiveInfo {
  std::string_view xgboost;
  Task task;
  std::string_view escala;  // TreeEnsemble's objective (empty: the task's default link)
  enum class Margin { kIdentity, kLogit, kLog } margin;
};

constexpr ObjectiveInfo kObjectives[] = {
    {"reg:squarederror", Task::kRegression, "squared_error", ObjectiveInfo::Margin::kIdentity},
    {"reg:squaredlogerror", Task::kRegression, "", ObjectiveInfo::Margin::kIdentity},
    {"reg:pseudohubererror", Task::kRegression, "huber", ObjectiveInfo::Margin::kIdentity},
    {"reg:absoluteerror", Task::kRegression, "absolute_error", ObjectiveInfo::Margin::kIdentity},
    {"binary:logistic", Task::kBinary, "logistic", ObjectiveInfo::Margin::kLogit},
    // XGBoost takes logitraw's base_score as a margin already.
    {"binary:logitraw", Task::kBinary, "logistic", ObjectiveInfo::Margin::kIdentity},
    {"multi:softprob", Task::kMulticlass, "softmax", ObjectiveInfo::Margin::kIdentity},
    {"multi:softmax", Task::kMulticlass, "softmax", ObjectiveInfo::Margin::kIdentity},
    {"count:poisson", Task::kRegression, "poisson", ObjectiveInfo::Margin::kLog},
    {"reg:gamma", Task::kRegression, "gamma", ObjectiveInfo::Margin::kLog},
    {"reg:tweedie", Task::kRegression, "tweedie", ObjectiveInfo::Margin::kLog},
};

const ObjectiveInfo& FindObjective(const Reader& r, const std::string& name) {
  for (const ObjectiveInfo& o : kObjectives) {
    if (o.xgboost == name) return o;
  }
  std::string known;
  for (const ObjectiveInfo& o : kObjectives) {
    known += fmt::format("{}{}", known.empty() ? "" : ", ", o.xgboost);
  }
  r.Fail("learner.objective.name",
         fmt::format("objective '{}' is not supported (escala reads {})", name, known));
}

// XGBoost keeps base_score as a prediction (a probability, a mean count) and turns it into a
// margin for the objective's link.
float BaseMargin(const Reader& r, const ObjectiveInfo& o, double base_score) {
  const auto refuse = [&](std::string_view want) {
    r.Fail("learner.learner_model_param.base_score",
           fmt::format("{} is not {} as {} needs", base_score, want, o.xgboost));
  };
  switch (o.margin) {
    case ObjectiveInfo::Margin::kLogit:
      if (!(base_score > 0 && base_score < 1)) refuse("in (0, 1)");
      return static_cast<float>(std::log(base_score / (1 - base_score)));
    case ObjectiveInfo::Margin::kLog:
      if (!(base_score > 0 && std::isfinite(base_score))) refuse("positive");
      return static_cast<float>(std::log(base_score));
    case ObjectiveInfo::Margin::kIdentity:
      break;
  }
  if (!std::isfinite(base_score)) refuse("finite");
  return static_cast<float>(base_score);
}

// ---- trees --------------------------------------------------------------------------------------

// One XGBoost tree's arrays, checked against each other.
struct XTree {
  std::string path;
  std::int64_t n = 0;
  std::vector<double> left, right, feature, split_type, default_left, condition, hessian, loss;
  // Per node: the category set of a categorical split (empty otherwise).
  std::vector<std::vector<std::uint32_t>> categories;
};

XTree ReadTree(const Reader& r, const Json& t, std::string path, std::int64_t num_features) {
  XTree x;
  x.path = std::move(path);
  x.left = r.Numbers(t, x.path, "left_children");
  x.n = static_cast<std::int64_t>(x.left.size());
  if (x.n == 0) r.Fail(x.path + ".left_children", "a tree needs at least one node");
  x.right = r.Numbers(t, x.path, "right_children", x.n);
  x.feature = r.Numbers(t, x.path, "split_indices", x.n);
  x.default_left = r.Numbers(t, x.path, "default_left", x.n);
  x.condition = r.Numbers(t, x.path, "split_conditions", x.n);
  x.hessian = r.Numbers(t, x.path, "sum_hessian", x.n);
  x.loss = r.Numbers(t, x.path, "loss_changes", x.n);
  x.split_type = t.contains("split_type") ? r.Numbers(t, x.path, "split_type", x.n)
                                          : std::vector<double>(static_cast<std::size_t>(x.n), 0);
  for (std::int64_t i = 0; i < x.n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (x.left[u] < 0) continue;
    if (!(x.feature[u] >= 0 && x.feature[u] < static_cast<double>(num_features))) {
      r.Fail(fmt::format("{}.split_indices[{}]", x.path, i),
             fmt::format("feature {} is not one of the model's {}", x.feature[u], num_features));
    }
  }
  return x;
}

void ReadCategories(const Reader& r, const Json& t, XTree& x, std::size_t* words) {
  x.categories.assign(static_cast<std::size_t>(x.n), {});
  if (!t.contains("categories_nodes")) return;
  const auto nodes = r.Numbers(t, x.path, "categories_nodes");
  const auto n = static_cast<std::int64_t>(nodes.size());
  const auto begins = r.Numbers(t, x.path, "categories_segments", n);
  const auto sizes = r.Numbers(t, x.path, "categories_sizes", n);
  const auto codes = r.Numbers(t, x.path, "categories");
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    const std::string where = fmt::format("{}.categories_nodes[{}]", x.path, k);
    const double node = nodes[k], begin = begins[k], size = sizes[k];
    if (!(node >= 0 && node < static_cast<double>(x.n))) r.Fail(where, "node out of range");
    if (!(begin >= 0 && size >= 0 && begin + size <= static_cast<double>(codes.size()))) {
      r.Fail(where, fmt::format("segment [{}, +{}) is outside the {} categories", begin, size,
                                codes.size()));
    }
    auto& set = x.categories[static_cast<std::size_t>(node)];
    for (auto i = static_cast<std::size_t>(begin); i < static_cast<std::size_t>(begin + size);
         ++i) {
      if (!(codes[i] >= 0 && codes[i] < kMaxCategory && codes[i] == std::floor(codes[i]))) {
        r.Fail(fmt::format("{}.categories[{}]", x.path, i),
               fmt::format("{} is not a category code in [0, 2^24)", codes[i]));
      }
      set.push_back(static_cast<std::uint32_t>(codes[i]));
    }
    if (!set.empty()) *words += *std::max_element(set.begin(), set.end()) / 32 + 1;
    if (*words > kMaxCategoryWords) {
      r.Fail(where, fmt::format("the model's category sets need more than {} MiB as bitsets",
                                kMaxCategoryWords * 4 >> 20));
    }
  }
}

// XGBoost's node order, breadth first from the root, so that children come after their parent
// (escala's tree invariant). A node reached twice (a cycle, a shared child) or a child out of
// range is refused.
std::vector<std::int64_t> Order(const Reader& r, const XTree& x) {
  std::vector<std::int64_t> order = {0};
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(x.n), 0);
  seen[0] = 1;
  for (std::size_t q = 0; q < order.size(); ++q) {
    const auto i = static_cast<std::size_t>(order[q]);
    if (x.left[i] < 0) continue;
    for (const double c : {x.left[i], x.right[i]}) {
      if (!(c >= 1 && c < static_cast<double>(x.n)) || seen[static_cast<std::size_t>(c)]) {
        r.Fail(fmt::format("{} node {}", x.path, i),
               fmt::format("child {} is out of range or reached twice", c));
      }
      seen[static_cast<std::size_t>(c)] = 1;
      order.push_back(static_cast<std::int64_t>(c));
    }
  }
  return order;
}

// Appends XGBoost node i as a node of `tree` (children filled in by the caller). A categorical
// split keeps its set and swaps its sides: XGBoost sends the set right, escala left.
void AppendNode(const XTree& x, std::size_t i, float leaf_scale, Tree& tree) {
  const bool leaf = x.left[i] < 0;
  const bool categorical = !leaf && x.split_type[i] == 1;
  const bool empty_set = categorical && x.categories[i].empty();
  tree.feature.push_back(leaf ? -1 : static_cast<std::int32_t>(x.feature[i]));
  // A split on an empty set sends every value to XGBoost's left child: a numeric split that no
  // value passes, with the children swapped like every categorical split.
  tree.threshold.push_back(leaf || categorical ? (empty_set ? -INFINITY : 0.0f)
                                               : static_cast<float>(x.condition[i]));
  tree.left.push_back(-1);
  tree.right.push_back(-1);
  tree.default_left.push_back(
      static_cast<std::uint8_t>(!leaf && ((x.default_left[i] != 0) != categorical)));
  tree.value.push_back(leaf ? static_cast<float>(x.condition[i]) * leaf_scale : 0.0f);
  tree.cover.push_back(static_cast<float>(x.hessian[i]));
  tree.gain.push_back(leaf ? 0.0f : static_cast<float>(x.loss[i]));
}

Tree ConvertTree(const Reader& r, const Json& t, const std::string& path, std::int64_t num_features,
                 float leaf_scale, std::size_t* category_words) {
  XTree x = ReadTree(r, t, path, num_features);
  ReadCategories(r, t, x, category_words);
  const std::vector<std::int64_t> order = Order(r, x);
  std::vector<std::int32_t> index_of(static_cast<std::size_t>(x.n), -1);
  for (std::size_t k = 0; k < order.size(); ++k) {
    index_of[static_cast<std::size_t>(order[k])] = static_cast<std::int32_t>(k);
  }
  Tree tree;
  for (const std::int64_t o : order) AppendNode(x, static_cast<std::size_t>(o), leaf_scale, tree);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto i = static_cast<std::size_t>(order[k]);
    if (x.left[i] < 0) continue;
    const std::int32_t l = index_of[static_cast<std::size_t>(x.left[i])];
    const std::int32_t rr = index_of[static_cast<std::size_t>(x.right[i])];
    const bool swap = x.split_type[i] == 1;
    tree.left[k] = swap ? rr : l;
    tree.right[k] = swap ? l : rr;
    if (swap && !x.categories[i].empty()) tree.SetCategories(k, x.categories[i]);
  }
  return tree;
}

// ---- the model ----------------------------------------------------------------------------------

// base_score as XGBoost writes it: "5E-1" (one value), or since 3.1 "[a,b,c]" (one per class,
// each already a margin for the multiclass objectives). One value serves every output.
std::vector<float> BaseMargins(const Reader& r, const ObjectiveInfo& o, const Json& v,
                               std::int64_t outputs) {
  const std::string where = "learner.learner_model_param.base_score";
  std::vector<double> values;
  if (v.is_string() && v.get<std::string>().find(',') != std::string::npos) {
    std::string text = v.get<std::string>();
    if (text.size() < 2 || text.front() != '[' || text.back() != ']') r.Fail(where, "malformed");
    text = text.substr(1, text.size() - 2);
    for (std::size_t start = 0; start <= text.size();) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      values.push_back(r.Number(Json(text.substr(start, comma - start)), where));
      start = comma + 1;
    }
  } else {
    values.push_back(r.Number(v, where));
  }
  if (values.size() != 1 && static_cast<std::int64_t>(values.size()) != outputs) {
    r.Fail(where, fmt::format("{} values for {} outputs", values.size(), outputs));
  }
  std::vector<float> out;
  for (std::int64_t j = 0; j < outputs; ++j) {
    out.push_back(BaseMargin(r, o, values[values.size() == 1 ? 0 : static_cast<std::size_t>(j)]));
  }
  return out;
}

struct Header {
  const ObjectiveInfo* objective = nullptr;
  std::int64_t num_features = 0;
  std::int64_t num_outputs = 1;
  std::vector<float> base_margin;  // one per output
};

std::array<int, 3> ReadVersion(const Reader& r, const Json& root) {
  const auto v = r.Numbers(root, "model", "version", 3);
  const std::array<int, 3> version = {static_cast<int>(v[0]), static_cast<int>(v[1]),
                                      static_cast<int>(v[2])};
  if (version[0] < 1 || version[0] > 3) {
    r.Fail("version", fmt::format("XGBoost {}.{}.{}: escala reads models written by XGBoost 1.0 "
                                  "to 3.x",
                                  version[0], version[1], version[2]));
  }
  return version;
}

Header ReadHeader(const Reader& r, const Json& learner) {
  Header h;
  const Json& objective = r.Member(learner, "learner", "objective");
  h.objective = &FindObjective(r, r.Text(objective, "learner.objective", "name"));
  const Json& param = r.Member(learner, "learner", "learner_model_param");
  const std::string where = "learner.learner_model_param";
  h.num_features = r.Integer(param, where, "num_feature", 1, 1 << 24);
  const std::int64_t classes = r.Integer(param, where, "num_class", 0, 1 << 16);
  if (param.contains("num_target") && r.Integer(param, where, "num_target", 0, 1 << 16) > 1) {
    r.Fail(where + ".num_target", "multi-target models are not supported");
  }
  if (h.objective->task == Task::kMulticlass) {
    if (classes < 2) r.Fail(where + ".num_class", "a multi: objective needs num_class >= 2");
    h.num_outputs = classes;
  }
  h.base_margin = BaseMargins(r, *h.objective, r.Member(param, where, "base_score"), h.num_outputs);
  return h;
}

// The trees and, for dart, each tree's weight.
std::vector<Tree> ReadTrees(const Reader& r, const Json& learner, const Header& h) {
  const Json& booster = r.Member(learner, "learner", "gradient_booster");
  const std::string name = r.Text(booster, "learner.gradient_booster", "name");
  if (name != "gbtree" && name != "dart") {
    r.Fail("learner.gradient_booster.name",
           fmt::format("booster '{}' is not supported (escala reads gbtree and dart)", name));
  }
  const bool dart = name == "dart";
  const std::string base = dart ? "learner.gradient_booster.gbtree" : "learner.gradient_booster";
  const Json& model = r.Member(dart ? r.Member(booster, base, "gbtree") : booster, base, "model");
  const std::string mpath = base + ".model";
  const Json& trees = r.Member(model, mpath, "trees");
  if (!trees.is_array()) r.Fail(mpath + ".trees", "expected an array");
  const auto n = static_cast<std::int64_t>(trees.size());
  const auto info = r.Numbers(model, mpath, "tree_info", n);
  const auto weights = dart ? r.Numbers(booster, "learner.gradient_booster", "weight_drop", n)
                            : std::vector<double>(static_cast<std::size_t>(n), 1.0);
  // Trees of class c go to output c: escala lays them out round by round, tree t for output
  // t mod C, so they are regrouped per class in their order.
  std::vector<std::vector<Tree>> per_output(static_cast<std::size_t>(h.num_outputs));
  std::size_t category_words = 0;
  for (std::int64_t t = 0; t < n; ++t) {
    const auto u = static_cast<std::size_t>(t);
    const std::string path = fmt::format("{}.trees[{}]", mpath, t);
    if (!(info[u] >= 0 && info[u] < static_cast<double>(h.num_outputs))) {
      r.Fail(fmt::format("{}.tree_info[{}]", mpath, t),
             fmt::format("output {} is not one of the model's {}", info[u], h.num_outputs));
    }
    per_output[static_cast<std::size_t>(info[u])].push_back(ConvertTree(
        r, trees[u], path, h.num_features, static_cast<float>(weights[u]), &category_words));
  }
  std::vector<Tree> out;
  out.reserve(static_cast<std::size_t>(n));
  const std::size_t rounds = per_output[0].size();
  for (std::size_t c = 0; c < per_output.size(); ++c) {
    if (per_output[c].size() != rounds) {
      r.Fail(mpath + ".tree_info", fmt::format("output {} has {} trees, output 0 has {}", c,
                                               per_output[c].size(), rounds));
    }
  }
  for (std::size_t k = 0; k < rounds; ++k) {
    for (auto& trees_c : per_output) out.push_back(std::move(trees_c[k]));
  }
  return out;
}

void ReadFeatures(const Reader& r, const Json& learner, std::int64_t d, XgboostModel& m) {
  const auto n = static_cast<std::size_t>(d);
  if (learner.contains("feature_names") && !learner["feature_names"].empty()) {
    const Json& names = learner["feature_names"];
    if (!names.is_array() || names.size() != n) {
      r.Fail("learner.feature_names", fmt::format("expected {} names", d));
    }
    for (const Json& v : names) {
      if (!v.is_string()) r.Fail("learner.feature_names", "expected strings");
      m.feature_names.push_back(v.get<std::string>());
    }
  } else {
    for (std::size_t j = 0; j < n; ++j) m.feature_names.push_back(fmt::format("f{}", j));
  }
  m.categorical.assign(n, false);
  if (!learner.contains("feature_types") || learner["feature_types"].empty()) return;
  const Json& types = learner["feature_types"];
  if (!types.is_array() || types.size() != n) {
    r.Fail("learner.feature_types", fmt::format("expected {} types", d));
  }
  for (std::size_t j = 0; j < n; ++j) m.categorical[j] = types[j] == "c";
}

int BestIteration(const Json& learner) {
  if (!learner.contains("attributes")) return -1;
  const Json& a = learner["attributes"];
  if (!a.is_object() || !a.contains("best_iteration") || !a["best_iteration"].is_string()) {
    return -1;
  }
  return std::atoi(a["best_iteration"].get<std::string>().c_str());
}

}  // namespace

bool LooksLikeXgboostModel(std::string_view bytes) {
  const std::size_t open = bytes.find_first_not_of(" \t\r\n");
  return open != std::string_view::npos && bytes[open] == '{';
}

XgboostModel ParseXgboostModel(std::string_view bytes, std::string_view what) {
  const Reader r(what);
  const Json root = ParseBytes(bytes, what);
  XgboostModel m;
  m.version = ReadVersion(r, root);
  const Json& learner = r.Member(root, "model", "learner");
  const Header h = ReadHeader(r, learner);
  m.objective = std::string(h.objective->xgboost);
  ReadFeatures(r, learner, h.num_features, m);
  m.best_iteration = BestIteration(learner);
  std::vector<Tree> trees = ReadTrees(r, learner, h);
  try {
    m.ensemble = std::make_unique<TreeEnsemble>(h.objective->task, h.num_features, h.num_outputs,
                                                h.base_margin, std::move(trees),
                                                std::string(h.objective->escala));
  } catch (const Error& e) {
    throw e.WithContext(std::string(what));
  }
  return m;
}

}  // namespace escala::models
