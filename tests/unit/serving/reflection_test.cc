// Server reflection: the answers decoded field by field against the reflection protocol's field
// numbers, and one stream through a running server as grpcurl would open it.
#include "serving/reflection.h"

#include <algorithm>
#include <map>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "escala/serving/server.h"
#include "test_util/bundles.h"

namespace escala::serving::internal {
namespace {

// A decoded message: length-delimited fields and varint fields by field number, in order.
struct Fields {
  std::multimap<int, std::string> bytes;
  std::multimap<int, std::uint64_t> ints;
  std::string One(int field) const {
    const auto it = bytes.find(field);
    return it == bytes.end() ? std::string() : it->second;
  }
};

Fields Decode(const std::string& s) {
  Fields f;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(s.data()),
                                            static_cast<int>(s.size()));
  while (const std::uint32_t tag = in.ReadTag()) {
    const auto field = static_cast<int>(tag >> 3);
    if ((tag & 7) == 0) {
      std::uint64_t v = 0;
      EXPECT_TRUE(in.ReadVarint64(&v));
      f.ints.emplace(field, v);
    } else if ((tag & 7) == 2) {
      std::uint32_t len = 0;
      std::string b;
      EXPECT_TRUE(in.ReadVarint32(&len) && in.ReadString(&b, static_cast<int>(len)));
      f.bytes.emplace(field, b);
    } else {
      ADD_FAILURE() << "unexpected wire type " << (tag & 7);
      return f;
    }
  }
  return f;
}

// A request with one string field (values shorter than 128 bytes).
std::string Request(int field, const std::string& value) {
  std::string r;
  r.push_back(static_cast<char>(field << 3 | 2));
  r.push_back(static_cast<char>(value.size()));
  return r + value;
}

const std::vector<std::string> kServices = {"inference.GRPCInferenceService",
                                            "grpc.health.v1.Health"};

TEST(Reflection, ListsServices) {
  std::vector<std::string> sent;
  const std::string req = Request(7, "*");
  const auto resp = Decode(AnswerReflection(req, kServices, &sent));
  EXPECT_EQ(resp.One(2), req);  // original_request
  const auto list = Decode(resp.One(6));
  std::vector<std::string> names;
  for (const auto& [field, entry] : list.bytes) names.push_back(Decode(entry).One(1));
  EXPECT_EQ(names, kServices);
}

TEST(Reflection, FileContainingSymbolSendsEachFileOnce) {
  std::vector<std::string> sent;
  const auto resp =
      Decode(AnswerReflection(Request(4, "inference.GRPCInferenceService"), kServices, &sent));
  const auto files = Decode(resp.One(4));
  ASSERT_EQ(files.bytes.count(1), 1u);
  google::protobuf::FileDescriptorProto fd;
  ASSERT_TRUE(fd.ParseFromString(files.bytes.find(1)->second));
  EXPECT_EQ(fd.package(), "inference");
  ASSERT_GE(fd.service_size(), 1);
  EXPECT_EQ(fd.service(0).name(), "GRPCInferenceService");
  // By file name, on the same stream: the requested file is sent again, nothing else.
  const auto again = Decode(AnswerReflection(Request(3, fd.name()), kServices, &sent));
  EXPECT_EQ(Decode(again.One(4)).bytes.count(1), 1u);
  // A file with dependencies sends them first.
  std::vector<std::string> fresh;
  const auto with_deps = Decode(
      AnswerReflection(Request(4, "google.protobuf.FileDescriptorProto"), kServices, &fresh));
  EXPECT_GE(Decode(with_deps.One(4)).bytes.count(1), 1u);
}

TEST(Reflection, UnknownNamesAndMalformedRequestsAreErrors) {
  std::vector<std::string> sent;
  const auto missing = Decode(AnswerReflection(Request(4, "no.Such"), kServices, &sent));
  const auto err = Decode(missing.One(7));
  EXPECT_EQ(err.ints.find(1)->second, 5u);  // NOT_FOUND
  EXPECT_NE(err.One(2).find("no.Such"), std::string::npos);
  const auto bad = Decode(AnswerReflection(std::string("\x22\x7f", 2), kServices, &sent));
  EXPECT_EQ(Decode(bad.One(7)).ints.find(1)->second, 3u);  // INVALID_ARGUMENT
  const auto empty = Decode(AnswerReflection("", kServices, &sent));
  EXPECT_EQ(Decode(empty.One(7)).ints.find(1)->second, 3u);
}

TEST(Reflection, AStreamThroughTheServer) {
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("")
                    .AddModel("m", testing::NumericLogisticBundle(4))
                    .Build();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int want) {
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(static_cast<std::intptr_t>(want)));
    EXPECT_TRUE(ok);
  };
  call->StartCall(reinterpret_cast<void*>(1));
  step(1);
  const std::string req = Request(7, "");
  grpc::Slice slice(req);
  grpc::ByteBuffer out(&slice, 1), in;
  call->Write(out, reinterpret_cast<void*>(2));
  step(2);
  call->Read(&in, reinterpret_cast<void*>(3));
  step(3);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  const auto list = Decode(Decode(bytes).One(6));
  std::vector<std::string> names;
  for (const auto& [field, entry] : list.bytes) names.push_back(Decode(entry).One(1));
  EXPECT_NE(std::find(names.begin(), names.end(), "inference.GRPCInferenceService"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->Shutdown(std::chrono::milliseconds(100));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace escala::serving::internal
