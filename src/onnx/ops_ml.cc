// The ai.onnx.ml kernels: Scaler, Imputer, Normalizer, Binarizer, OneHotEncoder, LabelEncoder,
// LinearClassifier, LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor, ZipMap.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "onnx/ops.h"

namespace escala::models::onnxrt {
namespace {

// A numeric input (float or int64) as floats, into `buf` unless it already is float.
const std::vector<float>& AsFloats(const OnnxTensor& x, std::string_view op,
                                   std::vector<float>& buf) {
  if (x.type == OnnxType::kFloat) return x.f;
  ESCALA_CHECK(x.type == OnnxType::kInt64, kInvalidArgument, "{} takes float or int64, got {}", op,
               OnnxTypeName(x.type));
  buf.assign(x.i.begin(), x.i.end());
  return buf;
}

// Rows and columns of a [N, C] or [C] numeric input.
std::pair<std::int64_t, std::int64_t> RowsCols(const OnnxTensor& x, std::string_view op) {
  ESCALA_CHECK(x.shape.size() == 1 || x.shape.size() == 2, kInvalidArgument,
               "{} takes [N, C] or [C], got {}", op, x.ShapeText());
  if (x.shape.size() == 1) return {1, x.shape[0]};
  return {x.shape[0], x.shape[1]};
}

// Per-column parameters of length 1 (all columns) or C.
float PerColumn(const std::vector<float>& v, std::int64_t j) {
  return v.size() == 1 ? v[0] : v[static_cast<std::size_t>(j)];
}

void CheckPerColumn(const std::vector<float>& v, std::int64_t cols, std::string_view what) {
  ESCALA_CHECK(v.size() == 1 || static_cast<std::int64_t>(v.size()) == cols, kInvalidArgument,
               "{} has {} values for {} columns", what, v.size(), cols);
}

class ScalerOp final : public Op {
 public:
  ScalerOp(std::vector<float> offset, std::vector<float> scale)
      : offset_(std::move(offset)), scale_(std::move(scale)) {}
  void Run(In in, Out out) const override {
    thread_local std::vector<float> buf;
    const std::vector<float>& x = AsFloats(*in[0], "Scaler", buf);
    const auto [rows, cols] = RowsCols(*in[0], "Scaler");
    CheckPerColumn(offset_, cols, "Scaler offset");
    CheckPerColumn(scale_, cols, "Scaler scale");
    out[0]->Resize(OnnxType::kFloat, in[0]->shape);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < cols; ++j) {
        const auto k = static_cast<std::size_t>(i * cols + j);
        out[0]->f[k] = (x[k] - PerColumn(offset_, j)) * PerColumn(scale_, j);
      }
    }
  }

 private:
  std::vector<float> offset_, scale_;
};

std::unique_ptr<Op> MakeScaler(const NodeContext& ctx) {
  std::vector<float> offset = ctx.Floats("offset"), scale = ctx.Floats("scale");
  if (offset.empty()) offset = {0.0f};
  if (scale.empty()) scale = {1.0f};
  return std::make_unique<ScalerOp>(std::move(offset), std::move(scale));
}

class ImputerOp final : public Op {
 public:
  ImputerOp(std::vector<float> values, float replaced)
      : values_(std::move(values)), replaced_(replaced) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, OnnxType::kFloat, "Imputer", 0);
    const auto [rows, cols] = RowsCols(x, "Imputer");
    CheckPerColumn(values_, cols, "Imputer imputed_value_floats");
    out[0]->Resize(OnnxType::kFloat, x.shape);
    const bool nan = std::isnan(replaced_);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < cols; ++j) {
        const auto k = static_cast<std::size_t>(i * cols + j);
        const bool hit = nan ? std::isnan(x.f[k]) : x.f[k] == replaced_;
        out[0]->f[k] = hit ? PerColumn(values_, j) : x.f[k];
      }
    }
  }

 private:
  std::vector<float> values_;
  float replaced_;
};

std::unique_ptr<Op> MakeImputer(const NodeContext& ctx) {
  std::vector<float> values = ctx.Floats("imputed_value_floats");
  if (values.empty()) ctx.Fail("needs imputed_value_floats (int64 imputation is not supported)");
  return std::make_unique<ImputerOp>(std::move(values), ctx.Float("replaced_value_float", 0.0f));
}

