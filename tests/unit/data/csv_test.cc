#include "escala/data/csv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>
#include <zlib.h>

#include <gtest/gtest.h>

#include "escala/core/parallel.h"
#include "escala/data/split.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string GzipString(const std::string& s) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, s.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = static_cast<uInt>(s.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(Csv, ReadsTypedColumnsWithHeader) {
  const Table t = ParseCsv("a,b,c\n1,x,2.5\n2,y,NA\n3,x,-1e3\n");
  ASSERT_EQ(t.num_rows(), 3);
  ASSERT_EQ(t.num_columns(), 3);
  EXPECT_EQ(t.schema().ToString(), "a:float64, b:categorical, c:float64");
  EXPECT_EQ(t.column("a").f64()[2], 3.0);
  EXPECT_EQ(t.column("b").category(0), "x");
  EXPECT_EQ(t.column("b").category(1), "y");
  EXPECT_EQ(t.column("b").codes()[2], t.column("b").codes()[0]);
  EXPECT_EQ(t.column("b").dictionary().size(), 2u);
  EXPECT_TRUE(t.column("c").is_missing(1));
  EXPECT_TRUE(std::isnan(t.column("c").f64()[1]));
  EXPECT_EQ(t.column("c").missing_count(), 1);
  EXPECT_EQ(t.column("c").f64()[2], -1000.0);
  EXPECT_TRUE(t.column("a").missing_mask().empty());
}

TEST(Csv, QuotesDoubledQuotesEmbeddedDelimitersAndNewlines) {
  const std::string text =
      "id,text,v\r\n"
      "1,\"hello, world\",1\r\n"
      "2,\"say \"\"hi\"\"\",2\r\n"
      "3,\"two\nlines\",3\r\n"
      "4,plain,\"4\"\r\n";
  const Table t = ParseCsv(text);
  ASSERT_EQ(t.num_rows(), 4);
  const Column& c = t.column("text");
  EXPECT_EQ(c.category(0), "hello, world");
  EXPECT_EQ(c.category(1), "say \"hi\"");
  EXPECT_EQ(c.category(2), "two\nlines");
  EXPECT_EQ(c.category(3), "plain");
  EXPECT_EQ(t.column("v").f64()[3], 4.0);
  EXPECT_EQ(t.column("v").f64()[0], 1.0);  // CRLF stripped
}

TEST(Csv, NoHeaderDelimiterCommentsBlankLinesAndBom) {
  CsvOptions o;
  o.header = false;
  o.delimiter = ';';
  o.comment = '#';
  const Table t = ParseCsv("\xEF\xBB\xBF# a comment\n1;2\n\n# another\n3;4\n5;6", o);
  ASSERT_EQ(t.num_rows(), 3);
  EXPECT_EQ(t.schema().field(0).name, "c0");
  EXPECT_EQ(t.schema().field(1).name, "c1");
  EXPECT_EQ(t.column("c1").f64()[2], 6.0);  // last line without a newline
}

TEST(Csv, TabDelimiterSkipLinesAndPadding) {
  CsvOptions o;
  o.delimiter = '\t';
  o.skip_lines = 2;
  const Table t = ParseCsv("junk line\nmore junk\nx\ty\n 1.5 \t+2\n-3\t 4e-1\n", o);
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.column("x").f64()[0], 1.5);
  EXPECT_EQ(t.column("y").f64()[0], 2.0);
  EXPECT_EQ(t.column("y").f64()[1], 0.4);
}

TEST(Csv, MissingTokensAndOverrides) {
  CsvOptions o;
  o.column_types = {
      {"n", DataType::kInt64}, {"f", DataType::kFloat32}, {"s", DataType::kCategorical}};
  const Table t = ParseCsv("n,f,s,g\n1,1.5,10,?\n,null,NA,None\n-9223372036854775808,N/A,x,2\n", o);
  EXPECT_EQ(t.schema().ToString(), "n:int64, f:float32, s:categorical, g:float64");
  EXPECT_EQ(t.column("n").i64()[0], 1);
  EXPECT_TRUE(t.column("n").is_missing(1));
  EXPECT_EQ(t.column("n").i64()[2], std::numeric_limits<std::int64_t>::min());
  EXPECT_TRUE(t.column("f").is_missing(1));
  EXPECT_TRUE(t.column("f").is_missing(2));
  EXPECT_EQ(t.column("s").category(0), "10");
  EXPECT_TRUE(t.column("s").is_missing(1));
  EXPECT_EQ(t.column("s").codes()[1], -1);
  EXPECT_EQ(t.column("g").missing_count(), 2);

  CsvOptions custom;
  custom.missing_values = {"-999"};
  const Table u = ParseCsv("a\n-999\n5\n", custom);
  EXPECT_TRUE(u.column("a").is_missing(0));
  EXPECT_EQ(u.column("a").f64()[1], 5.0);
}

