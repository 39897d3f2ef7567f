// The hostile-input corpus (tests/data/hostile/): malformed files run through the commands that
// read them, and malformed Open Inference Protocol requests sent to a server, each refused with
// the error its manifest names (cases.tsv beside the inputs). A new class of defect gets a file
// and a line there, so that it stays fixed (docs/reliability.md).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "escala/serving/server.h"
#include "inference/open_inference.grpc.pb.h"
#include "test_util/bundles.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using namespace std::chrono_literals;
using testing::CliPath;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;

// The tab-separated lines of a manifest, without comments and blank lines.
std::vector<std::vector<std::string>> Manifest(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, '\t');) cols.push_back(col);
    EXPECT_EQ(cols.size(), 3u) << path << ": " << line;
    if (cols.size() == 3) rows.push_back(cols);
  }
  return rows;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

TEST(HostileInputs, EveryFileIsRefusedNamingWhereAndNothingIsWritten) {
  const std::string dir = SourcePath("tests/data/hostile/files");
  const auto cases = Manifest(dir + "/cases.tsv");
  ASSERT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    TempDir tmp;
    std::string args = Replace(c[1], "{}", dir + "/" + c[0]);
    args = Replace(args, "{penguins}", SourcePath("examples/data/penguins.csv"));
    args = Replace(args, "{bundle}", SourcePath("tests/data/bundles/v1_penguins_softmax.bundle"));
    args = Replace(args, "{out}", tmp.File("out"));
    std::string out;
    // A hang is a failure too: timeout(1) ends the command with status 124.
    const int rc = RunCommand("timeout 60 " + CliPath() + " " + args, &out);
    EXPECT_TRUE(rc == 1 || rc == 2) << c[0] << ": status " << rc << " for " << args << "\n" << out;
    EXPECT_NE(out.find("escala: error: "), std::string::npos) << c[0] << "\n" << out;
    EXPECT_NE(out.find(c[2]), std::string::npos) << c[0] << ": expected '" << c[2] << "' in\n"
                                                 << out;
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << c[0] << ": wrote its output";
  }
}

// Sends each request as it is, through the generated stub (escala's client checks requests
// before sending them).
TEST(HostileInputs, EveryRequestIsRefusedAndTheServerKeepsServing) {
  const std::string dir = SourcePath("tests/data/hostile/requests");
  serving::PredictionServer::Builder b;
  b.SetGrpcAddress("127.0.0.1:0").SetHttpAddress("").AddModel("m", testing::MixedSoftmaxBundle());
  auto server = b.Build();
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server->grpc_port()), grpc::InsecureChannelCredentials()));
  auto send = [&](const std::string& name, inference::ModelInferResponse* response) {
    std::ifstream in(dir + "/" + name + ".textproto");
    std::stringstream text;
    text << in.rdbuf();
    inference::ModelInferRequest request;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text.str(), &request)) << name;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub->ModelInfer(&ctx, request, response);
  };
  const auto cases = Manifest(dir + "/cases.tsv");
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    inference::ModelInferResponse response;
    const grpc::Status status = send(c[0], &response);
    EXPECT_EQ(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? "INVALID_ARGUMENT"
              : status.error_code() == grpc::StatusCode::NOT_FOUND      ? "NOT_FOUND"
                                                                        : "other",
              c[1])
        << c[0] << ": " << status.error_code() << " " << status.error_message();
    EXPECT_NE(status.error_message().find(c[2]), std::string::npos)
        << c[0] << ": expected '" << c[2] << "' in '" << status.error_message() << "'";
  }
  inference::ModelInferResponse response;
  const grpc::Status ok = send("valid", &response);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(response.outputs_size(), 3);
  server->Shutdown(1s);
}

}  // namespace
}  // namespace escala
