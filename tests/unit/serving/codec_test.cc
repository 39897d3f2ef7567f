#include "serving/codec.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "test_util/bundles.h"

namespace escala::serving::internal {
namespace {

using inference::ModelInferRequest;

std::string Raw(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

std::string RawBytes(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    const auto n = static_cast<std::uint32_t>(s.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((n >> (8 * b)) & 0xff));
    out += s;
  }
  return out;
}

std::string Message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "no error";
}

TEST(Codec, MatrixFormMatchesTheBundlePredictions) {
  auto bundle = testing::NumericLogisticBundle(4);
  const auto sig = SignatureOf(*bundle);
  EXPECT_TRUE(sig.matrix_input);
  ModelInferRequest req;
  auto* in = req.add_inputs();
  in->set_name("features");
  in->set_datatype("FP32");
  in->add_shape(2);
  in->add_shape(4);
  req.add_raw_input_contents(Raw({1, 2, 3, 4, -1, 0, 0.5f, 2}));
  DecodeScratch scratch;
  const auto batch = DecodeRequest(req, sig, scratch);
  ASSERT_EQ(batch.rows, 2);
  io::Predictor predictor(bundle);
  io::PredictScratch ps;
  MatrixF p(2, 1);
  predictor.Predict(batch, p.view(), ps);
  inference::ModelInferResponse resp;
  EncodeOutputs(sig, SelectOutputs(req, sig), std::as_const(p).view(), &resp);
  ASSERT_EQ(resp.outputs_size(), 3);
  EXPECT_EQ(resp.outputs(0).name(), "probabilities");
  float probs[4];
  std::memcpy(probs, resp.raw_output_contents(0).data(), 16);
  EXPECT_NEAR(probs[0] + probs[1], 1.0f, 1e-6);
  EXPECT_FLOAT_EQ(probs[1], p(0, 0));
  EXPECT_EQ(resp.outputs(1).datatype(), "BYTES");
  // Typed contents give the same batch.
  ModelInferRequest typed = req;
  typed.clear_raw_input_contents();
  for (float v : {1.f, 2.f, 3.f, 4.f, -1.f, 0.f, 0.5f, 2.f})
    typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v);
  MatrixF p2(2, 1);
  predictor.Predict(DecodeRequest(typed, sig, scratch), p2.view(), ps);
  EXPECT_EQ(p2(1, 0), p(1, 0));
}

TEST(Codec, ColumnFormWithCategoricalBytes) {
  auto bundle = testing::MixedSoftmaxBundle();
  const auto sig = SignatureOf(*bundle);
  EXPECT_FALSE(sig.matrix_input);
  ModelInferRequest req;
  for (const auto& [name, dt] : std::vector<std::pair<std::string, std::string>>{
           {"color", "BYTES"}, {"x", "FP64"}, {"y", "FP32"}}) {
    auto* in = req.add_inputs();
    in->set_name(name);
    in->set_datatype(dt);
    in->add_shape(2);
  }
  req.add_raw_input_contents(RawBytes({"blue", ""}));  // "" is missing -> ignored by onehot
  const double xs[] = {0.5, std::nan("")};
  req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(xs), 16));
  req.add_raw_input_contents(Raw({0.1f, -2.0f}));
  DecodeScratch scratch;
  const auto batch = DecodeRequest(req, sig, scratch);
  io::Predictor predictor(bundle);
  io::PredictScratch ps;
  MatrixF p(2, 3);
  predictor.Predict(batch, p.view(), ps);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(p(i, 0) + p(i, 1) + p(i, 2), 1.0f, 1e-5);
  inference::ModelInferResponse resp;
  req.add_outputs()->set_name("label");
  EncodeOutputs(sig, SelectOutputs(req, sig), std::as_const(p).view(), &resp);
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "label");
}

