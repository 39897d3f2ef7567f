// Every kind of malformed CSV input: the error names file:line:column and quotes the text, and
// on_error=skip counts what it drops.
#include <zlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/csv.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

std::string ErrorOf(const std::string& text, CsvOptions o = {}, bool dense = false) {
  try {
    if (dense) {
      ParseCsvDense(text, {}, o, "data.csv");
    } else {
      ParseCsv(text, o, "data.csv");
    }
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.message();
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(CsvErrors, RaggedRowsNameLineColumnAndText) {
  for (const bool dense : {false, true}) {
    const std::string fewer = ErrorOf("a,b,c\n1,2,3\n4,5\n", {}, dense);
    EXPECT_THAT(fewer, HasSubstr("data.csv:3:4: expected 3 fields, found 2"));
    EXPECT_THAT(fewer, HasSubstr("line 3 is \"4,5\""));
    const std::string more = ErrorOf("a,b\n1,2\n3,4,5,6\n", {}, dense);
    EXPECT_THAT(more, HasSubstr("data.csv:3:4: expected 2 fields, found 4"));
  }
}

TEST(CsvErrors, UnparsableNumber) {
  CsvOptions numeric;
  numeric.column_types = {{"y", DataType::kFloat64}};
  for (const bool dense : {false, true}) {
    const std::string msg = ErrorOf("x,y\n1,2\n3,4.5.6\n", numeric, dense);
    EXPECT_THAT(msg, HasSubstr("data.csv:3:3: field 2 'y': cannot parse '4.5.6'"));
    EXPECT_THAT(msg, HasSubstr("line 3 is \"3,4.5.6\""));
  }
  // Inferred numeric on the sample, text later: the message says where.
  CsvOptions o;
  o.infer_rows = 1;
  EXPECT_THAT(ErrorOf("x\n1\nabc\n", o),
              HasSubstr("data.csv:3:1: field 1 'x': cannot parse 'abc' as float64"));
  CsvOptions ints;
  ints.column_types = {{"n", DataType::kInt64}};
  EXPECT_THAT(ErrorOf("n\n1\n2.5\n", ints),
              HasSubstr("data.csv:3:1: field 1 'n': cannot parse '2.5' as int64"));
  EXPECT_THAT(ErrorOf("n\n99999999999999999999\n", ints), HasSubstr("as int64"));
}

TEST(CsvErrors, CategoriesMustBeUtf8Text) {
  // Well-formed UTF-8 of every length reads; invalid bytes, overlong forms, surrogates and code
  // points past U+10FFFF are refused where they are, shown escaped.
  const Table t = ParseCsv("c\ncaf\xc3\xa9\n\xe2\x82\xac\n\xf0\x9f\x98\x80\n", {}, "data.csv");
  EXPECT_EQ(t.column("c").category(2), "\xf0\x9f\x98\x80");
  for (const std::string bad :
       {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82"}) {
    const std::string msg = ErrorOf("c,n\nok,1\n" + bad + ",2\n");
    EXPECT_THAT(msg, HasSubstr("data.csv:3:1: field 1 'c': '"));
    EXPECT_THAT(msg, HasSubstr("is not UTF-8 text"));
    EXPECT_THAT(msg, HasSubstr("\\x"));  // no raw byte in the message
  }
}

TEST(CsvErrors, UnterminatedQuote) {
  for (const bool dense : {false, true}) {
    const std::string msg = ErrorOf("a,b\n1,2\n3,\"abc\n4,5\n", {}, dense);
    EXPECT_THAT(msg, HasSubstr("data.csv:3:3: field 2 'b': unterminated quoted field"));
  }
  CsvOptions no_newlines;
  no_newlines.quoted_newlines = false;
  EXPECT_THAT(ErrorOf("a,b\n1,\"x\n2,3\n", no_newlines),
              HasSubstr("data.csv:2:3: field 2 'b': unterminated quoted field (it reaches the end "
                        "of the line"));
}

TEST(CsvErrors, InvalidEscapes) {
  for (const bool dense : {false, true}) {
    EXPECT_THAT(ErrorOf("a,b\n1,ab\"c\n", {}, dense),
                HasSubstr("data.csv:2:5: field 2 'b': quote character inside an unquoted field"));
    EXPECT_THAT(ErrorOf("a,b\n1,\"ab\"c\n", {}, dense),
                HasSubstr("data.csv:2:7: field 2 'b': unexpected 'c' after the closing quote"));
  }
}

TEST(CsvErrors, EmptyFileAndHeaderProblems) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("data.csv: empty file (no header line found)"));
  EXPECT_THAT(ErrorOf("\n\n"), HasSubstr("empty file"));
  CsvOptions no_header;
  no_header.header = false;
  EXPECT_THAT(ErrorOf("", no_header), HasSubstr("empty file (no record found)"));
  EXPECT_THAT(ErrorOf("a,b,a\n1,2,3\n"),
              HasSubstr("data.csv:1:1: duplicate column name 'a' in the header (columns 1 and 3)"));
  TempDir dir;
  WriteFile(dir.File("empty.csv"), "");
  try {
    ReadCsv(dir.File("empty.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.message(), HasSubstr("empty.csv: empty file"));
  }
  try {
    ReadCsv(dir.File("missing.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  CsvOptions bad_override;
  bad_override.column_types = {{"nope", DataType::kInt64}};
  try {
    ParseCsv("a,b\n1,2\n", bad_override);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_THAT(e.message(), HasSubstr("'nope'"));
    EXPECT_THAT(e.message(), HasSubstr("a:float64, b:float64"));
  }
}

TEST(CsvErrors, CategoricalFeatureInDenseReadIsNamed) {
  try {
    ParseCsvDense("a,s\n1,x\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.message(), HasSubstr("column 's' is categorical"));
  }
  try {
    DenseSpec spec;
    spec.label = "nope";
    ParseCsvDense("a,b\n1,2\n", spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_THAT(e.message(), HasSubstr("no column named 'nope' (columns: a, b)"));
  }
}

TEST(CsvErrors, SkipPolicyCountsAndReports) {
  CsvOptions o;
  o.on_error = OnError::kSkip;
  o.column_types = {{"b", DataType::kFloat64}};
  for (const bool dense : {false, true}) {
    const std::string text = "a,b\n1,2\n3\n4,x\n5,\"6\"z\n7,8\n9,\"unterminated\n";
    ReadReport report;
    std::int64_t rows;
    if (dense) {
      const DenseData d = ParseCsvDense(text, {}, o, "data.csv", &report);
      rows = d.rows();
      ASSERT_EQ(rows, 2);
      EXPECT_EQ(d.features(1, 0), 7.0f);
    } else {
      const Table t = ParseCsv(text, o, "data.csv", &report);
      rows = t.num_rows();
      ASSERT_EQ(rows, 2);
      EXPECT_EQ(t.column("b").f64()[1], 8.0);
    }
    EXPECT_EQ(report.rows, 2);
    EXPECT_EQ(report.skipped_rows, 4);
    ASSERT_EQ(report.skipped_examples.size(), 4u);
    EXPECT_THAT(report.skipped_examples[0], HasSubstr("data.csv:3:2: expected 2 fields, found 1"));
    EXPECT_THAT(report.skipped_examples[1],
                HasSubstr("data.csv:4:3: field 2 'b': cannot parse 'x'"));
    EXPECT_THAT(report.skipped_examples[2], HasSubstr("data.csv:5:"));
    EXPECT_THAT(report.skipped_examples[3], HasSubstr("data.csv:7:3: field 2 'b': unterminated"));
    EXPECT_THAT(report.Summary(), HasSubstr("4 malformed rows skipped"));
  }
}

// Errors deep in a multi-window file report the right line, and the first error in file order
// wins even when several windows fail in parallel.
TEST(CsvErrors, LineNumbersAcrossWindows) {
  SetNumThreads(2);
  std::string text = "a,b\n";
  for (int i = 0; i < 400000; ++i) text += std::to_string(i) + "," + std::to_string(i % 97) + "\n";
  std::string bad = text;
  // Line numbers: the header is line 1, row i is on line i + 2.
  const std::string row1 = "\n250000,";
  bad.replace(bad.find(row1) + row1.size(), 2, "zz");
  const std::string row2 = "\n390000,";
  bad.replace(bad.find(row2) + row2.size(), 1, "q");
  for (const bool dense : {false, true}) {
    const std::string msg = ErrorOf(bad, {}, dense);
    EXPECT_THAT(msg, HasSubstr("data.csv:250002:8: field 2 'b': cannot parse 'zz"));
  }
  TempDir dir;
  WriteFile(dir.File("big.csv"), bad);
  try {
    ReadCsvDense(dir.File("big.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.message(), HasSubstr("big.csv:250002:8:"));
  }
  CsvOptions skip;
  skip.on_error = OnError::kSkip;
  ReadReport report;
  const DenseData d = ReadCsvDense(dir.File("big.csv"), {}, skip, &report);
  EXPECT_EQ(d.rows(), 400000 - 2);
  EXPECT_EQ(report.skipped_rows, 2);
  ASSERT_EQ(report.skipped_examples.size(), 2u);
  EXPECT_THAT(report.skipped_examples[1], HasSubstr("big.csv:390002:8:"));
  SetNumThreads(0);
}

// Regression: a gzip trailer claiming a huge size made the reader allocate (and zero) that much
// before noticing the corruption.
TEST(CsvErrors, RegressionCorruptGzipTrailerFailsCleanly) {
  TempDir dir;
  const std::string path = dir.File("c.csv.gz");
  gzFile f = gzopen(path.c_str(), "wb");
  const std::string text = "a,b\n1,2\n3,4\n";
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  std::string bytes = testing::ReadFile(path);
  for (int i = 1; i <= 4; ++i) bytes[bytes.size() - static_cast<std::size_t>(i)] = '\xff';
  WriteFile(path, bytes);
  try {
    CsvOptions mapped;
    mapped.memory_map = true;  // whole-file inflate, which sizes its buffer from the trailer
    ReadCsv(path, mapped);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.message(), HasSubstr("invalid gzip data"));
  }
  EXPECT_THROW(ReadCsv(path), Error);  // the streaming inflate checks the trailer too
}

}  // namespace
}  // namespace escala::data
