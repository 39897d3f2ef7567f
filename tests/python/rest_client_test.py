#!/usr/bin/env python3
"""An HTTP client the project did not write (Python's urllib and json) speaking the Open
Inference Protocol's REST API to `escala serve`.

Usage: rest_client_test.py PORT MODEL SCORES_CSV DATA_CSV
Calls every endpoint, JSON and binary tensor data, and checks the predictions against
`escala score`'s output for the same rows.
Exits 0 on success, 1 on a mismatch.
"""
import csv
import json
import math
import struct
import sys
import urllib.error
import urllib.request

port, model, scores_csv, data_csv = sys.argv[1:5]
base = f"http://127.0.0.1:{port}"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def call(path, body=None):
    """(status, parsed JSON body or None) of a GET, or of a POST when body is given."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return r.status, json.loads(text) if text and r.headers.get_content_type() == "application/json" else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


check(call("/v2/health/live")[0] == 200, "live")
check(call("/v2/health/ready")[0] == 200, "ready")
status, meta = call("/v2")
check(status == 200 and meta["name"] == "escala" and meta["version"], f"server metadata {meta}")
check(call(f"/v2/models/{model}/ready")[0] == 200, "model ready")
check(call("/v2/models/nope/ready")[0] == 404, "model ready (unknown)")
status, mm = call(f"/v2/models/{model}")
check(status == 200 and mm["name"] == model and mm["versions"] == ["1"], f"model metadata {mm}")
inputs = {t["name"]: t["datatype"] for t in mm["inputs"]}
check("probabilities" in [t["name"] for t in mm["outputs"]], f"outputs {mm['outputs']}")

rows = list(csv.DictReader(open(data_csv)))[:40]
scores = list(csv.DictReader(open(scores_csv)))[:40]


def value(v, dtype):
    if dtype == "BYTES":
        return "" if v in ("", "NA") else v
    return None if v in ("", "NA") else float(v)  # null: a missing value


def request(rows):
    return {"id": "py", "inputs": [
        {"name": name, "datatype": dtype, "shape": [len(rows), 1],
         "data": [[value(r[name], dtype)] for r in rows]}
        for name, dtype in inputs.items()]}


status, resp = call(f"/v2/models/{model}/infer", request(rows))
check(status == 200, f"infer: {status} {resp}")
if status == 200:
    check(resp["model_name"] == model and resp["id"] == "py", "infer identity")
    out = {o["name"]: o for o in resp["outputs"]}
    probs, (n, k) = out["probabilities"]["data"], out["probabilities"]["shape"]
    cols = [c for c in scores[0].keys() if c.startswith("p_")]
    check(len(cols) == k and n == len(rows), f"{n} x {k} vs {cols}")
    for i, s in enumerate(scores[:n]):
        for j, c in enumerate(cols):
            if abs(probs[i * k + j] - float(s[c])) > 1e-5:
                failures.append(f"row {i} {c}: served {probs[i * k + j]} vs scored {s[c]}")
    check(len(out["label"]["data"]) == n, "labels")

# Triton's binary tensor data extension: the same rows as bytes after the JSON, the outputs too.
def binary_request(rows):
    header = {"inputs": [], "parameters": {"binary_data_output": True}}
    blobs = []
    for name, dtype in inputs.items():
        values = [value(r[name], dtype) for r in rows]
        if dtype == "BYTES":
            blob = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        else:
            code = {"FP32": "f", "FP64": "d"}[dtype]
            blob = struct.pack(f"<{len(values)}{code}", *[math.nan if v is None else v for v in values])
        header["inputs"].append({"name": name, "datatype": dtype, "shape": [len(rows)],
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    text = json.dumps(header).encode()
    return text, b"".join(blobs)


text, blob = binary_request(rows)
req = urllib.request.Request(base + f"/v2/models/{model}/infer", data=text + blob, method="POST")
req.add_header("Inference-Header-Content-Length", str(len(text)))
with urllib.request.urlopen(req, timeout=10) as r:
    body, size = r.read(), int(r.headers["Inference-Header-Content-Length"])
head = json.loads(body[:size])
out = {o["name"]: o for o in head["outputs"]}
p = out["probabilities"]
n = p["parameters"]["binary_data_size"] // 4
offset = 0
for o in head["outputs"]:  # the outputs' bytes follow in output order
    if o["name"] == "probabilities":
        break
    offset += o["parameters"]["binary_data_size"]
binary_probs = struct.unpack(f"<{n}f", body[size + offset:size + offset + 4 * n])
if status == 200:
    check(all(abs(a - b) < 1e-6 for a, b in zip(binary_probs, probs)) and len(binary_probs) == len(probs),
          "binary probabilities differ from the JSON ones")

bad = {"inputs": [{"name": "nope", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
status, err = call(f"/v2/models/{model}/infer", bad)
check(status == 400 and "inputs[0] ('nope')" in err["error"], f"invalid request: {status} {err}")
status, err = call(f"/v2/models/{model}/infer", b"{oops")
check(status == 400 and "not valid JSON" in err["error"], f"not JSON: {status} {err}")
status, err = call("/v2/models/absent/infer", request(rows[:1]))
check(status == 404 and "absent" in err["error"], f"unknown model: {status} {err}")
status, index = call("/v2/repository/index", {})
check(status == 200 and index[0]["name"] == model, f"repository index {index}")
status, stats = call(f"/v2/models/{model}/stats")
check(status == 200 and stats["model_stats"][0]["inference_count"] >= len(rows), f"stats {stats}")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