class NormalizerOp final : public Op {
 public:
  explicit NormalizerOp(int norm) : norm_(norm) {}
  void Run(In in, Out out) const override {
    thread_local std::vector<float> buf;
    const std::vector<float>& x = AsFloats(*in[0], "Normalizer", buf);
    const auto [rows, cols] = RowsCols(*in[0], "Normalizer");
    out[0]->Resize(OnnxType::kFloat, in[0]->shape);
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* r = x.data() + i * cols;
      double d = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) {
        d = norm_ == 0   ? std::max(d, static_cast<double>(r[j]))
            : norm_ == 1 ? d + std::abs(r[j])
                         : d + static_cast<double>(r[j]) * r[j];
      }
      if (norm_ == 2) d = std::sqrt(d);
      for (std::int64_t j = 0; j < cols; ++j) {
        out[0]->f[static_cast<std::size_t>(i * cols + j)] =
            d == 0.0 ? r[j] : static_cast<float>(r[j] / d);
      }
    }
  }

 private:
  int norm_;  // 0 MAX, 1 L1, 2 L2
};

std::unique_ptr<Op> MakeNormalizer(const NodeContext& ctx) {
  const std::string norm = ctx.String("norm", "MAX");
  if (norm != "MAX" && norm != "L1" && norm != "L2") ctx.Fail("norm '{}' (MAX, L1 or L2)", norm);
  return std::make_unique<NormalizerOp>(norm == "MAX" ? 0 : norm == "L1" ? 1 : 2);
}

class BinarizerOp final : public Op {
 public:
  explicit BinarizerOp(float threshold) : threshold_(threshold) {}
  void Run(In in, Out out) const override {
    ExpectType(*in[0], OnnxType::kFloat, "Binarizer", 0);
    out[0]->Resize(OnnxType::kFloat, in[0]->shape);
    for (std::size_t k = 0; k < in[0]->f.size(); ++k) {
      out[0]->f[k] = in[0]->f[k] > threshold_ ? 1.0f : 0.0f;
    }
  }

 private:
  float threshold_;
};

std::unique_ptr<Op> MakeBinarizer(const NodeContext& ctx) {
  return std::make_unique<BinarizerOp>(ctx.Float("threshold", 0.0f));
}

// Output: the input's shape plus a last dimension of the categories.
class OneHotEncoderOp final : public Op {
 public:
  OneHotEncoderOp(std::vector<std::string> strings, std::vector<std::int64_t> ints, bool zeros)
      : zeros_(zeros) {
    width_ = static_cast<std::int64_t>(std::max(strings.size(), ints.size()));
    for (std::size_t k = 0; k < strings.size(); ++k)
      by_string_[strings[k]] = static_cast<std::int64_t>(k);
    for (std::size_t k = 0; k < ints.size(); ++k) by_int_[ints[k]] = static_cast<std::int64_t>(k);
  }
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    thread_local std::vector<std::int64_t> shape;
    shape = x.shape;
    shape.push_back(width_);
    out[0]->Resize(OnnxType::kFloat, shape);
    std::fill(out[0]->f.begin(), out[0]->f.end(), 0.0f);
    const auto n = static_cast<std::size_t>(x.size());
    for (std::size_t k = 0; k < n; ++k) {
      const std::int64_t c = Category(x, k);
      if (c >= 0)
        out[0]->f[k * static_cast<std::size_t>(width_) + static_cast<std::size_t>(c)] = 1.0f;
    }
  }

 private:
  std::int64_t Category(const OnnxTensor& x, std::size_t k) const {
    std::int64_t c = -1;
    if (x.type == OnnxType::kString) {
      const auto it = by_string_.find(x.s[k]);
      c = it == by_string_.end() ? -1 : it->second;
    } else if (x.type == OnnxType::kInt64) {
      const auto it = by_int_.find(x.i[k]);
      c = it == by_int_.end() ? -1 : it->second;
    } else {
      ESCALA_CHECK(x.type == OnnxType::kFloat, kInvalidArgument,
                   "OneHotEncoder takes strings, int64 or float, got {}", OnnxTypeName(x.type));
      const float f = x.f[k];  // a category only when it is an integer in range
      const bool integral = std::abs(f) < 9e18f && std::floor(f) == f;
      const auto it = integral ? by_int_.find(static_cast<std::int64_t>(f)) : by_int_.end();
      c = it == by_int_.end() ? -1 : it->second;
    }
    ESCALA_CHECK(c >= 0 || zeros_, kInvalidArgument,
                 "OneHotEncoder: element {} is not a known category (zeros=0)", k);
    return c;
  }
  std::unordered_map<std::string, std::int64_t> by_string_;
  std::unordered_map<std::int64_t, std::int64_t> by_int_;
  std::int64_t width_ = 0;
  bool zeros_;
};

