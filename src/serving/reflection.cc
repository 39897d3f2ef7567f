#include "serving/reflection.h"

#include <cstdint>
#include <string_view>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

namespace escala::serving::internal {

namespace {

namespace pb = google::protobuf;
using pb::internal::WireFormatLite;

// Field numbers of the reflection messages (identical in grpc.reflection.v1 and v1alpha).
enum RequestField : int {
  kHost = 1,
  kFileByFilename = 3,
  kFileContainingSymbol = 4,
  kFileContainingExtension = 5,
  kAllExtensionNumbersOfType = 6,
  kListServices = 7,
};
enum ResponseField : int {
  kValidHost = 1,
  kOriginalRequest = 2,
  kFileDescriptorResponse = 4,
  kAllExtensionNumbersResponse = 5,
  kListServicesResponse = 6,
  kErrorResponse = 7,
};

void PutVarint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytes(std::string* out, int field, std::string_view v) {
  PutVarint(out, (static_cast<std::uint64_t>(field) << 3) | 2);
  PutVarint(out, v.size());
  out->append(v);
}

void PutInt(std::string* out, int field, std::int64_t v) {
  PutVarint(out, static_cast<std::uint64_t>(field) << 3);
  PutVarint(out, static_cast<std::uint64_t>(v));
}

struct Request {
  std::string host;
  int kind = 0;  // the RequestField of the oneof, 0 when none was set
  std::string arg;
  std::string extension_type;
  std::int32_t extension_number = 0;
};

bool ParseExtensionRequest(pb::io::CodedInputStream* in, Request* r) {
  std::uint32_t len = 0;
  if (!in->ReadVarint32(&len)) return false;
  const auto limit = in->PushLimit(static_cast<int>(len));
  while (const std::uint32_t tag = in->ReadTag()) {
    const auto field = static_cast<int>(tag >> 3);
    if (field == 1 && (tag & 7) == 2) {
      if (!WireFormatLite::ReadString(in, &r->extension_type)) return false;
    } else if (field == 2 && (tag & 7) == 0) {
      std::uint32_t v = 0;
      if (!in->ReadVarint32(&v)) return false;
      r->extension_number = static_cast<std::int32_t>(v);
    } else if (!WireFormatLite::SkipField(in, tag)) {
      return false;
    }
  }
  if (!in->ConsumedEntireMessage()) return false;
  in->PopLimit(limit);
  return true;
}

bool ParseRequest(const std::string& bytes, Request* r) {
  pb::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                              static_cast<int>(bytes.size()));
  while (const std::uint32_t tag = in.ReadTag()) {
    const auto field = static_cast<int>(tag >> 3);
    const bool delimited = (tag & 7) == 2;
    if (field == kHost && delimited) {
      if (!WireFormatLite::ReadString(&in, &r->host)) return false;
    } else if (delimited && (field == kFileByFilename || field == kFileContainingSymbol ||
                             field == kAllExtensionNumbersOfType || field == kListServices)) {
      if (!WireFormatLite::ReadString(&in, &r->arg)) return false;
      r->kind = field;
    } else if (field == kFileContainingExtension && delimited) {
      if (!ParseExtensionRequest(&in, r)) return false;
      r->kind = field;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

// The file and, first, every file it depends on that this stream has not sent yet.
void AddFile(const pb::FileDescriptor* f, std::vector<std::string>* sent, std::string* out,
             bool requested) {
  for (int i = 0; i < f->dependency_count(); ++i) AddFile(f->dependency(i), sent, out, false);
  bool already = false;
  for (const auto& s : *sent) already |= s == f->name();
  if (already && !requested) return;
  pb::FileDescriptorProto proto;
  f->CopyTo(&proto);
  PutBytes(out, 1, proto.SerializeAsString());
  if (!already) sent->push_back(f->name());
}

std::string ErrorBody(int code, std::string_view message) {
  std::string e;
  PutInt(&e, 1, code);
  PutBytes(&e, 2, message);
  return e;
}

class ReflectionReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit ReflectionReactor(const std::vector<std::string>* services) : services_(services) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side
      Finish(grpc::Status::OK);
      return;
    }
    std::vector<grpc::Slice> slices;
    if (!in_.Dump(&slices).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the reflection request"));
      return;
    }
    std::string request;
    for (const auto& s : slices) request.append(reinterpret_cast<const char*>(s.begin()), s.size());
    const std::string response = AnswerReflection(request, *services_, &sent_);
    grpc::Slice slice(response);
    out_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&out_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the reflection stream was closed"));
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override { delete this; }

 private:
  const std::vector<std::string>* services_;
  std::vector<std::string> sent_;
  grpc::ByteBuffer in_, out_;
};

class UnimplementedReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit UnimplementedReactor(const std::string& method) {
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + method));
  }
  void OnDone() override { delete this; }
};

