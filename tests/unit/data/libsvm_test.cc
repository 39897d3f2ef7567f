#include "escala/data/libsvm.h"

#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;

TEST(Libsvm, ParsesLabelsIndicesQidAndComments) {
  const SparseData d = ParseLibsvm(
      "# header comment\n"
      "+1 1:0.5 3:-2 # trailing comment\n"
      "\n"
      "-1 qid:7 2:1e-3\n"
      "0\n"
      "2.5 4:4\r\n");
  ASSERT_EQ(d.x.rows, 4);
  EXPECT_EQ(d.x.cols, 4);
  EXPECT_EQ(d.labels, (std::vector<float>{1, -1, 0, 2.5f}));
  EXPECT_EQ(d.x.indptr, (std::vector<std::int64_t>{0, 2, 3, 3, 4}));
  EXPECT_EQ(d.x.indices, (std::vector<std::int32_t>{0, 2, 1, 3}));
  EXPECT_EQ(d.x.values, (std::vector<float>{0.5f, -2, 1e-3f, 4}));
  d.x.Validate();
  const MatrixF dense = d.x.ToDense();
  EXPECT_EQ(dense(0, 2), -2.0f);
  EXPECT_EQ(dense(1, 0), 0.0f);
}

TEST(Libsvm, ZeroBasedAndFixedWidth) {
  LibsvmOptions o;
  o.zero_based = true;
  o.num_features = 10;
  const SparseData d = ParseLibsvm("1 0:1 9:2\n", o);
  EXPECT_EQ(d.x.cols, 10);
  EXPECT_EQ(d.x.indices, (std::vector<std::int32_t>{0, 9}));
}

std::string ErrorOf(const std::string& text, LibsvmOptions o = {}) {
  try {
    ParseLibsvm(text, o, "d.svm");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.message();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(Libsvm, BadInputNamesLineColumnAndText) {
  EXPECT_THAT(ErrorOf("1 1:1\n1 0:5\n"), HasSubstr("d.svm:2:3: feature index 0 in a 1-based file"));
  EXPECT_THAT(ErrorOf("1 2:1 -3:1\n"), HasSubstr("d.svm:1:7: negative feature index -3"));
  EXPECT_THAT(ErrorOf("1 1:1 5:2 3:1\n"),
              HasSubstr("d.svm:1:11: feature indices must increase within a line: 3 after 5"));
  EXPECT_THAT(ErrorOf("1 1:1 1:2\n"), HasSubstr("indices must increase"));
  EXPECT_THAT(ErrorOf("x 1:1\n"), HasSubstr("d.svm:1:1: cannot parse the label 'x'"));
  EXPECT_THAT(ErrorOf("1 1:abc\n"), HasSubstr("d.svm:1:5: cannot parse the value 'abc'"));
  EXPECT_THAT(ErrorOf("1 7\n"), HasSubstr("d.svm:1:3: expected index:value, found '7'"));
  EXPECT_THAT(ErrorOf("1 a:1\n"), HasSubstr("cannot parse the index 'a'"));
  EXPECT_THAT(ErrorOf("1 qid:x 1:1\n"), HasSubstr("malformed qid"));
  LibsvmOptions narrow;
  narrow.num_features = 3;
  EXPECT_THAT(ErrorOf("1 4:1\n", narrow), HasSubstr("feature index 4 is beyond the 3 features"));
  EXPECT_THAT(ErrorOf("\n  \n"), HasSubstr("d.svm: empty file"));
  EXPECT_THAT(ErrorOf("1 1:1\n1 2:2\n1 0:1\n"), HasSubstr("line 3 is \"1 0:1\""));
}

TEST(Libsvm, SkipPolicy) {
  LibsvmOptions o;
  o.on_error = OnError::kSkip;
  ReadReport report;
  const SparseData d = ParseLibsvm("1 1:1\n1 0:1\n-1 2:2 2:3\n0 3:3\n", o, "d.svm", &report);
  EXPECT_EQ(d.x.rows, 2);
  EXPECT_EQ(d.labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(d.x.indices, (std::vector<std::int32_t>{0, 2}));
  EXPECT_EQ(report.skipped_rows, 2);
  EXPECT_THAT(report.skipped_examples[1], HasSubstr("d.svm:3:"));
  d.x.Validate();
}

TEST(Libsvm, LargeInputAcrossWindowsAndThreads) {
  std::string text;
  for (int i = 0; i < 200000; ++i) {
    text += std::to_string(i % 2) + " " + std::to_string(1 + i % 50) + ":" + std::to_string(i) +
            " 60:1\n";
  }
  for (const int threads : {1, 3}) {
    SetNumThreads(threads);
    const SparseData d = ParseLibsvm(text);
    ASSERT_EQ(d.x.rows, 200000);
    EXPECT_EQ(d.x.cols, 60);
    d.x.Validate();
    for (int i = 0; i < 200000; i += 4999) {
      ASSERT_EQ(d.x.row_indices(i)[0], i % 50);
      ASSERT_EQ(d.x.row_values(i)[0], static_cast<float>(i));
    }
  }
  SetNumThreads(0);
}

// The liblinear example file, checked against scikit-learn's loader when it is installed.
TEST(Libsvm, HeartScaleMatchesScikitLearn) {
  const std::string path = "/usr/share/doc/liblinear-tools/examples/heart_scale";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not installed";
  const SparseData d = ReadLibsvm(path);
  EXPECT_EQ(d.x.rows, 270);
  EXPECT_EQ(d.x.cols, 13);
  d.x.Validate();
  if (testing::Python().empty()) GTEST_SKIP() << "python3 not available";
  testing::TempDir dir;
  std::string out;
  try {
    out = testing::RunPython(dir,
                             "from sklearn.datasets import load_svmlight_file\n"
                             "X, y = load_svmlight_file('" +
                                 path +
                                 "')\n"
                                 "print(X.shape[0], X.shape[1], X.nnz, repr(float(X.sum())), "
                                 "repr(float(y.sum())))\n");
  } catch (const std::exception&) {
    GTEST_SKIP() << "scikit-learn not available";
  }
  std::istringstream in(out);
  std::int64_t rows, cols, nnz;
  double sum, ysum;
  in >> rows >> cols >> nnz >> sum >> ysum;
  EXPECT_EQ(d.x.rows, rows);
  EXPECT_EQ(d.x.cols, cols);
  EXPECT_EQ(d.x.nnz(), nnz);
  double my = 0, my_y = 0;
  for (const float v : d.x.values) my += v;
  for (const float v : d.labels) my_y += v;
  EXPECT_NEAR(my, sum, 1e-3);
  EXPECT_EQ(my_y, ysum);
}

}  // namespace
}  // namespace escala::data