std::unique_ptr<Op> MakeOneHotEncoder(const NodeContext& ctx) {
  std::vector<std::string> s = ctx.Strings("cats_strings");
  std::vector<std::int64_t> i = ctx.Ints("cats_int64s");
  if (s.empty() == i.empty()) ctx.Fail("needs exactly one of cats_strings and cats_int64s");
  return std::make_unique<OneHotEncoderOp>(std::move(s), std::move(i), ctx.Int("zeros", 1) != 0);
}

// A map between strings, int64s and floats; keys of one type, values of one type.
class LabelEncoderOp final : public Op {
 public:
  struct Table {
    OnnxType key_type = OnnxType::kString, value_type = OnnxType::kInt64;
    std::unordered_map<std::string, std::size_t> by_string;
    std::unordered_map<std::int64_t, std::size_t> by_int;
    std::unordered_map<float, std::size_t> by_float;
    std::vector<std::string> vs;
    std::vector<std::int64_t> vi;
    std::vector<float> vf;
    std::string ds;
    std::int64_t di = -1;
    float df = -0.0f;
  };
  explicit LabelEncoderOp(Table t) : t_(std::move(t)) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, t_.key_type, "LabelEncoder", 0);
    OnnxTensor& y = *out[0];
    y.Resize(t_.value_type, x.shape);
    const auto n = static_cast<std::size_t>(x.size());
    for (std::size_t k = 0; k < n; ++k) Store(y, k, Find(x, k));
  }

 private:
  static constexpr std::size_t kMissing = std::numeric_limits<std::size_t>::max();
  std::size_t Find(const OnnxTensor& x, std::size_t k) const {
    if (x.type == OnnxType::kString) {
      const auto it = t_.by_string.find(x.s[k]);
      return it == t_.by_string.end() ? kMissing : it->second;
    }
    if (x.type == OnnxType::kInt64) {
      const auto it = t_.by_int.find(x.i[k]);
      return it == t_.by_int.end() ? kMissing : it->second;
    }
    const auto it = t_.by_float.find(x.f[k]);
    return it == t_.by_float.end() ? kMissing : it->second;
  }
  void Store(OnnxTensor& y, std::size_t k, std::size_t at) const {
    const bool miss = at == kMissing;
    if (y.type == OnnxType::kString) y.s[k] = miss ? t_.ds : t_.vs[at];
    if (y.type == OnnxType::kInt64) y.i[k] = miss ? t_.di : t_.vi[at];
    if (y.type == OnnxType::kFloat) y.f[k] = miss ? t_.df : t_.vf[at];
  }
  Table t_;
};

void ReadKeys(const NodeContext& ctx, LabelEncoderOp::Table& t) {
  const auto s = ctx.Strings("keys_strings");
  const auto i = ctx.Ints("keys_int64s");
  const auto f = ctx.Floats("keys_floats");
  if ((!s.empty()) + (!i.empty()) + (!f.empty()) != 1)
    ctx.Fail("needs exactly one keys_* attribute");
  for (std::size_t k = 0; k < s.size(); ++k) t.by_string.emplace(s[k], k);
  for (std::size_t k = 0; k < i.size(); ++k) t.by_int.emplace(i[k], k);
  for (std::size_t k = 0; k < f.size(); ++k) t.by_float.emplace(f[k], k);
  t.key_type = !s.empty() ? OnnxType::kString : !i.empty() ? OnnxType::kInt64 : OnnxType::kFloat;
}

// LabelEncoder-1 (classes_strings): a string input maps to its class index (default_int64), an
// int64 input to its class (default_string); the input's type chooses the direction.
class LabelEncoderV1Op final : public Op {
 public:
  LabelEncoderV1Op(LabelEncoderOp::Table to_index, LabelEncoderOp::Table to_class)
      : to_index_(std::move(to_index)), to_class_(std::move(to_class)) {}
  void Run(In in, Out out) const override {
    (in[0]->type == OnnxType::kString ? to_index_ : to_class_).Run(in, out);
  }

 private:
  LabelEncoderOp to_index_, to_class_;
};

std::unique_ptr<Op> MakeLabelEncoderV1(const NodeContext& ctx, LabelEncoderOp::Table defaults) {
  const auto classes = ctx.Strings("classes_strings");
  LabelEncoderOp::Table to_index = defaults, to_class = std::move(defaults);
  for (std::size_t k = 0; k < classes.size(); ++k) {
    to_index.by_string.emplace(classes[k], k);
    to_index.vi.push_back(static_cast<std::int64_t>(k));
    to_class.by_int.emplace(static_cast<std::int64_t>(k), k);
  }
  to_index.key_type = OnnxType::kString;
  to_index.value_type = OnnxType::kInt64;
  to_class.key_type = OnnxType::kInt64;
  to_class.value_type = OnnxType::kString;
  to_class.vs = classes;
  return std::make_unique<LabelEncoderV1Op>(std::move(to_index), std::move(to_class));
}

