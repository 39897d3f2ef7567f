#include "escala/train/params.h"

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/models/factory.h"

namespace escala::train {
namespace {

using ::testing::HasSubstr;

std::string ValidateError(const TrainSpec& s) {
  try {
    Validate(s);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

TrainSpec Labelled() {
  TrainSpec s;
  s.label = "y";
  return s;
}

TEST(TrainParams, NamesAreUniqueSnakeCaseAndEveryOneIsDocumented) {
  std::set<std::string> names;
  for (const auto& info : TrainParams().Infos()) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_EQ(info.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"),
              std::string::npos)
        << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
    EXPECT_FALSE(info.group.empty()) << info.name;
  }
  EXPECT_GE(names.size(), 30u);
}

TEST(TrainParams, EveryRegisteredModelKindIsAValidModel) {
  const auto* model = TrainParams().Find("model");
  ASSERT_NE(model, nullptr);
  for (const auto& kind : models::ModelKinds()) {
    EXPECT_THAT(model->info.range, HasSubstr(kind));
    TrainSpec s = Labelled();
    s.model = kind;
    EXPECT_EQ(ValidateError(s), "") << kind;
  }
}

TEST(TrainParams, SetWritesTheSpecFieldsTheLibraryReads) {
  TrainSpec s = Labelled();
  const auto& t = TrainParams();
  t.Set(s, "batch_size", "64", "batch_size");
  t.Set(s, "lr", "0.05", "lr");
  t.Set(s, "optimizer", "sgd", "optimizer");
  t.Set(s, "hidden", "32,16", "hidden");
  t.Set(s, "activation", "tanh", "activation");
  t.Set(s, "pipeline", "none", "pipeline");
  t.Set(s, "bucket_kb", "64", "bucket_kb");
  t.Set(s, "resume", "true", "resume");
  t.Set(s, "min_delta", "0.001", "min_delta");
  EXPECT_EQ(s.options.batch_size, 64);
  EXPECT_FLOAT_EQ(*s.lr, 0.05f);
  EXPECT_EQ(*s.optimizer, "sgd");
  EXPECT_EQ(s.hidden, (std::vector<std::int64_t>{32, 16}));
  EXPECT_EQ(s.activation, models::Activation::kTanh);
  EXPECT_EQ(s.pipeline, "");  // none: numeric columns as they are
  EXPECT_EQ(s.options.bucket_bytes, 64u << 10);
  EXPECT_TRUE(s.options.checkpoint.resume);
  EXPECT_DOUBLE_EQ(s.options.early_stopping.min_delta, 0.001);
  EXPECT_EQ(ValidateError(s), "");
  const auto values = t.Values(s);
  EXPECT_EQ(values.at("bucket_kb"), "64");
  EXPECT_EQ(values.at("activation"), "tanh");
}

TEST(TrainParams, ValidateNamesTheFieldItsRangeAndTheValue) {
  const std::vector<std::pair<std::function<void(TrainSpec&)>, std::string>> cases = {
      {[](TrainSpec& s) { s.label.clear(); }, "label is required"},
      {[](TrainSpec& s) { s.lr = 0.0f; }, "lr must be > 0, got 0"},
      {[](TrainSpec& s) { s.l2 = -1.0f; }, "l2 must be >= 0, got -1"},
      {[](TrainSpec& s) { s.dropout = 1.0f; }, "dropout must be in [0, 1), got 1"},
      {[](TrainSpec& s) { s.valid_fraction = -0.1; }, "valid_fraction must be in [0, 1)"},
      {[](TrainSpec& s) { s.cv = 1; }, "cv must be 0 (off) or at least 2 folds, got 1"},
      {[](TrainSpec& s) { s.epochs = 0; }, "epochs must be >= 1, got 0"},
      {[](TrainSpec& s) { s.options.batch_size = 0; }, "batch_size must be >= 1, got 0"},
      {[](TrainSpec& s) { s.options.optimizer.momentum = 1.0f; }, "momentum must be in [0, 1)"},
      {[](TrainSpec& s) { s.model = "forest"; }, "model must be one of "},
      {[](TrainSpec& s) { s.task = "ranking"; }, "task must be one of auto, regression"},
      {[](TrainSpec& s) { s.optimizer = "adagrad"; }, "optimizer must be one of sgd"},
      {[](TrainSpec& s) { s.options.schedule.name = "exp"; }, "schedule must be one of constant"},
  };
  for (const auto& [mutate, message] : cases) {
    TrainSpec s = Labelled();
    mutate(s);
    EXPECT_THAT(ValidateError(s), HasSubstr(message)) << message;
  }
}

}  // namespace
}  // namespace escala::train
