#include "escala/models/mlp.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <unsupported/Eigen/SpecialFunctions>

#include "core/simd/products.h"
#include "escala/core/eigen.h"
#include "escala/core/error.h"
#include "escala/core/random.h"
#include "models/registry.h"

namespace escala::models {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

void Activate(Activation act, EigenMap<float>& a, const EigenMap<const float>& z) {
  switch (act) {
    case Activation::kIdentity:
      a = z;
      break;
    case Activation::kReLU:
      a = z.cwiseMax(0.0f);
      break;
    case Activation::kTanh:
      a = z.array().tanh();
      break;
    case Activation::kSigmoid:
      a = (1.0f + (-z.array()).exp()).inverse();
      break;
    case Activation::kGELU:
      a = 0.5f * z.array() * (1.0f + (z.array() * kInvSqrt2).erf());
      break;
  }
}

// delta *= act'(z), using the stored activation a = act(z) where that suffices.
void MultiplyDerivative(Activation act, EigenMap<float>& delta, const EigenMap<const float>& a,
                        const EigenMap<const float>& z) {
  switch (act) {
    case Activation::kIdentity:
      break;
    case Activation::kReLU:
      delta.array() *= (a.array() > 0.0f).cast<float>();
      break;
    case Activation::kTanh:
      delta.array() *= 1.0f - a.array().square();
      break;
    case Activation::kSigmoid:
      delta.array() *= a.array() * (1.0f - a.array());
      break;
    case Activation::kGELU:
      delta.array() *= 0.5f * (1.0f + (z.array() * kInvSqrt2).erf()) +
                       z.array() * kInvSqrt2Pi * (-0.5f * z.array().square()).exp();
      break;
  }
}

}  // namespace

struct Mlp::Ws final : Workspace {
  std::vector<MatrixF> z;        // pre-activations (GELU only needs them in backward)
  std::vector<MatrixF> a;        // activations act(z)
  std::vector<MatrixF> dropped;  // a * dropout mask, the next layer's input (training only)
  std::vector<MatrixF> mask;     // dropout scale per unit: 0 or 1/(1-p)
  MatrixF out;
  MatrixF delta[2];
};

Mlp::Mlp(const MlpSpec& spec) : spec_(spec) {
  ESCALA_CHECK(spec.num_features > 0, kInvalidArgument, "MLP needs >= 1 feature, got {}",
               spec.num_features);
  ESCALA_CHECK(spec.dropout >= 0.0f && spec.dropout < 1.0f, kInvalidArgument,
               "dropout must be in [0, 1), got {}", spec.dropout);
  for (auto h : spec.hidden) {
    ESCALA_CHECK(h > 0, kInvalidArgument, "hidden layer width must be > 0, got {}", h);
  }
  std::int64_t k = 1;
  if (spec.task == Task::kMulticlass) {
    ESCALA_CHECK(spec.num_classes >= 2, kInvalidArgument, "multiclass MLP needs >= 2 classes");
    k = spec.num_classes;
  }
  sizes_.push_back(spec.num_features);
  for (auto h : spec.hidden) sizes_.push_back(h);
  sizes_.push_back(k);
  std::size_t total = 0;
  for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) {
    offsets_.push_back(total);
    total += static_cast<std::size_t>(sizes_[l] * sizes_[l + 1] + sizes_[l + 1]);
  }
  params_.assign(total, 0.0f);
  penalty_mask_.assign(total, 1);
  for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) {
    const std::size_t b = offsets_[l] + static_cast<std::size_t>(sizes_[l] * sizes_[l + 1]);
    for (std::int64_t j = 0; j < sizes_[l + 1]; ++j)
      penalty_mask_[b + static_cast<std::size_t>(j)] = 0;
  }
}

void Mlp::Initialize(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::size_t layers = sizes_.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    const auto in = sizes_[l];
    const auto out = sizes_[l + 1];
    float* w = params_.data() + offsets_[l];
    const bool hidden = l + 1 < layers;
    const bool relu_like =
        spec_.activation == Activation::kReLU || spec_.activation == Activation::kGELU;
    if (hidden && relu_like) {
      // He: keeps activation variance constant through ReLU layers.
      std::normal_distribution<float> dist(0.0f, std::sqrt(2.0f / static_cast<float>(in)));
      for (std::int64_t i = 0; i < in * out; ++i) w[i] = dist(rng);
    } else {
      // Xavier/Glorot uniform.
      const float lim = std::sqrt(6.0f / static_cast<float>(in + out));
      std::uniform_real_distribution<float> dist(-lim, lim);
      for (std::int64_t i = 0; i < in * out; ++i) w[i] = dist(rng);
    }
    std::fill(w + in * out, w + in * out + out, 0.0f);
  }
}