std::unique_ptr<Op> MakeLabelEncoder(const NodeContext& ctx) {
  LabelEncoderOp::Table t;
  t.ds = ctx.String("default_string", "_Unused");
  t.di = ctx.Int("default_int64", -1);
  t.df = ctx.Float("default_float", -0.0f);
  if (ctx.opset() < 2) return MakeLabelEncoderV1(ctx, std::move(t));
  ReadKeys(ctx, t);
  t.vs = ctx.Strings("values_strings");
  t.vi = ctx.Ints("values_int64s");
  t.vf = ctx.Floats("values_floats");
  const std::size_t keys = t.by_string.size() + t.by_int.size() + t.by_float.size();
  if ((!t.vs.empty()) + (!t.vi.empty()) + (!t.vf.empty()) != 1) {
    ctx.Fail("needs exactly one values_* attribute");
  }
  t.value_type = !t.vs.empty()   ? OnnxType::kString
                 : !t.vi.empty() ? OnnxType::kInt64
                                 : OnnxType::kFloat;
  const std::size_t values = std::max({t.vs.size(), t.vi.size(), t.vf.size()});
  if (values < keys) ctx.Fail("{} values for {} keys", values, keys);
  return std::make_unique<LabelEncoderOp>(std::move(t));
}

// ---- Scores to probabilities and labels ---------------------------------------------------------

enum class Post { kNone, kLogistic, kSoftmax, kSoftmaxZero };

Post ParsePost(const NodeContext& ctx) {
  const std::string p = ctx.String("post_transform", "NONE");
  if (p == "NONE") return Post::kNone;
  if (p == "LOGISTIC") return Post::kLogistic;
  if (p == "SOFTMAX") return Post::kSoftmax;
  if (p == "SOFTMAX_ZERO") return Post::kSoftmaxZero;
  ctx.Fail("post_transform '{}' is not supported (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO)", p);
}

void PostTransform(Post post, float* row, std::int64_t n) {
  if (post == Post::kLogistic) {
    for (std::int64_t j = 0; j < n; ++j) row[j] = 1.0f / (1.0f + std::exp(-row[j]));
    return;
  }
  if (post == Post::kNone) return;
  float hi = -std::numeric_limits<float>::infinity();
  for (std::int64_t j = 0; j < n; ++j) hi = std::max(hi, row[j]);
  double sum = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    const bool skip = post == Post::kSoftmaxZero && row[j] == 0.0f;
    row[j] = skip ? 0.0f : static_cast<float>(std::exp(static_cast<double>(row[j] - hi)));
    sum += row[j];
  }
  for (std::int64_t j = 0; j < n; ++j) row[j] = static_cast<float>(row[j] / sum);
}

// Class labels, as given by classlabels_strings or classlabels_int64s.
struct Labels {
  std::vector<std::string> strings;
  std::vector<std::int64_t> ints;
  std::int64_t size() const {
    return static_cast<std::int64_t>(std::max(strings.size(), ints.size()));
  }
  void Write(OnnxTensor& y, std::span<const std::int64_t> index) const {
    const std::int64_t dims[1] = {static_cast<std::int64_t>(index.size())};
    y.Resize(strings.empty() ? OnnxType::kInt64 : OnnxType::kString, dims);
    for (std::size_t k = 0; k < index.size(); ++k) {
      const auto c = static_cast<std::size_t>(index[k]);
      if (strings.empty())
        y.i[k] = ints[c];
      else
        y.s[k] = strings[c];
    }
  }
};

Labels ReadLabels(const NodeContext& ctx) {
  Labels l{ctx.Strings("classlabels_strings"), ctx.Ints("classlabels_int64s")};
  if (l.ints.empty()) l.ints = ctx.Ints("classlabels_ints");  // LinearClassifier's name
  if (l.strings.empty() == l.ints.empty())
    ctx.Fail("needs classlabels_strings or classlabels_int64s");
  return l;
}

