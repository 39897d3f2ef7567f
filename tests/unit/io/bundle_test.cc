#include "escala/io/bundle.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/models/factory.h"
#include "test_util/bundles.h"
#include "test_util/temp_dir.h"

namespace escala::io {
namespace {

ErrorCode CodeOf(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  return ErrorCode::kOk;
}

TEST(Bundle, SaveLoadKeepsEverythingAndPredictsIdentically) {
  auto b = testing::MixedSoftmaxBundle();
  b->metrics["valid_accuracy"] = 0.9;
  b->training_config["optimizer"] = "lbfgs";
  EpochRecord r;
  r.epoch = 1;
  r.train_loss = 0.5;
  r.valid["accuracy"] = 0.9;
  b->history.push_back(r);
  testing::TempDir dir;
  const std::string path = dir.File("m.bundle");
  b->Save(path);
  const ModelBundle back = ModelBundle::Load(path);
  EXPECT_EQ(back.format_version, kBundleFormatVersion);
  EXPECT_EQ(back.class_names, b->class_names);
  EXPECT_EQ(back.label, "label");
  EXPECT_EQ(back.metrics.at("valid_accuracy"), 0.9);
  EXPECT_EQ(back.training_config.at("optimizer"), "lbfgs");
  ASSERT_EQ(back.history.size(), 1u);
  EXPECT_EQ(back.history[0].valid.at("accuracy"), 0.9);
  EXPECT_GT(back.created_unix_ms, 0);
  EXPECT_EQ(back.input_schema(), b->input_schema());
  EXPECT_EQ(back.model->Describe(), b->model->Describe());
  EXPECT_EQ(models::SerializeModel(*back.model), models::SerializeModel(*b->model));
}

TEST(Bundle, CorruptionTruncationAndForeignFilesAreDataLoss) {
  const std::string bytes = testing::NumericLogisticBundle(3)->SerializeToString();
  std::string msg;
  std::string flipped = bytes;
  flipped[bytes.size() - 10] ^= 1;
  EXPECT_EQ(CodeOf([&] { ModelBundle::ParseFromString(flipped, "m.bundle"); }, &msg),
            ErrorCode::kDataLoss);
  EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
  EXPECT_EQ(
      CodeOf([&] { ModelBundle::ParseFromString(bytes.substr(0, bytes.size() / 2), "m.bundle"); },
             &msg),
      ErrorCode::kDataLoss);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_EQ(CodeOf([&] { ModelBundle::ParseFromString("hello world, not a bundle", "x"); }, &msg),
            ErrorCode::kDataLoss);
  EXPECT_NE(msg.find("wrong magic"), std::string::npos) << msg;
  EXPECT_EQ(CodeOf([] { ModelBundle::Load("/nonexistent/m.bundle"); }), ErrorCode::kNotFound);
  // A newer format than this build knows.
  std::string newer = bytes;
  newer[8] = static_cast<char>(kBundleFormatVersion + 1);
  EXPECT_EQ(CodeOf([&] { ModelBundle::ParseFromString(newer, "m.bundle"); }, &msg),
            ErrorCode::kFailedPrecondition);
  EXPECT_NE(msg.find("newer"), std::string::npos) << msg;
}

TEST(Bundle, SaveNeverLeavesAHalfWrittenFile) {
  testing::TempDir dir;
  const std::string path = dir.File("m.bundle");
  testing::NumericLogisticBundle(3)->Save(path);
  const std::string before = ReadFileToString(path);
  ModelBundle empty;  // no model: refuses to serialise
  EXPECT_THROW(empty.Save(path), Error);
  EXPECT_EQ(ReadFileToString(path), before);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temporary file left behind
}

// Bundles written by earlier format versions stay readable and predict the same. The file and
// its expected predictions are checked in (tests/data/bundles/, written by format version 1 with
// `escala train` and `escala score`).
TEST(Bundle, ReadsTheCheckedInFormatVersion1Bundle) {
  const auto bundle = std::make_shared<const ModelBundle>(
      ModelBundle::Load(testing::SourcePath("tests/data/bundles/v1_penguins_softmax.bundle")));
  EXPECT_EQ(bundle->format_version, 1u);
  EXPECT_EQ(bundle->class_names, (std::vector<std::string>{"Adelie", "Chinstrap", "Gentoo"}));
  std::ifstream expected(
      testing::SourcePath("tests/data/bundles/v1_penguins_softmax.expected.csv"));
  ASSERT_TRUE(expected.good());
  // island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year,species,
  // p_Adelie,p_Chinstrap,p_Gentoo
  const std::vector<std::string> names = {
      "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex",
      "year"};
  std::string line;
  std::getline(expected, line);
  Predictor predictor(bundle);
  int rows = 0;
  while (std::getline(expected, line)) {
    std::vector<std::string> f;
    std::size_t start = 0;
    for (;;) {
      const auto comma = line.find(',', start);
      f.push_back(
          line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    ASSERT_EQ(f.size(), 11u) << line;
    const auto& schema = bundle->input_schema();
    const auto n = static_cast<std::size_t>(schema.num_fields());
    std::vector<double> nums(n);
    std::vector<std::string_view> strs(n);
    std::vector<std::uint8_t> missing(n, 0);
    features::RawBatch batch;
    batch.rows = 1;
    batch.columns.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      const auto& field = schema.field(static_cast<int>(j));
      const auto pos = static_cast<std::size_t>(std::find(names.begin(), names.end(), field.name) -
                                                names.begin());
      ASSERT_LT(pos, names.size()) << field.name;
      auto& c = batch.columns[j];
      missing[j] = f[pos].empty() || f[pos] == "NA" ? 1 : 0;
      if (field.type == data::DataType::kCategorical) {
        strs[j] = f[pos];
        c = {features::RawColumn::Kind::kStrings, &strs[j], 1, &missing[j], nullptr};
      } else {
        nums[j] = missing[j] ? 0.0 : std::stod(f[pos]);
        c = {features::RawColumn::Kind::kFloat64, &nums[j], 1, &missing[j], nullptr};
      }
    }
    PredictScratch ps;
    MatrixF p(1, 3);
    predictor.Predict(batch, p.view(), ps);
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(p(0, static_cast<std::int64_t>(k)), std::stod(f[8 + k]), 1e-6) << line;
    ++rows;
  }
  EXPECT_GE(rows, 5);
}

}  // namespace
}  // namespace escala::io
