#include "escala/data/idx.h"

#include <filesystem>
#include <zlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

std::string Idx(unsigned char type, std::vector<std::uint32_t> dims, const std::string& data) {
  std::string s = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (const auto d : dims) {
    s.push_back(static_cast<char>(d >> 24));
    s.push_back(static_cast<char>(d >> 16));
    s.push_back(static_cast<char>(d >> 8));
    s.push_back(static_cast<char>(d));
  }
  return s + data;
}

void WriteGz(const std::string& path, const std::string& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, data.data(), static_cast<unsigned>(data.size()));
  gzclose(f);
}

TEST(Idx, ReadsPlainAndGzippedArrays) {
  TempDir dir;
  const std::string bytes =
      Idx(0x08, {2, 2, 3}, std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\xff", 12));
  WriteFile(dir.File("a.idx"), bytes);
  WriteGz(dir.File("a.idx.gz"), bytes);
  for (const auto& name : {"a.idx", "a.idx.gz"}) {
    const IdxArray a = ReadIdx(dir.File(name));
    EXPECT_EQ(a.type, IdxType::kUint8);
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 2, 3}));
    const MatrixF m = a.ToMatrix(1.0f / 255);
    EXPECT_EQ(m.rows(), 2);
    EXPECT_EQ(m.cols(), 6);
    EXPECT_FLOAT_EQ(m(1, 5), 1.0f);
  }
  // Multi-byte elements are big-endian.
  const std::string ints = Idx(0x0C, {2}, std::string("\x00\x00\x01\x00\xff\xff\xff\xfe", 8));
  WriteFile(dir.File("i.idx"), ints);
  const IdxArray i = ReadIdx(dir.File("i.idx"));
  EXPECT_EQ(i.ToVector(), (std::vector<float>{256, -2}));
  const std::string floats = Idx(0x0D, {1}, std::string("\x3f\xc0\x00\x00", 4));
  WriteFile(dir.File("f.idx"), floats);
  EXPECT_EQ(ReadIdx(dir.File("f.idx")).value(0), 1.5);
}

std::string ErrorOf(const std::string& contents, bool gz = false) {
  TempDir dir;
  if (gz) {
    WriteGz(dir.File("bad.gz"), contents);
  } else {
    WriteFile(dir.File("bad.gz"), contents);
  }
  try {
    ReadIdx(dir.File("bad.gz"));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.message();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Found by fuzz_idx: a zero dimension passed a null pointer to memcpy (UBSan).
TEST(Idx, ZeroDimensionGivesAnEmptyArray) {
  TempDir dir;
  WriteFile(dir.File("e.idx"), Idx(0x0D, {0, 16512}, ""));
  const IdxArray a = ReadIdx(dir.File("e.idx"));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{0, 16512}));
  EXPECT_EQ(a.size(), 0);
  EXPECT_EQ(a.ToMatrix().rows(), 0);
}

TEST(Idx, MalformedFilesNameTheByteOffset) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("byte offset 0: empty file"));
  EXPECT_THAT(ErrorOf(std::string("\0\0", 2)), HasSubstr("byte offset 2: truncated IDX header"));
  EXPECT_THAT(ErrorOf(std::string("\x01\x00\x08\x01", 4)),
              HasSubstr("byte offset 0: not an IDX file"));
  EXPECT_THAT(ErrorOf(std::string("\0\0\x07\x01", 4)),
              HasSubstr("byte offset 2: unsupported IDX element type 0x07"));
  EXPECT_THAT(ErrorOf(Idx(0x08, {3, 4}, "").substr(0, 9)),
              HasSubstr("byte offset 9: truncated IDX header: 2 dimensions need 12 header bytes"));
  EXPECT_THAT(ErrorOf(Idx(0x08, {3, 4}, "abc")),
              HasSubstr("byte offset 15: truncated IDX data: shape needs 12 bytes"));
  EXPECT_THAT(ErrorOf(Idx(0x08, {3, 4}, "abc"), true), HasSubstr("(decompressed)"));
  EXPECT_THAT(ErrorOf(Idx(0x08, {1}, "ab")), HasSubstr("byte offset 9: 1 unexpected bytes"));
  // A gzip stream cut short.
  TempDir dir;
  WriteGz(dir.File("x.gz"), Idx(0x08, {1000}, std::string(1000, 'x')));
  std::string whole = testing::ReadFile(dir.File("x.gz"));
  EXPECT_THAT(ErrorOf(whole.substr(0, whole.size() - 10)), HasSubstr("truncated gzip data"));
}

TEST(Idx, FashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(dir + "t10k-labels-idx1-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  const IdxArray labels = ReadIdx(dir + "t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(labels.shape, (std::vector<std::int64_t>{10000}));
  std::vector<int> counts(10);
  for (const float v : labels.ToVector()) counts[static_cast<std::size_t>(v)]++;
  for (const int c : counts) EXPECT_EQ(c, 1000);  // the test set is balanced
  const IdxArray images = ReadIdx(dir + "t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(images.shape, (std::vector<std::int64_t>{10000, 28, 28}));
  const MatrixF x = images.ToMatrix(1.0f / 255);
  EXPECT_EQ(x.cols(), 784);
  float lo = 1, hi = 0;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    lo = std::min(lo, x.data()[i]);
    hi = std::max(hi, x.data()[i]);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  const IdxArray train = ReadIdx(dir + "train-labels-idx1-ubyte.gz");
  EXPECT_EQ(train.shape, (std::vector<std::int64_t>{60000}));
}

}  // namespace
}  // namespace escala::data