// Scores [N, k] (k = 1 with two labels: the positive class's score s, widened to [-s, s] or, for
// scores that are probabilities, [1 - s, s]) -> post-transformed scores [N, C] and labels.
void Classify(const std::vector<float>& raw, std::int64_t rows, std::int64_t k,
              const Labels& labels, Post post, bool probability_scores, Out out) {
  const std::int64_t c = k == 1 && labels.size() == 2 ? 2 : k;
  ESCALA_CHECK(labels.size() == c, kInvalidArgument, "{} class labels for {} scores per row",
               labels.size(), c);
  OnnxTensor& z = *out[1];
  z.Resize(OnnxType::kFloat, {rows, c});
  thread_local std::vector<std::int64_t> best;
  best.resize(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) {
    float* row = z.f.data() + i * c;
    if (c == k) {
      std::copy_n(raw.data() + i * k, k, row);
    } else {
      const float s = raw[static_cast<std::size_t>(i)];
      row[0] = probability_scores && post == Post::kNone ? 1.0f - s : -s;
      row[1] = s;
    }
    PostTransform(post, row, c);
    best[static_cast<std::size_t>(i)] = std::max_element(row, row + c) - row;
  }
  labels.Write(*out[0], best);
}

class LinearOp final : public Op {
 public:
  LinearOp(std::vector<float> coef, std::vector<float> bias, Labels labels, Post post,
           bool classifier)
      : coef_(std::move(coef)),
        bias_(std::move(bias)),
        labels_(std::move(labels)),
        post_(post),
        classifier_(classifier) {}
  void Run(In in, Out out) const override {
    thread_local std::vector<float> buf, scores;
    const std::vector<float>& x = AsFloats(*in[0], "Linear", buf);
    const auto [rows, cols] = RowsCols(*in[0], "Linear");
    const auto k = static_cast<std::int64_t>(coef_.size()) / std::max<std::int64_t>(cols, 1);
    ESCALA_CHECK(k * cols == static_cast<std::int64_t>(coef_.size()) && k > 0, kInvalidArgument,
                 "{} coefficients do not fit {} input columns", coef_.size(), cols);
    ESCALA_CHECK(bias_.empty() || static_cast<std::int64_t>(bias_.size()) == k, kInvalidArgument,
                 "{} intercepts for {} outputs", bias_.size(), k);
    scores.assign(static_cast<std::size_t>(rows * k), 0.0f);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t t = 0; t < k; ++t) {
        double s = bias_.empty() ? 0.0 : bias_[static_cast<std::size_t>(t)];
        for (std::int64_t j = 0; j < cols; ++j) {
          s += static_cast<double>(coef_[static_cast<std::size_t>(t * cols + j)]) *
               x[static_cast<std::size_t>(i * cols + j)];
        }
        scores[static_cast<std::size_t>(i * k + t)] = static_cast<float>(s);
      }
    }
    if (classifier_) return Classify(scores, rows, k, labels_, post_, false, out);
    out[0]->Resize(OnnxType::kFloat, {rows, k});
    std::copy(scores.begin(), scores.end(), out[0]->f.begin());
    for (std::int64_t i = 0; i < rows; ++i) PostTransform(post_, out[0]->f.data() + i * k, k);
  }

 private:
  std::vector<float> coef_, bias_;
  Labels labels_;
  Post post_;
  bool classifier_;
};

std::unique_ptr<Op> MakeLinearClassifier(const NodeContext& ctx) {
  auto coef = ctx.Floats("coefficients");
  auto bias = ctx.Floats("intercepts");
  Labels labels = ReadLabels(ctx);
  if (coef.empty()) ctx.Fail("needs coefficients");
  if (ctx.node().output_size() != 2) ctx.Fail("needs the label and score outputs");
  return std::make_unique<LinearOp>(std::move(coef), std::move(bias), std::move(labels),
                                    ParsePost(ctx), true);
}

std::unique_ptr<Op> MakeLinearRegressor(const NodeContext& ctx) {
  auto coef = ctx.Floats("coefficients");
  if (coef.empty()) ctx.Fail("needs coefficients");
  return std::make_unique<LinearOp>(std::move(coef), ctx.Floats("intercepts"), Labels{},
                                    ParsePost(ctx), false);
}

// ---- Tree ensembles -----------------------------------------------------------------------------

enum class Mode : std::uint8_t { kLeq, kLt, kGte, kGt, kEq, kNeq, kLeaf };

struct TreeNode {
  Mode mode = Mode::kLeaf;
  bool missing_true = false;
  std::int64_t feature = 0;
  float value = 0.0f;
  std::int32_t yes = -1, no = -1;                  // node indices
  std::int32_t first_weight = 0, num_weights = 0;  // leaf weights
};