std::unique_ptr<Workspace> Mlp::NewWorkspace() const {
  auto ws = std::make_unique<Ws>();
  const std::size_t hidden = spec_.hidden.size();
  ws->z.resize(hidden);
  ws->a.resize(hidden);
  ws->dropped.resize(hidden);
  ws->mask.resize(hidden);
  return ws;
}

void Mlp::Forward(ConstMatrixViewF x, Ws& ws, const BatchContext* train) const {
  ESCALA_CHECK(x.cols() == spec_.num_features, kInvalidArgument,
               "model expects {} features, got {}", spec_.num_features, x.cols());
  const std::int64_t n = x.rows();
  const std::size_t layers = sizes_.size() - 1;
  const bool dropout = train != nullptr && train->training && spec_.dropout > 0.0f;
  if (dropout) {
    ESCALA_CHECK(static_cast<std::int64_t>(train->row_ids.size()) == n, kInvalidArgument,
                 "dropout needs the batch's row ids ({} given for {} rows)", train->row_ids.size(),
                 n);
  }
  ConstMatrixViewF input = x;
  for (std::size_t l = 0; l < layers; ++l) {
    const auto in = sizes_[l];
    const auto out = sizes_[l + 1];
    const ConstMatrixViewF w(params_.data() + offsets_[l], in, out);
    const auto b =
        Eigen::Map<const Eigen::RowVectorXf>(params_.data() + offsets_[l] + in * out, out);
    const bool last = l + 1 == layers;
    MatrixF& zbuf = last ? ws.out : ws.z[l];
    zbuf.Resize(n, out);
    simd::MatMul(input, false, w, false, zbuf.view(), false);
    AsEigen(zbuf).rowwise() += b;
    if (last) break;
    MatrixF& abuf = ws.a[l];
    abuf.Resize(n, out);
    auto a = AsEigen(abuf);
    const auto zc = AsEigen(std::as_const(zbuf));
    Activate(spec_.activation, a, zc);
    if (dropout) {
      MatrixF& m = ws.mask[l];
      MatrixF& d = ws.dropped[l];
      m.Resize(n, out);
      d.Resize(n, out);
      const float scale = 1.0f / (1.0f - spec_.dropout);
      const auto threshold =
          static_cast<std::uint64_t>(static_cast<double>(spec_.dropout) * 18446744073709551616.0);
      const std::uint64_t base = Mix64(train->seed ^ Mix64(train->step ^ Mix64(l + 1)));
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint64_t row = Mix64(base ^ train->row_ids[static_cast<std::size_t>(i)]);
        float* mr = m.row(i);
        const float* ar = abuf.row(i);
        float* dr = d.row(i);
        for (std::int64_t j = 0; j < out; ++j) {
          mr[j] = Mix64(row + static_cast<std::uint64_t>(j)) < threshold ? 0.0f : scale;
          dr[j] = ar[j] * mr[j];
        }
      }
      input = d.view();
    } else {
      input = abuf.view();
    }
  }
}

void Mlp::Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws_base) const {
  auto& ws = static_cast<Ws&>(ws_base);
  Forward(x, ws, nullptr);
  ESCALA_ASSERT(logits.rows() == x.rows() && logits.cols() == sizes_.back());
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    std::copy_n(ws.out.row(i), sizes_.back(), logits.row(i));
  }
}

std::vector<std::pair<std::size_t, std::size_t>> Mlp::ParameterGroups() const {
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) {
    groups.emplace_back(offsets_[l], offsets_[l] + static_cast<std::size_t>(
                                                       sizes_[l] * sizes_[l + 1] + sizes_[l + 1]));
  }
  return groups;
}

double Mlp::AccumulateGradient(ConstMatrixViewF x, std::span<const float> labels,
                               std::span<float> grad, const BatchContext& ctx, Workspace& ws_base,
                               const GradientReadyFn* ready) const {
  ESCALA_ASSERT(grad.size() == params_.size());
  auto& ws = static_cast<Ws&>(ws_base);
  Forward(x, ws, &ctx);
  const std::int64_t n = x.rows();
  const std::size_t layers = sizes_.size() - 1;
  const bool dropout = ctx.training && spec_.dropout > 0.0f;
  // The logit gradient overwrites the logits.
  const double loss =
      LossAndLogitGradient(spec_.task, ws.out.view(), labels, ws.out.view(), 0, ctx.weights);
  MatrixF* delta = &ws.out;
  int ping = 0;
  for (std::size_t l = layers; l-- > 0;) {
    const auto in = sizes_[l];
    const auto out = sizes_[l + 1];
    ConstMatrixViewF input = l == 0 ? x : (dropout ? ws.dropped[l - 1].view() : ws.a[l - 1].view());
    const auto d = AsEigen(std::as_const(*delta));
    auto gb = Eigen::Map<Eigen::RowVectorXf>(grad.data() + offsets_[l] + in * out, out);
    simd::MatMul(input, true, std::as_const(*delta).view(), false,
                 MatrixViewF(grad.data() + offsets_[l], in, out), true);
    gb += d.colwise().sum();
    if (ready != nullptr) {
      (*ready)(offsets_[l], offsets_[l] + static_cast<std::size_t>(in * out + out));
    }
    if (l == 0) break;
    const ConstMatrixViewF w(params_.data() + offsets_[l], in, out);
    MatrixF& next = ws.delta[ping];
    ping ^= 1;
    next.Resize(n, in);
    simd::MatMul(std::as_const(*delta).view(), false, w, true, next.view(), false);
    auto dp = AsEigen(next);
    if (dropout) dp.array() *= AsEigen(std::as_const(ws.mask[l - 1])).array();
    const auto a = AsEigen(std::as_const(ws.a[l - 1]));
    const auto z = AsEigen(std::as_const(ws.z[l - 1]));
    MultiplyDerivative(spec_.activation, dp, a, z);
    delta = &next;
  }
  return loss;
}