TEST(Codec, BadRequestsNameTheField) {
  auto bundle = testing::MixedSoftmaxBundle();
  const auto sig = SignatureOf(*bundle);
  DecodeScratch scratch;
  auto base = [] {
    ModelInferRequest req;
    auto* c = req.add_inputs();
    c->set_name("color");
    c->set_datatype("BYTES");
    c->add_shape(1);
    c->mutable_contents()->add_bytes_contents("red");
    auto* x = req.add_inputs();
    x->set_name("x");
    x->set_datatype("FP32");
    x->add_shape(1);
    x->mutable_contents()->add_fp32_contents(1);
    auto* y = req.add_inputs();
    y->set_name("y");
    y->set_datatype("FP32");
    y->add_shape(1);
    y->mutable_contents()->add_fp32_contents(1);
    return req;
  };
  EXPECT_NO_THROW(DecodeRequest(base(), sig, scratch));
  {
    auto r = base();
    r.mutable_inputs(0)->set_datatype("FP32");
    EXPECT_NE(Message([&] {
                DecodeRequest(r, sig, scratch);
              }).find("inputs[0] ('color'): datatype FP32 but the column is categorical"),
              std::string::npos);
  }
  {
    auto r = base();
    r.mutable_inputs()->RemoveLast();
    EXPECT_NE(Message([&] { DecodeRequest(r, sig, scratch); }).find("missing required input 'y'"),
              std::string::npos);
  }
  {
    auto r = base();
    r.mutable_inputs(1)->set_name("z");
    EXPECT_NE(
        Message([&] { DecodeRequest(r, sig, scratch); }).find("inputs[1] ('z'): unknown input"),
        std::string::npos);
  }
  {
    auto r = base();
    r.mutable_inputs(1)->mutable_contents()->add_fp32_contents(2);
    EXPECT_NE(Message([&] {
                DecodeRequest(r, sig, scratch);
              }).find("contents has 2 values of FP32; shape [1] needs 1"),
              std::string::npos);
  }
  {
    auto r = base();
    r.add_raw_input_contents("abc");
    EXPECT_NE(Message([&] {
                DecodeRequest(r, sig, scratch);
              }).find("raw_input_contents: 1 entries for 3 inputs"),
              std::string::npos);
  }
  {
    auto r = base();
    for (int i = 0; i < 3; ++i) r.add_raw_input_contents("");
    EXPECT_NE(Message([&] {
                DecodeRequest(r, sig, scratch);
              }).find("contents is set although the request uses raw_input_contents"),
              std::string::npos);
  }
  {
    auto r = base();
    r.mutable_inputs(2)->set_datatype("FP16");
    EXPECT_NE(
        Message([&] { DecodeRequest(r, sig, scratch); }).find("datatype FP16 is not supported"),
        std::string::npos);
  }
  {
    auto r = base();
    r.add_outputs()->set_name("logits");
    EXPECT_NE(Message([&] { SelectOutputs(r, sig); }).find("unknown output 'logits'"),
              std::string::npos);
  }
  {
    ModelInferRequest r;
    auto* f = r.add_inputs();
    f->set_name("features");
    f->set_datatype("FP32");
    f->add_shape(1);
    f->add_shape(3);
    EXPECT_NE(Message([&] { DecodeRequest(r, sig, scratch); }).find("categorical inputs"),
              std::string::npos);
  }
}

TEST(Codec, RawSizeAndBytesFramingAreChecked) {
  auto bundle = testing::NumericLogisticBundle(4);
  const auto sig = SignatureOf(*bundle);
  DecodeScratch scratch;
  ModelInferRequest req;
  auto* in = req.add_inputs();
  in->set_name("features");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  req.add_raw_input_contents(Raw({1, 2, 3}));
  EXPECT_NE(Message([&] {
              DecodeRequest(req, sig, scratch);
            }).find("has 12 bytes; shape [1,4] of FP32 needs 16"),
            std::string::npos);
  in->set_shape(1, 5);
  EXPECT_NE(
      Message([&] { DecodeRequest(req, sig, scratch); }).find("shape [1,5] does not match [-1, 4]"),
      std::string::npos);

  auto mixed = testing::MixedSoftmaxBundle();
  const auto msig = SignatureOf(*mixed);
  ModelInferRequest b;
  auto* c = b.add_inputs();
  c->set_name("color");
  c->set_datatype("BYTES");
  c->add_shape(2);
  b.add_raw_input_contents(std::string("\x05\x00\x00\x00red", 7));  // claims 5 bytes, has 3
  EXPECT_NE(Message([&] { DecodeRequest(b, msig, scratch); }).find("runs past the end"),
            std::string::npos);
}

// Thousands of random and mutated requests: every one either decodes or fails with
// InvalidArgument; nothing crashes, nothing else escapes.
TEST(Codec, FuzzedRequestsNeverCrash) {
  auto bundle = testing::MixedSoftmaxBundle();
  const auto sig = SignatureOf(*bundle);
  io::Predictor predictor(bundle);
  std::mt19937_64 rng(99);
  const char* names[] = {"color", "x", "y", "features", "", "zz"};
  const char* types[] = {"BYTES", "FP32", "FP64", "INT64", "INT32", "FP16", "BOOL", "junk"};
  int decoded = 0, rejected = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    ModelInferRequest req;
    const int n = static_cast<int>(rng() % 4) + (iter % 7 == 0 ? 0 : 1);
    const bool raw = rng() % 2;
    for (int i = 0; i < n; ++i) {
      auto* in = req.add_inputs();
      in->set_name(names[rng() % 6]);
      in->set_datatype(types[rng() % 8]);
      const int dims = static_cast<int>(rng() % 3);
      for (int d = 0; d < dims; ++d)
        in->add_shape(static_cast<std::int64_t>(rng() % 5) - (rng() % 13 == 0 ? 3 : 0));
      std::string blob(rng() % 24, '\0');
      for (char& ch : blob) ch = static_cast<char>(rng());
      if (raw) {
        req.add_raw_input_contents(blob);
      } else {
        const int k = static_cast<int>(rng() % 4);
        for (int j = 0; j < k; ++j) {
          in->mutable_contents()->add_fp32_contents(static_cast<float>(rng() % 100));
          in->mutable_contents()->add_bytes_contents(blob.substr(0, rng() % (blob.size() + 1)));
        }
      }
    }
    DecodeScratch scratch;
    try {
      const auto batch = DecodeRequest(req, sig, scratch);
      SelectOutputs(req, sig);
      io::PredictScratch ps;
      MatrixF p(batch.rows, 3);
      try {
        predictor.Predict(batch, p.view(), ps);
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();  // e.g. NaN input
      }
      ++decoded;
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  RecordProperty("decoded", decoded);
}

}  // namespace
}  // namespace escala::serving::internal
