#!/usr/bin/env python3
"""An Open Inference Protocol client the project did not write (Python grpcio, stubs generated
by protoc's Python plugin from proto/inference/open_inference.proto) against `escala serve`.

Usage: grpc_client_test.py STUBS_DIR PORT MODEL SCORES_CSV DATA_CSV
Calls every RPC and checks the predictions against `escala score`'s output for the same rows.
Exits 0 on success, 1 on a mismatch, 77 when grpcio is not installed.
"""
import csv
import struct
import sys

try:
    import grpc
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

stubs, port, model, scores_csv, data_csv = sys.argv[1:6]
sys.path.insert(0, stubs)
from inference import open_inference_pb2 as pb  # noqa: E402
from inference import open_inference_pb2_grpc as pbg  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

channel = grpc.insecure_channel(f"127.0.0.1:{port}")
stub = pbg.GRPCInferenceServiceStub(channel)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


check(stub.ServerLive(pb.ServerLiveRequest()).live, "ServerLive")
check(stub.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady")
meta = stub.ServerMetadata(pb.ServerMetadataRequest())
check(meta.name == "escala" and meta.version, f"ServerMetadata {meta}")
check(stub.ModelReady(pb.ModelReadyRequest(name=model)).ready, "ModelReady")
check(not stub.ModelReady(pb.ModelReadyRequest(name="nope")).ready, "ModelReady(unknown)")
mm = stub.ModelMetadata(pb.ModelMetadataRequest(name=model))
inputs = {t.name: t.datatype for t in mm.inputs}
outputs = [t.name for t in mm.outputs]
check("probabilities" in outputs and "label" in outputs, f"ModelMetadata outputs {outputs}")
health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
check(health.status == health_pb2.HealthCheckResponse.SERVING, f"Health {health.status}")

rows = list(csv.DictReader(open(data_csv)))[:40]
scores = list(csv.DictReader(open(scores_csv)))[:40]


def request(rows, raw=True):
    req = pb.ModelInferRequest(model_name=model, id="py")
    raws = []
    for name, dtype in inputs.items():
        t = req.inputs.add(name=name, datatype=dtype, shape=[len(rows)])
        values = [r[name] for r in rows]
        if dtype == "BYTES":
            data = [v.encode() if v not in ("", "NA") else b"" for v in values]
            if raw:
                raws.append(b"".join(struct.pack("<I", len(d)) + d for d in data))
            else:
                t.contents.bytes_contents.extend(data)
        else:
            nums = [float(v) if v not in ("", "NA") else float("nan") for v in values]
            if dtype == "FP64":
                if raw:
                    raws.append(struct.pack(f"<{len(nums)}d", *nums))
                else:
                    t.contents.fp64_contents.extend(nums)
            else:
                if raw:
                    raws.append(struct.pack(f"<{len(nums)}f", *nums))
                else:
                    t.contents.fp32_contents.extend(nums)
    if raw:
        req.raw_input_contents.extend(raws)
    return req


def probabilities(resp):
    for i, o in enumerate(resp.outputs):
        if o.name == "probabilities":
            n = o.shape[0] * o.shape[1]
            return struct.unpack(f"<{n}f", resp.raw_output_contents[i]), o.shape[1]
    raise KeyError("probabilities")


def compare(resp, what):
    probs, k = probabilities(resp)
    cols = [c for c in scores[0].keys() if c.startswith("p_")]
    check(len(cols) == k, f"{what}: {k} classes vs {cols}")
    for i, s in enumerate(scores[: len(probs) // k]):
        for j, c in enumerate(cols):
            if abs(probs[i * k + j] - float(s[c])) > 1e-5:
                failures.append(f"{what}: row {i} {c}: served {probs[i * k + j]} vs scored {s[c]}")
                return


resp = stub.ModelInfer(request(rows, raw=True))
check(resp.model_name == model and resp.id == "py", "ModelInfer identity")
compare(resp, "ModelInfer(raw)")
compare(stub.ModelInfer(request(rows, raw=False)), "ModelInfer(typed)")
streamed = list(stub.ModelStreamInfer(iter([request(rows[:10]), request(rows[10:20])])))
check(len(streamed) == 2 and not streamed[0].error_message, f"ModelStreamInfer {streamed}")
bad = pb.ModelInferRequest(model_name=model)
bad.inputs.add(name="nope", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
streamed = list(stub.ModelStreamInfer(iter([bad])))
check(len(streamed) == 1 and "nope" in streamed[0].error_message, "ModelStreamInfer error")
try:
    stub.ModelInfer(bad)
    failures.append("invalid request accepted")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"invalid request code {e.code()}")
try:
    stub.ModelInfer(pb.ModelInferRequest(model_name="absent"))
    failures.append("unknown model accepted")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.NOT_FOUND, f"unknown model code {e.code()}")

stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name=model))
check(stats.model_stats and stats.model_stats[0].inference_count >= 80, f"ModelStatistics {stats}")
index = stub.RepositoryIndex(pb.RepositoryIndexRequest())
check(any(m.name == model and m.state == "READY" for m in index.models), f"RepositoryIndex {index}")
stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=model))
check(not stub.ModelReady(pb.ModelReadyRequest(name=model)).ready, "unloaded model still ready")
stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=model))
check(stub.ModelReady(pb.ModelReadyRequest(name=model)).ready, "reloaded model not ready")
compare(stub.ModelInfer(request(rows)), "ModelInfer after reload")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("python grpcio client: every RPC answered as expected")