struct Forest {
  std::vector<TreeNode> nodes;
  std::vector<std::int32_t> roots;
  std::vector<std::pair<std::int64_t, float>> weights;  // (target or class, weight) per leaf
  std::vector<float> base;
  std::int64_t targets = 1;
  int aggregate = 0;  // 0 SUM, 1 AVERAGE, 2 MIN, 3 MAX
  std::int64_t max_feature = -1;
};

Mode ParseMode(const NodeContext& ctx, const std::string& m) {
  if (m == "BRANCH_LEQ") return Mode::kLeq;
  if (m == "BRANCH_LT") return Mode::kLt;
  if (m == "BRANCH_GTE") return Mode::kGte;
  if (m == "BRANCH_GT") return Mode::kGt;
  if (m == "BRANCH_EQ") return Mode::kEq;
  if (m == "BRANCH_NEQ") return Mode::kNeq;
  if (m == "LEAF") return Mode::kLeaf;
  ctx.Fail("nodes_modes '{}' is unknown", m);
}

// A float list attribute, or its opset-3 `<name>_as_tensor` form (float; double is refused).
std::vector<float> FloatsOrTensor(const NodeContext& ctx, const std::string& name) {
  const std::string tensor = name + "_as_tensor";
  if (ctx.Attr(tensor) == nullptr) return ctx.Floats(name);
  OnnxTensor t = ctx.TensorAttr(tensor);
  if (t.type != OnnxType::kFloat) ctx.Fail("{} must be float (double is not supported)", tensor);
  return t.f;
}

// Builds the nodes from the nodes_* attributes; children and leaves referenced by (tree, node).
void ReadNodes(const NodeContext& ctx, Forest& f,
               std::map<std::pair<std::int64_t, std::int64_t>, std::int32_t>& index) {
  const auto tree = ctx.Ints("nodes_treeids"), id = ctx.Ints("nodes_nodeids");
  const auto feature = ctx.Ints("nodes_featureids"), yes = ctx.Ints("nodes_truenodeids");
  const auto no = ctx.Ints("nodes_falsenodeids"),
             missing = ctx.Ints("nodes_missing_value_tracks_true");
  const auto modes = ctx.Strings("nodes_modes");
  const auto values = FloatsOrTensor(ctx, "nodes_values");
  const std::size_t n = tree.size();
  for (std::size_t len :
       {id.size(), feature.size(), yes.size(), no.size(), modes.size(), values.size()}) {
    if (len != n) ctx.Fail("nodes_* attributes have different lengths ({} and {})", n, len);
  }
  if (!missing.empty() && missing.size() != n)
    ctx.Fail("nodes_missing_value_tracks_true has {} entries for {} nodes", missing.size(), n);
  for (std::size_t k = 0; k < n; ++k) {
    if (!index.emplace(std::make_pair(tree[k], id[k]), static_cast<std::int32_t>(k)).second) {
      ctx.Fail("node ({}, {}) is given twice", tree[k], id[k]);
    }
    TreeNode& t = f.nodes.emplace_back();
    t.mode = ParseMode(ctx, modes[k]);
    t.missing_true = !missing.empty() && missing[k] != 0;
    t.feature = feature[k];
    t.value = values[k];
    if (t.mode != Mode::kLeaf) f.max_feature = std::max(f.max_feature, feature[k]);
    if (t.mode != Mode::kLeaf && feature[k] < 0)
      ctx.Fail("node ({}, {}) has feature {}", tree[k], id[k], feature[k]);
  }
  std::vector<bool> is_child(n, false);
  for (std::size_t k = 0; k < n; ++k) {
    if (f.nodes[k].mode == Mode::kLeaf) continue;
    for (auto [child, dst] :
         {std::pair{yes[k], &f.nodes[k].yes}, std::pair{no[k], &f.nodes[k].no}}) {
      const auto it = index.find({tree[k], child});
      if (it == index.end())
        ctx.Fail("node ({}, {}) points to missing node {}", tree[k], id[k], child);
      if (it->second <= static_cast<std::int32_t>(k))
        ctx.Fail(
            "node ({}, {}) points back to node {} (trees must be acyclic, children after parents)",
            tree[k], id[k], child);
      *dst = it->second;
      is_child[static_cast<std::size_t>(it->second)] = true;
    }
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (!is_child[k]) f.roots.push_back(static_cast<std::int32_t>(k));
  }
}