TEST(Csv, InferenceUsesTheSample) {
  CsvOptions o;
  o.float_type = DataType::kFloat32;
  const Table t = ParseCsv("a,b\n1,2\n3,x\n", o);
  EXPECT_EQ(t.column("a").type(), DataType::kFloat32);
  EXPECT_EQ(t.column("b").type(), DataType::kCategorical);
  EXPECT_EQ(t.column("b").category(0), "2");
}

TEST(Csv, HeaderOnlyGivesZeroRows) {
  const Table t = ParseCsv("a,b\n");
  EXPECT_EQ(t.num_rows(), 0);
  EXPECT_EQ(t.num_columns(), 2);
}

TEST(Csv, RowIdsAreByteOffsets) {
  CsvOptions o;
  o.row_ids = true;
  const Table t = ParseCsv("a\n10\n200\n3\n", o);
  ASSERT_EQ(t.row_ids().size(), 3u);
  EXPECT_EQ(t.row_ids()[0], MakeRowId(0, 2));
  EXPECT_EQ(t.row_ids()[1], MakeRowId(0, 5));
  EXPECT_EQ(t.row_ids()[2], MakeRowId(0, 9));
}

// Numbers are correctly rounded: compare the float fast path against strtod + rounding for many
// decimal strings of the shapes machine-written files use.
TEST(Csv, FloatParsingIsCorrectlyRounded) {
  std::mt19937_64 rng(7);
  std::string text = "x\n";
  std::vector<std::string> values;
  for (int i = 0; i < 200000; ++i) {
    const double v = std::ldexp(static_cast<double>(rng() >> 11), -53) *
                     std::pow(10.0, static_cast<int>(rng() % 24) - 12) * ((rng() & 1) ? -1 : 1);
    char buf[64];
    const int digits = 1 + static_cast<int>(rng() % 12);
    std::snprintf(buf, sizeof(buf), (rng() & 1) ? "%.*g" : "%.*e", digits, v);
    values.push_back(buf);
    text += buf;
    text += '\n';
  }
  const DenseData d = ParseCsvDense(text);
  ASSERT_EQ(d.rows(), static_cast<std::int64_t>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float expected = std::strtof(values[i].c_str(), nullptr);
    ASSERT_EQ(d.features(static_cast<std::int64_t>(i), 0), expected) << values[i];
  }
}

// The table reader takes plain numbers on a fast path and everything else on the general one:
// both give strtof's / strtod's value for every shape, including the ones only the general path
// takes (padding, '+', quotes, missing tokens, CRLF line ends), in float32 and float64 columns.
TEST(Csv, TableNumbersAreCorrectlyRoundedOnEitherPath) {
  std::mt19937_64 rng(9);
  std::vector<std::string> values;
  for (int i = 0; i < 50000; ++i) {
    const double v = std::ldexp(static_cast<double>(rng() >> 11), -53) *
                     std::pow(10.0, static_cast<int>(rng() % 24) - 12) * ((rng() & 1) ? -1 : 1);
    char buf[64];
    std::snprintf(buf, sizeof(buf), (rng() & 1) ? "%.*g" : "%.*e", 1 + static_cast<int>(rng() % 17),
                  v);
    values.push_back(buf);
  }
  const char* odd[] = {" 1.5",
                       "+2.25",
                       "\"3.5\"",
                       "4.5 ",
                       "inf",
                       "-inf",
                       "1e5",
                       "7.",
                       "-0.0",
                       "123456789012345678",
                       "0.000000000001234"};
  for (const char* o : odd) values.push_back(o);
  for (const auto& [type, crlf] : {std::pair{DataType::kFloat32, false},
                                   {DataType::kFloat64, false},
                                   {DataType::kFloat64, true}}) {
    std::string text = "x,y\n";
    for (const auto& v : values) text += v + "," + v + (crlf ? "\r\n" : "\n");
    text += "NA,\n";  // missing in both columns
    CsvOptions o;
    o.column_types = {{"x", type}, {"y", type}};
    const Table t = ParseCsv(text, o);
    ASSERT_EQ(t.num_rows(), static_cast<std::int64_t>(values.size() + 1));
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::string v = values[i];
      v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
      for (const char* col : {"x", "y"}) {
        const Column& c = t.column(col);
        ASSERT_FALSE(c.is_missing(static_cast<std::int64_t>(i))) << values[i];
        if (type == DataType::kFloat32) {
          ASSERT_EQ(c.f32()[i], std::strtof(v.c_str(), nullptr)) << values[i];
        } else {
          ASSERT_EQ(c.f64()[i], std::strtod(v.c_str(), nullptr)) << values[i];
        }
      }
    }
    EXPECT_TRUE(t.column("x").is_missing(static_cast<std::int64_t>(values.size())));
    EXPECT_TRUE(t.column("y").is_missing(static_cast<std::int64_t>(values.size())));
    EXPECT_EQ(t.column("x").missing_count(), 1);
  }
}

