#!/usr/bin/env python3
"""The ONNX benchmark's PyTorch side (bench/onnx/run.sh).

  torch_mlp.py export WORK        an MLP 64-256-256-1 (seeded) as WORK/mlp.onnx (opset 17, dynamic
                                  batch, metadata feature_names f0..f63) and WORK/mlp.pt
  torch_mlp.py score WORK X.npy OUT.npy
                                  PyTorch CPU eager batch scoring of X.npy: load, forward in
                                  65536-row batches under no_grad, save; prints seconds
"""
import sys
import time

import numpy as np
import onnx
import torch


def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 1)).eval()


def export(work):
    m = make()
    path = f"{work}/mlp.onnx"
    torch.onnx.export(m, torch.zeros(2, 64), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=17)
    model = onnx.load(path)
    onnx.helper.set_model_props(model, {"feature_names": ",".join(f"f{j}" for j in range(64))})
    onnx.save(model, path)
    torch.save(m.state_dict(), f"{work}/mlp.pt")


def score(work, x_path, out_path):
    start = time.perf_counter()
    m = make()
    m.load_state_dict(torch.load(f"{work}/mlp.pt"))
    x = torch.from_numpy(np.load(x_path))
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], 65536):
            out.append(m(x[i:i + 65536]))
    np.save(out_path, torch.cat(out).numpy())
    print(f"{time.perf_counter() - start:.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    else:
        score(*sys.argv[2:5])
