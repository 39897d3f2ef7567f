// EpochRecord <-> escala.train.v1.EpochRecord, shared by the bundle and the checkpoint writers.
// Private to src/io.
#ifndef ESCALA_SRC_IO_HISTORY_PROTO_H_
#define ESCALA_SRC_IO_HISTORY_PROTO_H_

#include <vector>

#include <google/protobuf/repeated_ptr_field.h>

#include "escala/io/history.h"
#include "escala/train/v1/checkpoint.pb.h"

namespace escala::io {

using HistoryProto = google::protobuf::RepeatedPtrField<escala::train::v1::EpochRecord>;

void HistoryToProto(const std::vector<EpochRecord>& history, HistoryProto* out);
std::vector<EpochRecord> HistoryFromProto(const HistoryProto& in);

}  // namespace escala::io

#endif  // ESCALA_SRC_IO_HISTORY_PROTO_H_