// Attaches the leaf weights (target_* or class_* attributes, `prefix`).
void ReadWeights(const NodeContext& ctx, const std::string& prefix, Forest& f,
                 const std::map<std::pair<std::int64_t, std::int64_t>, std::int32_t>& index) {
  const auto tree = ctx.Ints(prefix + "_treeids"), node = ctx.Ints(prefix + "_nodeids");
  const auto target = ctx.Ints(prefix + "_ids");
  const auto weight = FloatsOrTensor(ctx, prefix + "_weights");
  if (node.size() != tree.size() || target.size() != tree.size() || weight.size() != tree.size()) {
    ctx.Fail("{}_* attributes have different lengths", prefix);
  }
  std::vector<std::vector<std::pair<std::int64_t, float>>> per(f.nodes.size());
  for (std::size_t k = 0; k < tree.size(); ++k) {
    const auto it = index.find({tree[k], node[k]});
    if (it == index.end())
      ctx.Fail("{} weight {} is on missing node ({}, {})", prefix, k, tree[k], node[k]);
    if (target[k] < 0 || target[k] >= f.targets)
      ctx.Fail("{}_ids {} is out of range [0, {})", prefix, target[k], f.targets);
    per[static_cast<std::size_t>(it->second)].emplace_back(target[k], weight[k]);
  }
  for (std::size_t k = 0; k < per.size(); ++k) {
    f.nodes[k].first_weight = static_cast<std::int32_t>(f.weights.size());
    f.nodes[k].num_weights = static_cast<std::int32_t>(per[k].size());
    f.weights.insert(f.weights.end(), per[k].begin(), per[k].end());
  }
}

bool GoesYes(const TreeNode& n, float x) {
  if (std::isnan(x) && n.missing_true) return true;
  switch (n.mode) {
    case Mode::kLeq:
      return x <= n.value;
    case Mode::kLt:
      return x < n.value;
    case Mode::kGte:
      return x >= n.value;
    case Mode::kGt:
      return x > n.value;
    case Mode::kEq:
      return x == n.value;
    case Mode::kNeq:
      return x != n.value;
    case Mode::kLeaf:
      break;
  }
  return false;
}

// Raw scores [rows, targets] of every row.
void Score(const Forest& f, const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
           std::vector<float>& out) {
  ESCALA_CHECK(f.max_feature < cols, kInvalidArgument,
               "the trees use feature {} of {} input columns", f.max_feature, cols);
  const auto t = static_cast<std::size_t>(f.targets);
  out.assign(static_cast<std::size_t>(rows) * t, 0.0f);
  thread_local std::vector<double> acc;
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* row = x.data() + i * cols;
    const double init = f.aggregate == 2   ? std::numeric_limits<double>::infinity()
                        : f.aggregate == 3 ? -std::numeric_limits<double>::infinity()
                                           : 0.0;
    acc.assign(t, init);
    for (std::int32_t r : f.roots) {
      const TreeNode* n = &f.nodes[static_cast<std::size_t>(r)];
      while (n->mode != Mode::kLeaf) {
        n = &f.nodes[static_cast<std::size_t>(GoesYes(*n, row[n->feature]) ? n->yes : n->no)];
      }
      for (std::int32_t w = 0; w < n->num_weights; ++w) {
        const auto [target, value] = f.weights[static_cast<std::size_t>(n->first_weight + w)];
        double& a = acc[static_cast<std::size_t>(target)];
        a = f.aggregate == 2   ? std::min<double>(a, value)
            : f.aggregate == 3 ? std::max<double>(a, value)
                               : a + value;
      }
    }
    for (std::size_t k = 0; k < t; ++k) {
      double v = acc[k];
      if (!std::isfinite(v) && f.aggregate >= 2) v = 0.0;
      if (f.aggregate == 1 && !f.roots.empty()) v /= static_cast<double>(f.roots.size());
      if (!f.base.empty()) v += f.base[f.base.size() == 1 ? 0 : k];
      out[static_cast<std::size_t>(i) * t + k] = static_cast<float>(v);
    }
  }
}

class TreeEnsembleOp final : public Op {
 public:
  TreeEnsembleOp(Forest f, Labels labels, Post post, bool classifier, bool binary_probability)
      : f_(std::move(f)),
        labels_(std::move(labels)),
        post_(post),
        classifier_(classifier),
        binary_probability_(binary_probability) {}
  void Run(In in, Out out) const override {
    thread_local std::vector<float> buf, scores;
    const std::vector<float>& x = AsFloats(*in[0], "TreeEnsemble", buf);
    const auto [rows, cols] = RowsCols(*in[0], "TreeEnsemble");
    Score(f_, x, rows, cols, scores);
    if (classifier_)
      return Classify(scores, rows, f_.targets, labels_, post_, binary_probability_, out);
    out[0]->Resize(OnnxType::kFloat, {rows, f_.targets});
    std::copy(scores.begin(), scores.end(), out[0]->f.begin());
    for (std::int64_t i = 0; i < rows; ++i)
      PostTransform(post_, out[0]->f.data() + i * f_.targets, f_.targets);
  }