// Builds a CSV larger than several parse windows, with quoted fields containing newlines and
// delimiters at random places, and checks the dense and table readers against the generator.
std::string BigCsv(int rows, std::vector<std::array<double, 3>>* expected, bool quotes) {
  std::mt19937 rng(11);
  std::string s = "a,b,name,c\n";
  for (int i = 0; i < rows; ++i) {
    const double a = i, b = (rng() % 100000) / 100.0, c = -i * 0.5;
    expected->push_back({a, b, c});
    s += std::to_string(i) + ',';
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", b);
    s += buf;
    s += ',';
    if (quotes && i % 7 == 0) {
      s += "\"multi\nline, \"\"quoted\"\"\"";
    } else {
      s += 'n';
      s += std::to_string(i % 13);
    }
    std::snprintf(buf, sizeof(buf), ",%.1f\n", c);
    s += buf;
  }
  return s;
}

TEST(Csv, ManyWindowsWithQuotedNewlinesMatchTheGenerator) {
  for (const int threads : {1, 2, 4}) {
    SetNumThreads(threads);
    std::vector<std::array<double, 3>> expected;
    const std::string text = BigCsv(150000, &expected, true);
    ASSERT_GT(text.size(), 4u << 20);
    const Table t = ParseCsv(text);
    ASSERT_EQ(t.num_rows(), 150000);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(t.column("a").f64()[i], expected[i][0]);
      ASSERT_EQ(t.column("b").f64()[i], expected[i][1]);
      ASSERT_EQ(t.column("c").f64()[i], expected[i][2]);
      const std::string_view name = t.column("name").category(static_cast<std::int64_t>(i));
      ASSERT_EQ(name,
                i % 7 == 0 ? std::string("multi\nline, \"quoted\"") : fmt::format("n{}", i % 13));
    }
    DenseSpec spec;
    spec.exclude = {"name"};
    spec.label = "c";
    const DenseData d = ParseCsvDense(text, spec);
    ASSERT_EQ(d.rows(), 150000);
    ASSERT_EQ(d.cols(), 2);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(d.features(static_cast<std::int64_t>(i), 1), static_cast<float>(expected[i][1]));
      ASSERT_EQ(d.labels[i], static_cast<float>(expected[i][2]));
    }
  }
  SetNumThreads(0);
}

// The output is sized from the first window; later, shorter rows overflow it (windows then go
// through their own buffers and the output grows), and blank lines leave gaps that are closed.
TEST(Csv, DenseOutputGrowsAndCompacts) {
  for (const int threads : {1, 2, 3}) {
    SetNumThreads(threads);
    std::string text = "a,b\n";
    std::vector<float> expected;
    for (int i = 0; i < 40000; ++i) {
      text += fmt::format("{}.000000000000000000000000000000000000000000000000,{}\n", i, -i);
      if (i % 97 == 0) text += "\n\n";  // blank lines: fewer rows than newlines
      expected.push_back(static_cast<float>(i));
    }
    for (int i = 40000; i < 400000; ++i) {
      text += fmt::format("{},{}\n", i, -i);
      expected.push_back(static_cast<float>(i));
    }
    DenseSpec spec;
    spec.label = "b";
    CsvOptions o;
    o.row_ids = true;
    const DenseData d = ParseCsvDense(text, spec, o);
    ASSERT_EQ(d.rows(), 400000);
    ASSERT_EQ(d.labels.size(), 400000u);
    ASSERT_EQ(d.row_ids.size(), 400000u);
    for (std::int64_t i = 0; i < d.rows(); ++i) {
      ASSERT_EQ(d.features(i, 0), expected[static_cast<std::size_t>(i)]) << i;
      ASSERT_EQ(d.labels[static_cast<std::size_t>(i)], -expected[static_cast<std::size_t>(i)]);
      if (i > 0) {
        ASSERT_LT(d.row_ids[static_cast<std::size_t>(i) - 1],
                  d.row_ids[static_cast<std::size_t>(i)]);
      }
    }
  }
  SetNumThreads(0);
}

