// The parts of frames that need no gRPC: payload copies and reductions over split, possibly
// misaligned payload memory.
#include <cstring>

#include <fmt/format.h>

#include "distributed/transport.h"

namespace escala::distributed::internal {

std::string_view OpKindName(OpKind op) {
  switch (op) {
    case OpKind::kNone:
      return "none";
    case OpKind::kAllReduce:
      return "allreduce";
    case OpKind::kBroadcast:
      return "broadcast";
    case OpKind::kAllGather:
      return "allgather";
    case OpKind::kAllGatherV:
      return "allgatherv";
    case OpKind::kBarrier:
      return "barrier";
  }
  return "unknown";
}

Status RelayedFailure(const FailureOrigin& origin) {
  const ErrorCode code = origin.code == ErrorCode::kInvalidArgument ? ErrorCode::kInvalidArgument
                                                                    : ErrorCode::kAborted;
  if (origin.rank < 0) return Status(code, origin.message);
  return Status(code, fmt::format("rank {} failed: {}", origin.rank, origin.message));
}

namespace {

// Loads through memcpy: the payload of a received frame starts wherever the frame header ended,
// so it is not aligned for T. Compilers turn these into unaligned vector loads.
template <typename T>
void ReduceTyped(T* __restrict acc, const std::byte* __restrict in, std::size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, in + i * sizeof(T), sizeof(T));
        acc[i] += v;
      }
      break;
    case ReduceOp::kMax:
      for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, in + i * sizeof(T), sizeof(T));
        acc[i] = acc[i] < v ? v : acc[i];
      }
      break;
    case ReduceOp::kMin:
      for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, in + i * sizeof(T), sizeof(T));
        acc[i] = v < acc[i] ? v : acc[i];
      }
      break;
  }
}

}  // namespace

void ReduceUnaligned(void* acc, const std::byte* in, std::size_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kFloat32:
      ReduceTyped(static_cast<float*>(acc), in, count, op);
      return;
    case DType::kFloat64:
      ReduceTyped(static_cast<double*>(acc), in, count, op);
      return;
    case DType::kInt64:
      ReduceTyped(static_cast<std::int64_t*>(acc), in, count, op);
      return;
    case DType::kInt32:
      ReduceTyped(static_cast<std::int32_t*>(acc), in, count, op);
      return;
    case DType::kUInt8:
      ReduceTyped(static_cast<std::uint8_t*>(acc), in, count, op);
      return;
  }
}

InFrame InFrame::View(FrameMeta meta, std::vector<std::span<const std::byte>> spans) {
  InFrame f;
  f.meta = std::move(meta);
  for (const auto& s : spans) f.payload_size_ += s.size();
  f.spans_ = std::move(spans);
  return f;
}

void InFrame::CopyTo(void* dst) const {
  auto* out = static_cast<std::byte*>(dst);
  for (const auto& s : spans_) {
    if (s.empty()) continue;
    std::memcpy(out, s.data(), s.size());
    out += s.size();
  }
}

void InFrame::ReduceInto(void* acc, DType dtype, ReduceOp op) const {
  const std::size_t esize = DTypeSize(dtype);
  auto* out = static_cast<std::byte*>(acc);
  // An element may straddle two spans: gather its bytes here.
  std::byte carry[16];
  std::size_t carry_n = 0;
  for (const auto& s : spans_) {
    const std::byte* p = s.data();
    std::size_t n = s.size();
    if (carry_n > 0) {
      const std::size_t take = std::min(esize - carry_n, n);
      std::memcpy(carry + carry_n, p, take);
      carry_n += take;
      p += take;
      n -= take;
      if (carry_n < esize) continue;
      ReduceUnaligned(out, carry, 1, dtype, op);
      out += esize;
      carry_n = 0;
    }
    const std::size_t whole = n / esize;
    if (whole > 0) {
      ReduceUnaligned(out, p, whole, dtype, op);
      out += whole * esize;
      p += whole * esize;
      n -= whole * esize;
    }
    if (n > 0) {
      std::memcpy(carry, p, n);
      carry_n = n;
    }
  }
  ESCALA_ASSERT(carry_n == 0);
}

}  // namespace escala::distributed::internal