std::unique_ptr<GradientModel> Mlp::CloneTrainable() const {
  return std::make_unique<Mlp>(*this);
}

std::string Mlp::Describe() const {
  std::string shape;
  for (std::size_t i = 0; i < sizes_.size(); ++i) {
    if (i > 0) shape += "-";
    shape += std::to_string(sizes_[i]);
  }
  std::string s = fmt::format("mlp {} {}", shape, ActivationName(spec_.activation));
  if (spec_.dropout > 0) s += fmt::format(" dropout {}", spec_.dropout);
  return s + fmt::format(" ({} parameters)", params_.size());
}

// ---- the family entry -------------------------------------------------------------------------

namespace {

namespace pb = escala::model::v1;

constexpr std::pair<Activation, pb::Activation> kActivations[] = {
    {Activation::kIdentity, pb::ACTIVATION_IDENTITY},
    {Activation::kReLU, pb::ACTIVATION_RELU},
    {Activation::kTanh, pb::ACTIVATION_TANH},
    {Activation::kSigmoid, pb::ACTIVATION_SIGMOID},
    {Activation::kGELU, pb::ACTIVATION_GELU}};

Activation ActivationFromProto(pb::Activation a) {
  for (const auto& [ours, theirs] : kActivations) {
    if (theirs == a) return ours;
  }
  Throw(ErrorCode::kInvalidArgument, "model has no valid activation ({})", static_cast<int>(a));
}

pb::Activation ActivationToProto(Activation a) {
  for (const auto& [ours, theirs] : kActivations) {
    if (ours == a) return theirs;
  }
  return pb::ACTIVATION_UNSPECIFIED;
}

double MlpParameterCount(const ModelSpec& spec, Task task) {
  const double outputs = task == Task::kMulticlass ? std::max(spec.num_classes, 1) : 1;
  double count = 0, in = static_cast<double>(spec.num_features);
  for (const auto h : spec.hidden) {
    count += (in + 1) * static_cast<double>(h);
    in = static_cast<double>(h);
  }
  return count + (in + 1) * outputs;
}

std::unique_ptr<GradientModel> MakeMlp(const ModelSpec& spec, Task task) {
  ESCALA_CHECK(!spec.hidden.empty(), kInvalidArgument,
               "an mlp needs at least one hidden layer (--hidden); without one use --model "
               "linear, logistic or softmax");
  MlpSpec m;
  m.task = task;
  m.num_features = spec.num_features;
  m.num_classes = spec.num_classes;
  m.hidden = spec.hidden;
  m.activation = spec.activation;
  m.dropout = spec.dropout;
  return std::make_unique<Mlp>(m);
}

void SaveMlp(const Model& model, pb::Model* out) {
  const auto& mlp = dynamic_cast<const Mlp&>(model);
  for (auto h : mlp.spec().hidden) out->add_hidden(h);
  out->set_activation(ActivationToProto(mlp.spec().activation));
  out->set_dropout(mlp.spec().dropout);
  SaveParameters(mlp, out);
}

std::unique_ptr<Model> LoadMlp(const pb::Model& proto, Task task) {
  ModelSpec spec;
  spec.kind = "mlp";
  spec.num_features = proto.num_features();
  if (task == Task::kMulticlass) spec.num_classes = static_cast<int>(proto.num_outputs());
  spec.hidden.assign(proto.hidden().begin(), proto.hidden().end());
  spec.activation = ActivationFromProto(proto.activation());
  spec.dropout = proto.dropout();
  auto model = MakeMlp(spec, task);
  LoadParameters(proto, *model);
  return model;
}

}  // namespace

const ModelFamily kMlpFamily = {
    "mlp", [](Task requested) { return requested; }, MlpParameterCount, MakeMlp, SaveMlp, LoadMlp};

}  // namespace escala::models