// The table reader's direct windows: sized from the first window, overflowed by later shorter
// rows (then copied, and the columns grow), with gaps from blank lines and skipped bad records
// closed, and each window's categories given the table's codes.
TEST(Csv, TableColumnsGrowAndCompact) {
  for (const int threads : {1, 2, 3}) {
    SetNumThreads(threads);
    std::string text = "a,b,s\n";
    std::vector<std::int64_t> kept;
    for (int i = 0; i < 40000; ++i) {
      text += fmt::format("{}.0000000000000000000000000000000000000000,{},c{}\n", i, -i, i % 5);
      if (i % 97 == 0) text += "\n\n";                // blank lines
      if (i % 89 == 0) text += "not,a,number,row\n";  // skipped
      kept.push_back(i);
    }
    for (int i = 40000; i < 400000; ++i) {
      text += fmt::format("{},{},c{}\n", i, -i, i % 5);
      kept.push_back(i);
    }
    CsvOptions o;
    o.on_error = OnError::kSkip;
    o.row_ids = true;
    o.column_types = {
        {"a", DataType::kFloat32}, {"b", DataType::kFloat64}, {"s", DataType::kCategorical}};
    const Table t = ParseCsv(text, o);
    ASSERT_EQ(t.num_rows(), static_cast<std::int64_t>(kept.size()));
    ASSERT_EQ(t.row_ids().size(), kept.size());
    for (std::size_t r = 0; r < kept.size(); ++r) {
      const auto i = kept[r];
      ASSERT_EQ(t.column("a").f32()[r], static_cast<float>(i)) << r;
      ASSERT_EQ(t.column("b").f64()[r], static_cast<double>(-i)) << r;
      ASSERT_EQ(t.column("s").category(static_cast<std::int64_t>(r)), fmt::format("c{}", i % 5));
      if (r > 0) {
        ASSERT_LT(t.row_ids()[r - 1], t.row_ids()[r]);
      }
    }
    EXPECT_EQ(t.column("a").missing_count(), 0);
  }
  SetNumThreads(0);
}

// A record longer than a parse window (1 MiB) grows the window, from memory and from files.
TEST(Csv, RecordsLongerThanAWindow) {
  const std::string big(3 << 20, 'x');
  const std::string text = "a,b\n1,\"" + big + "\"\n2,\"y\"\n3," + big.substr(0, 1500000) + "\n";
  TempDir dir;
  WriteFile(dir.File("long.csv"), text);
  for (const Table& t : {ParseCsv(text), ReadCsv(dir.File("long.csv"))}) {
    ASSERT_EQ(t.num_rows(), 3);
    EXPECT_EQ(t.column("b").category(0).size(), big.size());
    EXPECT_EQ(t.column("b").category(1), "y");
    EXPECT_EQ(t.column("b").category(2).size(), 1500000u);
    EXPECT_EQ(t.column("a").f64()[2], 3.0);
  }
}

TEST(Csv, FilesPlainGzipAndMapped) {
  TempDir dir;
  std::vector<std::array<double, 3>> expected;
  const std::string text = BigCsv(40000, &expected, true);
  WriteFile(dir.File("d.csv"), text);
  WriteFile(dir.File("d.csv.gz"), GzipString(text));
  CsvOptions mapped;
  mapped.memory_map = true;
  const Table a = ReadCsv(dir.File("d.csv"));
  const Table b = ReadCsv(dir.File("d.csv.gz"));
  const Table c = ReadCsv(dir.File("d.csv"), mapped);
  ASSERT_EQ(a.num_rows(), 40000);
  ASSERT_EQ(b.num_rows(), 40000);
  ASSERT_EQ(c.num_rows(), 40000);
  for (std::int64_t i = 0; i < a.num_rows(); i += 997) {
    EXPECT_EQ(a.column("b").f64()[i], b.column("b").f64()[i]);
    EXPECT_EQ(a.column("name").category(i), b.column("name").category(i));
    EXPECT_EQ(a.column("name").category(i), c.column("name").category(i));
  }
  EXPECT_EQ(InferCsvSchema(dir.File("d.csv.gz")), a.schema());
  DenseSpec spec;
  spec.features = {"c", "a"};
  const DenseData d = ReadCsvDense(dir.File("d.csv.gz"), spec);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(d.features(123, 1), 123.0f);
}