 private:
  Forest f_;
  Labels labels_;
  Post post_;
  bool classifier_, binary_probability_;
};

int ParseAggregate(const NodeContext& ctx) {
  const std::string a = ctx.String("aggregate_function", "SUM");
  if (a == "SUM") return 0;
  if (a == "AVERAGE") return 1;
  if (a == "MIN") return 2;
  if (a == "MAX") return 3;
  ctx.Fail("aggregate_function '{}' (SUM, AVERAGE, MIN or MAX)", a);
}

std::unique_ptr<Op> MakeTreeRegressor(const NodeContext& ctx) {
  Forest f;
  f.targets = ctx.Int("n_targets", 1);
  if (f.targets < 1 || f.targets > 100000) ctx.Fail("n_targets {} is out of range", f.targets);
  f.aggregate = ParseAggregate(ctx);
  f.base = FloatsOrTensor(ctx, "base_values");
  if (!f.base.empty() && static_cast<std::int64_t>(f.base.size()) != f.targets)
    ctx.Fail("{} base_values for {} targets", f.base.size(), f.targets);
  std::map<std::pair<std::int64_t, std::int64_t>, std::int32_t> index;
  ReadNodes(ctx, f, index);
  ReadWeights(ctx, "target", f, index);
  return std::make_unique<TreeEnsembleOp>(std::move(f), Labels{}, ParsePost(ctx), false, false);
}

std::unique_ptr<Op> MakeTreeClassifier(const NodeContext& ctx) {
  if (ctx.node().output_size() != 2) ctx.Fail("needs the label and score outputs");
  Forest f;
  Labels labels = ReadLabels(ctx);
  const auto ids = ctx.Ints("class_ids");
  // Two labels scored by one class's weights: that score is the positive class's.
  const bool binary = labels.size() == 2 && !ids.empty() &&
                      std::all_of(ids.begin(), ids.end(), [&](auto c) { return c == ids[0]; });
  f.targets = labels.size();
  f.base = FloatsOrTensor(ctx, "base_values");
  if (!f.base.empty() && static_cast<std::int64_t>(f.base.size()) != labels.size() &&
      !(binary && f.base.size() == 1)) {
    ctx.Fail("{} base_values for {} classes", f.base.size(), labels.size());
  }
  std::map<std::pair<std::int64_t, std::int64_t>, std::int32_t> index;
  ReadNodes(ctx, f, index);
  ReadWeights(ctx, "class", f, index);
  if (binary) {
    for (auto& w : f.weights) w.first = 0;
    f.targets = 1;
    if (f.base.size() == 2) f.base = {f.base[1]};
  }
  bool positive = true;
  for (const auto& [c, w] : f.weights) positive &= w >= 0.0f;
  return std::make_unique<TreeEnsembleOp>(std::move(f), std::move(labels), ParsePost(ctx), true,
                                          positive);
}

// ZipMap: escala reads it as the probability matrix it maps.
std::unique_ptr<Op> MakeZipMap(const NodeContext&) {
  class ZipMapOp final : public Op {
   public:
    void Run(In in, Out out) const override {
      ExpectType(*in[0], OnnxType::kFloat, "ZipMap", 0);
      *out[0] = *in[0];
    }
  };
  return std::make_unique<ZipMapOp>();
}

constexpr OpEntry kOps[] = {
    {"ai.onnx.ml", "Scaler", MakeScaler},
    {"ai.onnx.ml", "Imputer", MakeImputer},
    {"ai.onnx.ml", "Normalizer", MakeNormalizer},
    {"ai.onnx.ml", "Binarizer", MakeBinarizer},
    {"ai.onnx.ml", "OneHotEncoder", MakeOneHotEncoder},
    {"ai.onnx.ml", "LabelEncoder", MakeLabelEncoder},
    {"ai.onnx.ml", "LinearClassifier", MakeLinearClassifier},
    {"ai.onnx.ml", "LinearRegressor", MakeLinearRegressor},
    {"ai.onnx.ml", "TreeEnsembleClassifier", MakeTreeClassifier},
    {"ai.onnx.ml", "TreeEnsembleRegressor", MakeTreeRegressor},
    {"ai.onnx.ml", "ZipMap", MakeZipMap},
};

}  // namespace

std::span<const OpEntry> MlOps() {
  return kOps;
}

}  // namespace escala::models::onnxrt
