#include "escala/data/npy.h"

#include <cstring>
#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// A hand-made NPY file: magic, version, header length, dict padded with spaces, data.
std::string Npy(int major, const std::string& dict, const std::string& data) {
  std::string h = "\x93NUMPY";
  h.push_back(static_cast<char>(major));
  h.push_back('\0');
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string body = dict;
  while ((prefix + body.size() + 1) % 64 != 0) body.push_back(' ');
  body.push_back('\n');
  const auto len = static_cast<std::uint32_t>(body.size());
  h.append(reinterpret_cast<const char*>(&len), major == 1 ? 2 : 4);
  return h + body + data;
}

template <typename T>
std::string Bytes(std::initializer_list<T> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(T));
}

TEST(Npy, RoundTripsEveryType) {
  TempDir dir;
  MatrixF f(3, 2);
  for (int i = 0; i < 6; ++i) f.data()[i] = static_cast<float>(i) - 2.5f;
  WriteNpy(dir.File("f.npy"), f.view());
  const MatrixF back = ReadNpyMatrix(dir.File("f.npy"));
  ASSERT_EQ(back.rows(), 3);
  ASSERT_EQ(back.cols(), 2);
  EXPECT_EQ(std::memcmp(back.data(), f.data(), f.bytes()), 0);
  // The data starts at a multiple of 64 bytes.
  EXPECT_EQ((std::filesystem::file_size(dir.File("f.npy")) - 24) % 64, 0u);

  Matrix<double> d(2, 2);
  d(0, 0) = 1e300;
  d(1, 1) = -0.1;
  WriteNpy(dir.File("d.npy"), MatrixView<const double>(d.view()));
  const NpyArray ad = ReadNpy(dir.File("d.npy"));
  EXPECT_EQ(ad.dtype, DataType::kFloat64);
  EXPECT_EQ(ad.as<double>()[0], 1e300);
  EXPECT_EQ(ad.as<double>()[3], -0.1);

  const std::vector<std::int64_t> ints = {1, -2, std::numeric_limits<std::int64_t>::max()};
  WriteNpy(dir.File("i.npy"), std::span<const std::int64_t>(ints));
  const NpyArray ai = ReadNpy(dir.File("i.npy"));
  EXPECT_EQ(ai.dtype, DataType::kInt64);
  EXPECT_EQ(ai.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(ai.as<std::int64_t>()[2], ints[2]);
  const std::vector<float> as_float = ReadNpyVector(dir.File("i.npy"));
  EXPECT_EQ(as_float[1], -2.0f);
}

TEST(Npy, ReadsVersion2HeadersAndOddSpacing) {
  TempDir dir;
  WriteFile(dir.File("v2.npy"), Npy(2, "{'descr':'<f8','fortran_order':False,'shape':(2,)}",
                                    Bytes<double>({1.5, 2.5})));
  const NpyArray a = ReadNpy(dir.File("v2.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(a.as<double>()[1], 2.5);
  WriteFile(dir.File("v1.npy"), Npy(1,
                                    "{ \"shape\" : ( 1 , 2 , ) , 'fortran_order': False, "
                                    "'descr': '<f4' }",
                                    Bytes<float>({3, 4})));
  const MatrixF m = ReadNpyMatrix(dir.File("v1.npy"));
  EXPECT_EQ(m(0, 1), 4.0f);
}

std::string ErrorOf(const std::string& contents) {
  TempDir dir;
  WriteFile(dir.File("bad.npy"), contents);
  try {
    ReadNpy(dir.File("bad.npy"));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.message();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Npy, MalformedFilesNameTheByteOffset) {
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string data = Bytes<float>({1, 2});
  EXPECT_THAT(ErrorOf(""), HasSubstr("byte offset 0: truncated NPY header: the file has 0 bytes"));
  EXPECT_THAT(ErrorOf("\x93NUM"), HasSubstr("byte offset 4: truncated NPY header"));
  EXPECT_THAT(ErrorOf("PK\x03\x04xxxxxxxxxx"), HasSubstr("byte offset 0: not an NPY file"));
  EXPECT_THAT(ErrorOf(Npy(1, good_dict, data).substr(0, 40)),
              HasSubstr("truncated NPY header: it declares 118 bytes"));
  EXPECT_THAT(ErrorOf(Npy(1, good_dict, data).substr(0, 130)),
              HasSubstr("truncated: the header promises 8 bytes of data from byte offset 128"));
  EXPECT_THAT(ErrorOf(Npy(1, good_dict, data + "xx")), HasSubstr("2 unexpected bytes"));
  EXPECT_THAT(ErrorOf(Npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", data)),
              HasSubstr("byte offset 20: unsupported dtype '<i2'"));
  EXPECT_THAT(ErrorOf(Npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data)),
              HasSubstr("big-endian dtype '>f4' is not supported"));
  EXPECT_THAT(ErrorOf(Npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data)),
              HasSubstr("Fortran-ordered arrays are not supported"));
  EXPECT_THAT(ErrorOf(Npy(1, "{'descr': '<f4', 'shape': (2,), }", data)),
              HasSubstr("lacks one of"));
  EXPECT_THAT(ErrorOf(Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }", data)),
              HasSubstr("expected a dimension"));
  EXPECT_THAT(ErrorOf(Npy(7, good_dict, data)), HasSubstr("unsupported NPY format version 7"));
}

TEST(NpyWriter, StreamsRowsAndPublishesOnlyOnClose) {
  TempDir dir;
  const std::string path = dir.File("s.npy");
  {
    NpyWriter w(path, 3);
    MatrixF block(2, 3, 1.0f);
    w.Append(block.view());
    EXPECT_FALSE(std::filesystem::exists(path));
  }  // abandoned: nothing appears, no temporary file left behind
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  NpyWriter w(path, 3);
  for (int i = 0; i < 5; ++i) {
    MatrixF block(i, 3, static_cast<float>(i));
    w.Append(block.view());
  }
  w.Close();
  const MatrixF m = ReadNpyMatrix(path);
  EXPECT_EQ(m.rows(), 10);
  EXPECT_EQ(m(9, 2), 4.0f);
  NpyWriter labels(dir.File("l.npy"), 0, DataType::kFloat64);
  const std::vector<float> v = {1, 2, 3};
  labels.Append(std::span<const float>(v));
  labels.Close();
  const NpyArray a = ReadNpy(dir.File("l.npy"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(a.as<double>()[2], 3.0);
  NpyWriter wrong(dir.File("w.npy"), 2);
  MatrixF three(1, 3);
  EXPECT_THROW(wrong.Append(three.view()), Error);
}

// numpy reads what we write and we read what numpy writes.
TEST(Npy, InteroperatesWithNumpy) {
  if (testing::Python().empty()) GTEST_SKIP() << "python3 with numpy not available";
  TempDir dir;
  MatrixF f(4, 3);
  for (int i = 0; i < 12; ++i) f.data()[i] = static_cast<float>(i) / 3.0f;
  WriteNpy(dir.File("ours.npy"), f.view());
  const std::string out =
      testing::RunPython(dir,
                         "import numpy as np\n"
                         "a = np.load('" +
                             dir.File("ours.npy") +
                             "')\n"
                             "print(a.dtype, a.shape, repr(float(a[3, 2])))\n"
                             "np.save('" +
                             dir.File("f8.npy") +
                             "', np.arange(6, dtype=np.float64).reshape(2, 3))\n"
                             "np.save('" +
                             dir.File("i8.npy") +
                             "', np.array([5, -7], dtype=np.int64))\n"
                             "np.save('" +
                             dir.File("f4.npy") + "', np.linspace(0, 1, 5, dtype=np.float32))\n");
  EXPECT_THAT(out, HasSubstr("float32 (4, 3)"));
  EXPECT_THAT(out, HasSubstr(std::to_string(static_cast<double>(f(3, 2))).substr(0, 6)));
  const MatrixF f8 = ReadNpyMatrix(dir.File("f8.npy"));
  EXPECT_EQ(f8(1, 2), 5.0f);
  EXPECT_EQ(ReadNpy(dir.File("i8.npy")).as<std::int64_t>()[1], -7);
  EXPECT_EQ(ReadNpyVector(dir.File("f4.npy"))[4], 1.0f);
}

}  // namespace
}  // namespace escala::data