class ReflectionService final : public grpc::CallbackGenericService {
 public:
  explicit ReflectionService(std::vector<std::string> services) : services_(std::move(services)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    const std::string& m = ctx->method();
    if (m == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" ||
        m == "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") {
      return new ReflectionReactor(&services_);
    }
    return new UnimplementedReactor(m);
  }

 private:
  std::vector<std::string> services_;
};

}  // namespace

std::string AnswerReflection(const std::string& bytes, const std::vector<std::string>& services,
                             std::vector<std::string>* sent) {
  Request r;
  std::string out;
  if (!ParseRequest(bytes, &r)) {
    PutBytes(&out, kErrorResponse,
             ErrorBody(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT),
                       "malformed ServerReflectionRequest"));
    return out;
  }
  PutBytes(&out, kValidHost, r.host);
  PutBytes(&out, kOriginalRequest, bytes);
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  auto not_found = [&](const std::string& what) {
    PutBytes(&out, kErrorResponse,
             ErrorBody(static_cast<int>(grpc::StatusCode::NOT_FOUND), what + " not found"));
    return out;
  };
  const pb::FileDescriptor* file = nullptr;
  switch (r.kind) {
    case kListServices: {
      std::string list;
      for (const auto& s : services) {
        std::string entry;
        PutBytes(&entry, 1, s);
        PutBytes(&list, 1, entry);
      }
      PutBytes(&out, kListServicesResponse, list);
      return out;
    }
    case kFileByFilename:
      file = pool->FindFileByName(r.arg);
      if (file == nullptr) return not_found("file '" + r.arg + "'");
      break;
    case kFileContainingSymbol:
      file = pool->FindFileContainingSymbol(r.arg);
      if (file == nullptr) return not_found("symbol '" + r.arg + "'");
      break;
    case kFileContainingExtension: {
      const pb::Descriptor* d = pool->FindMessageTypeByName(r.extension_type);
      const pb::FieldDescriptor* ext =
          d == nullptr ? nullptr : pool->FindExtensionByNumber(d, r.extension_number);
      if (ext == nullptr) {
        return not_found("extension " + std::to_string(r.extension_number) + " of '" +
                         r.extension_type + "'");
      }
      file = ext->file();
      break;
    }
    case kAllExtensionNumbersOfType: {
      const pb::Descriptor* d = pool->FindMessageTypeByName(r.arg);
      if (d == nullptr) return not_found("type '" + r.arg + "'");
      std::vector<const pb::FieldDescriptor*> exts;
      pool->FindAllExtensions(d, &exts);
      std::string numbers, body;
      for (const auto* e : exts) PutVarint(&numbers, static_cast<std::uint64_t>(e->number()));
      PutBytes(&body, 1, d->full_name());
      PutBytes(&body, 2, numbers);  // packed repeated int32
      PutBytes(&out, kAllExtensionNumbersResponse, body);
      return out;
    }
    default:
      PutBytes(&out, kErrorResponse,
               ErrorBody(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT),
                         "the ServerReflectionRequest names no request"));
      return out;
  }
  std::string files;
  AddFile(file, sent, &files, true);
  PutBytes(&out, kFileDescriptorResponse, files);
  return out;
}

std::unique_ptr<grpc::CallbackGenericService> MakeReflectionService(
    std::vector<std::string> services) {
  return std::make_unique<ReflectionService>(std::move(services));
}

}  // namespace escala::serving::internal