// The dense fast path and the table path agree on numeric data with every irregular shape.
TEST(Csv, DenseAndTablePathsAgree) {
  std::mt19937 rng(3);
  std::string text = "x,y,z\n";
  const char* shapes[] = {"%g", "%.6e", " %.3f ", "\"%g\"", "+%g", "%.9f"};
  for (int i = 0; i < 30000; ++i) {
    for (int j = 0; j < 3; ++j) {
      char buf[64];
      const double v = (static_cast<double>(rng()) / rng.max() - 0.5) * 1000;
      if (rng() % 50 == 0) {
        buf[0] = '\0';  // missing
      } else {
        // '+' only on positive values (column 1).
        const int shape = static_cast<int>(rng() % 6);
        std::snprintf(buf, sizeof(buf), shapes[shape == 4 && j != 1 ? 0 : shape],
                      std::fabs(v) * (j == 1 ? 1 : -1));
      }
      text += buf;
      text += j < 2 ? "," : (i % 3 == 0 ? "\r\n" : "\n");
    }
  }
  CsvOptions o;
  o.float_type = DataType::kFloat32;
  const Table t = ParseCsv(text, o);
  const DenseData d = ParseCsvDense(text, {}, o);
  ASSERT_EQ(t.num_rows(), d.rows());
  for (std::int64_t i = 0; i < d.rows(); ++i) {
    for (int j = 0; j < 3; ++j) {
      const float tv = t.column(j).f32()[static_cast<std::size_t>(i)];
      const float dv = d.features(i, j);
      ASSERT_TRUE((std::isnan(tv) && std::isnan(dv)) || tv == dv) << i << "," << j;
    }
  }
}

TEST(Csv, SklearnBundledFilesMatchNumpy) {
  if (testing::Python().empty()) GTEST_SKIP() << "python3 with numpy not available";
  struct Case {
    std::string file;
    int skip_lines;
    bool header;
    char delimiter;
  };
  const Case cases[] = {// The first line of these holds counts and class names, not column names.
                        {"iris.csv", 1, false, ','},
                        {"breast_cancer.csv", 1, false, ','},
                        {"wine_data.csv", 1, false, ','},
                        {"boston_house_prices.csv", 1, true, ','},
                        {"digits.csv.gz", 0, false, ','},
                        {"diabetes_data_raw.csv.gz", 0, false, ' '},
                        {"linnerud_exercise.csv", 0, true, ' '}};
  TempDir dir;
  for (const auto& c : cases) {
    const std::string path = testing::SklearnData(c.file);
    if (!std::filesystem::exists(path)) continue;
    CsvOptions o;
    o.skip_lines = c.skip_lines;
    o.header = c.header;
    o.delimiter = c.delimiter;
    const Table t = ReadCsv(path, o);
    const int skip = c.skip_lines + (c.header ? 1 : 0);
    const std::string out = testing::RunPython(
        dir,
        "import numpy as np\n"
        "a = np.loadtxt('" +
            path + "', delimiter=" + (c.delimiter == ' ' ? std::string("None") : "','") +
            ", skiprows=" + std::to_string(skip) +
            ", ndmin=2)\n"
            "print(a.shape[0], a.shape[1], repr(float(a.sum())), repr(float((a*a).sum())))\n");
    std::istringstream in(out);
    std::int64_t rows, cols;
    double sum, sq;
    in >> rows >> cols >> sum >> sq;
    ASSERT_EQ(t.num_rows(), rows) << c.file;
    ASSERT_EQ(t.num_columns(), cols) << c.file;
    double my_sum = 0, my_sq = 0;
    for (int j = 0; j < t.num_columns(); ++j) {
      ASSERT_EQ(t.column(j).type(), DataType::kFloat64) << c.file << " column " << j;
      for (const double v : t.column(j).f64()) {
        my_sum += v;
        my_sq += v * v;
      }
    }
    EXPECT_NEAR(my_sum, sum, 1e-9 * std::fabs(sum) + 1e-9) << c.file;
    EXPECT_NEAR(my_sq, sq, 1e-9 * std::fabs(sq) + 1e-9) << c.file;
  }
}

}  // namespace
}  // namespace escala::data
