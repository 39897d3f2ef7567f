#include "escala/features/pipeline.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/features/v1/pipeline.pb.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_spec.h"
#include "features/pipeline_steps.h"

namespace escala::features {

namespace pb = escala::features::v1;
using internal::CatHash;
using internal::FittedStep;
using internal::JoinNames;
using internal::kBlock;
using internal::RunContext;
using internal::Store;

struct TransformScratch::Data {
  std::vector<std::vector<float>> num;
  std::vector<std::vector<std::uint64_t>> cat;
  std::vector<std::vector<std::uint64_t>> dict_hashes;
  ExpressionScratch expr;
  std::vector<const float*> ptrs;
  Store store;
};

TransformScratch::TransformScratch() : data(std::make_unique<Data>()) {}
TransformScratch::~TransformScratch() = default;
TransformScratch::TransformScratch(TransformScratch&&) noexcept = default;
TransformScratch& TransformScratch::operator=(TransformScratch&&) noexcept = default;

// ---- Pipeline: construction, spec, accessors ---------------------------------------------------

Pipeline::Pipeline() : impl_(std::make_unique<Impl>()) {}
Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::Pipeline(const Pipeline& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
Pipeline& Pipeline::operator=(const Pipeline& o) {
  if (this != &o) impl_ = std::make_unique<Impl>(*o.impl_);
  return *this;
}

Pipeline Pipeline::FromSpec(std::string_view spec) {
  Pipeline p;
  p.impl_->spec = std::string(spec);
  p.impl_->defs = internal::ParseSpec(spec);
  // What can be checked before seeing data (the kinds themselves were checked by ParseSpec).
  for (const auto& d : p.impl_->defs) {
    const auto check = internal::FindStepKind(d.kind).check;
    if (check != nullptr) check(d);
  }
  return p;
}

const std::string& Pipeline::spec() const {
  return impl_->spec;
}
const std::vector<std::int64_t>& Pipeline::output_categories() const {
  return impl_->output_categories;
}

bool Pipeline::keep_missing() const {
  return impl_->keep_missing;
}

bool Pipeline::fitted() const {
  return impl_->fitted;
}
const data::Schema& Pipeline::input_schema() const {
  return impl_->inputs;
}
const std::vector<std::string>& Pipeline::output_names() const {
  return impl_->outputs;
}
std::int64_t Pipeline::num_outputs() const {
  return static_cast<std::int64_t>(impl_->outputs.size());
}

// ---- transform
// ---------------------------------------------------------------------------------------

RawBatch BatchFromTable(const data::Table& table, const data::Schema& inputs) {
  RawBatch batch;
  batch.rows = table.num_rows();
  for (const auto& f : inputs.fields()) {
    const data::Column& col = table.column(f.name);
    const bool want_cat = f.type == data::DataType::kCategorical;
    ESCALA_CHECK(want_cat == (col.type() == data::DataType::kCategorical), kInvalidArgument,
                 "column '{}' is {} here but the pipeline was fitted on {} values", f.name,
                 data::DataTypeName(col.type()), want_cat ? "categorical" : "numeric");
    RawColumn rc;
    switch (col.type()) {
      case data::DataType::kFloat32:
        rc.kind = RawColumn::Kind::kFloat32;
        rc.values = col.f32().data();
        break;
      case data::DataType::kFloat64:
        rc.kind = RawColumn::Kind::kFloat64;
        rc.values = col.f64().data();
        break;
      case data::DataType::kInt64:
        rc.kind = RawColumn::Kind::kInt64;
        rc.values = col.i64().data();
        break;
      case data::DataType::kCategorical:
        rc.kind = RawColumn::Kind::kCodes;
        rc.values = col.codes().data();
        rc.dictionary = &col.dictionary();
        break;
    }
    rc.missing = col.missing_mask().empty() ? nullptr : col.missing_mask().data();
    batch.columns.push_back(rc);
  }
  return batch;
}

void Pipeline::TransformInto(const RawBatch& batch, MatrixViewF out,
                             TransformScratch& scratch) const {
  const Impl& im = *impl_;
  ESCALA_CHECK(im.fitted, kFailedPrecondition, "pipeline is not fitted");
  ESCALA_CHECK(batch.columns.size() == static_cast<std::size_t>(im.inputs.num_fields()),
               kInvalidArgument, "pipeline expects {} input columns ({}), got {}",
               im.inputs.num_fields(), im.inputs.ToString(), batch.columns.size());
  ESCALA_CHECK(
      out.rows() == batch.rows && out.cols() == static_cast<std::int64_t>(im.outputs.size()),
      kInvalidArgument, "output is {}x{}, expected {}x{}", out.rows(), out.cols(), batch.rows,
      im.outputs.size());
  auto& sd = *scratch.data;
  // Buffers for every slot, one block long; resized once, then reused.
  if (sd.num.size() != im.slots.size()) {
    sd.num.assign(im.slots.size(), {});
    sd.cat.assign(im.slots.size(), {});
  }
  sd.store.num.resize(im.slots.size());
  sd.store.cat.resize(im.slots.size());
  for (std::size_t i = 0; i < im.slots.size(); ++i) {
    if (im.slots[i].categorical) {
      if (sd.cat[i].size() < static_cast<std::size_t>(kBlock)) sd.cat[i].resize(kBlock);
      sd.store.cat[i] = sd.cat[i].data();
      sd.store.num[i] = nullptr;
    } else {
      if (sd.num[i].size() < static_cast<std::size_t>(kBlock)) sd.num[i].resize(kBlock);
      sd.store.num[i] = sd.num[i].data();
      sd.store.cat[i] = nullptr;
    }
  }
  sd.dict_hashes.resize(batch.columns.size());
  for (std::size_t i = 0; i < batch.columns.size(); ++i) {
    const RawColumn& c = batch.columns[i];
    sd.dict_hashes[i].clear();
    if (c.kind == RawColumn::Kind::kCodes) {
      ESCALA_CHECK(c.dictionary != nullptr, kInvalidArgument,
                   "input '{}': categorical codes without a dictionary",
                   im.inputs.field(static_cast<int>(i)).name);
      for (const auto& s : *c.dictionary) sd.dict_hashes[i].push_back(CatHash(s));
    }
  }
  const std::size_t nout = im.output_slots.size();
  for (std::int64_t b = 0; b < batch.rows; b += kBlock) {
    sd.store.n = std::min(kBlock, batch.rows - b);
    RunContext ctx{&batch, b, &sd.dict_hashes, &sd.expr, &sd.ptrs};
    im.RunOps(0, im.ops.size(), sd.store, ctx);
    for (std::size_t k = 0; k < nout; ++k) {
      const float* col = sd.store.num[static_cast<std::size_t>(im.output_slots[k])];
      for (std::int64_t i = 0; i < sd.store.n; ++i) {
        const float v = col[i];
        if (!std::isfinite(v) && !(im.keep_missing && std::isnan(v))) [[unlikely]] {
          Throw(ErrorCode::kInvalidArgument,
                "row {}: feature '{}' is {} after the pipeline; impute or clip its column "
                "(spec: {})",
                b + i, im.outputs[k], std::isnan(v) ? "missing (NaN)" : "infinite",
                im.spec.empty() ? "<none>" : im.spec);
        }
        out(b + i, static_cast<std::int64_t>(k)) = v;
      }
    }
  }
}

void Pipeline::Transform(const RawBatch& batch, MatrixF* out) const {
  out->Resize(batch.rows, num_outputs());
  Transform(batch, out->view());
}

void Pipeline::Transform(const RawBatch& batch, MatrixViewF out) const {
  ESCALA_CHECK(out.rows() == batch.rows && out.cols() == num_outputs(), kInvalidArgument,
               "output is {}x{}, expected {}x{}", out.rows(), out.cols(), batch.rows,
               num_outputs());
  const auto parts = static_cast<std::size_t>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(NumThreads(), (batch.rows + kBlock - 1) / kBlock)));
  std::vector<TransformScratch> scratch(parts);
  ParallelForStatic(
      static_cast<std::size_t>(batch.rows), parts,
      [&](std::size_t p, std::size_t b, std::size_t e) {
        if (b == e) return;
        RawBatch part = batch;
        part.rows = static_cast<std::int64_t>(e - b);
        // Shift every column view to the part's first row.
        for (auto& c : part.columns) {
          const std::int64_t off = static_cast<std::int64_t>(b) * c.stride;
          switch (c.kind) {
            case RawColumn::Kind::kFloat32:
              c.values = static_cast<const float*>(c.values) + off;
              break;
            case RawColumn::Kind::kFloat64:
              c.values = static_cast<const double*>(c.values) + off;
              break;
            case RawColumn::Kind::kInt64:
              c.values = static_cast<const std::int64_t*>(c.values) + off;
              break;
            case RawColumn::Kind::kInt32:
            case RawColumn::Kind::kCodes:
              c.values = static_cast<const std::int32_t*>(c.values) + off;
              break;
            case RawColumn::Kind::kStrings:
              c.values = static_cast<const std::string_view*>(c.values) + off;
              break;
          }
          if (c.missing != nullptr) c.missing += b;
        }
        try {
          TransformInto(part, out.Rows(static_cast<std::int64_t>(b), part.rows), scratch[p]);
        } catch (const Error& err) {
          // Row numbers in messages are relative to the part: make them absolute.
          const std::string m = err.message();
          if (m.rfind("row ", 0) == 0) {
            const std::size_t colon = m.find(':');
            const long long r = std::stoll(m.substr(4, colon - 4));
            throw Error(err.code(),
                        fmt::format("row {}{}", r + static_cast<long long>(b), m.substr(colon)));
          }
          throw;
        }
      });
}

