#!/usr/bin/env python3
"""The "serve scikit-learn from Python" baseline: a grpcio server implementing the Open Inference
Protocol's ModelInfer around a fitted scikit-learn LogisticRegression.

Usage: sklearn_server.py STUBS_DIR MODEL_PICKLE PORT THREADS
"""
import pickle
import signal
import sys
from concurrent import futures

import grpc
import numpy as np

stubs, model_path, port, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, stubs)
from inference import open_inference_pb2 as pb  # noqa: E402
from inference import open_inference_pb2_grpc as pbg  # noqa: E402

model = pickle.load(open(model_path, "rb"))


class Service(pbg.GRPCInferenceServiceServicer):
    def ModelInfer(self, request, context):
        shape = list(request.inputs[0].shape)
        x = np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(shape)
        p = model.predict_proba(x).astype("<f4")
        resp = pb.ModelInferResponse(model_name=request.model_name, model_version="1")
        resp.outputs.add(name="probabilities", datatype="FP32", shape=list(p.shape))
        resp.raw_output_contents.append(p.tobytes())
        return resp


server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads),
                     options=[("grpc.max_receive_message_length", 256 << 20)])
pbg.add_GRPCInferenceServiceServicer_to_server(Service(), server)
bound = server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
print(f"port {bound}", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
server.stop(grace=1)
