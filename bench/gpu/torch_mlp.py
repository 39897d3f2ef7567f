#!/usr/bin/env python3
"""W6 peer: the same MLP training in PyTorch on the same GPU (bench/gpu/run.sh runs both).

  torch_mlp.py --sizes 784,1024,1024,10 --batch 1024 --precision fp32|tf32

ReLU hidden layers, Adam lr 1e-3, softmax cross-entropy (or BCE with logits for one output),
data resident on the device and batches drawn from a fresh permutation each epoch, no host
synchronisation inside an epoch. Adam runs both ways PyTorch offers (foreach and fused) and the
faster is reported. Samples/s: median over epochs after the first. One line of key=value pairs.
"""
import argparse
import statistics
import time

import torch


def run(sizes, batch, precision, epochs, steps_per_epoch, fused):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    dev = torch.device("cuda")
    torch.manual_seed(1)
    d, k = sizes[0], sizes[-1]
    n = batch * steps_per_epoch
    x = torch.randn(n, d, device=dev)
    if k == 1:
        y = torch.randint(0, 2, (n, 1), device=dev).float()
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        y = torch.randint(0, k, (n,), device=dev)
        loss_fn = torch.nn.CrossEntropyLoss()
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused, foreach=None if fused else True)
    rates = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        total = torch.zeros((), device=dev)
        for j in range(steps_per_epoch):
            idx = perm[j * batch:(j + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        total.item()  # one synchronisation per epoch
        torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates[1:]) if len(rates) > 1 else rates[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="784,1024,1024,10")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=32)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    best = 0.0
    best_kind = ""
    for fused in (False, True):
        r = run(sizes, a.batch, a.precision, a.epochs, a.steps_per_epoch, fused)
        if r > best:
            best, best_kind = r, "fused" if fused else "foreach"
    print(f"torch model={a.sizes} batch={a.batch} precision={a.precision} samples_per_s={best:.0f} "
          f"adam={best_kind} version={torch.__version__} device=\"{torch.cuda.get_device_name()}\"")


if __name__ == "__main__":
    main()