void Pipeline::Transform(const data::Table& table, MatrixF* out) const {
  ESCALA_CHECK(impl_->fitted, kFailedPrecondition, "pipeline is not fitted");
  Transform(BatchFromTable(table, impl_->inputs), out);
}

void Pipeline::Transform(const data::Table& table, MatrixViewF out) const {
  ESCALA_CHECK(impl_->fitted, kFailedPrecondition, "pipeline is not fitted");
  Transform(BatchFromTable(table, impl_->inputs), out);
}

// ---- serialisation
// ---------------------------------------------------------------------------------

std::string Pipeline::Serialize() const {
  pb::Pipeline m;
  m.set_spec(impl_->spec);
  m.set_fitted(impl_->fitted);
  m.set_keep_missing(impl_->keep_missing);
  for (const auto& f : impl_->inputs.fields()) {
    auto* in = m.add_inputs();
    in->set_name(f.name);
    in->set_type(std::string(data::DataTypeName(f.type)));
  }
  for (const auto& s : impl_->steps) {
    auto* st = m.add_steps();
    st->set_kind(s.kind);
    st->set_spec(s.spec);
    for (const auto& c : s.columns) st->add_columns(c);
    for (const auto& [k, v] : s.options) (*st->mutable_options())[k] = v;
    for (const auto& p : s.params) *st->add_params() = p;
  }
  for (const auto& o : impl_->outputs) m.add_outputs(o);
  // Deterministic (map entries in key order): the same fitted pipeline gives the same bytes, so
  // bundles are reproducible and a checkpoint can recognise the pipeline it was written under.
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

Pipeline Pipeline::Parse(std::string_view bytes) {
  pb::Pipeline m;
  ESCALA_CHECK(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "pipeline: serialized bytes do not parse ({} bytes)", bytes.size());
  Pipeline p = FromSpec(m.spec());
  Impl& im = *p.impl_;
  std::vector<data::Field> fields;
  for (const auto& in : m.inputs()) fields.push_back({in.name(), data::ParseDataType(in.type())});
  im.inputs = data::Schema(fields);
  for (const auto& st : m.steps()) {
    FittedStep fs;
    fs.kind = st.kind();
    fs.spec = st.spec();
    fs.columns.assign(st.columns().begin(), st.columns().end());
    for (const auto& [k, v] : st.options()) fs.options[k] = v;
    fs.params.assign(st.params().begin(), st.params().end());
    im.steps.push_back(std::move(fs));
  }
  im.fitted = m.fitted();
  im.keep_missing = m.keep_missing();
  if (im.fitted) {
    try {
      im.Compile();
    } catch (const Error& e) {
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("pipeline: stored steps are inconsistent: {}", e.message()));
    }
    const std::vector<std::string> stored(m.outputs().begin(), m.outputs().end());
    ESCALA_CHECK(stored == im.outputs, kDataLoss,
                 "pipeline: stored outputs do not match the compiled steps");
  }
  return p;
}

std::string Pipeline::Describe() const {
  std::string s =
      fmt::format("pipeline: {} input(s) -> {} feature(s){}\n", impl_->inputs.num_fields(),
                  impl_->outputs.size(), impl_->keep_missing ? " (missing values kept)" : "");
  for (const auto& st : impl_->steps) {
    s += fmt::format("  {}", st.spec);
    if (!st.columns.empty()) s += fmt::format("  [{}]", JoinNames(st.columns, 8));
    s += "\n";
  }
  return s;
}

}  // namespace escala::features
