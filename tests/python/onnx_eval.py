#!/usr/bin/env python3
"""Test-only checker of escala's ONNX export (escala export, docs/serving.md).

    onnx_eval.py MODEL.onnx DATA.csv SCORES.csv

Checks MODEL.onnx with onnx.checker.check_model(full_check=True), evaluates it on the rows of
DATA.csv with a small numpy evaluator of exactly the operators escala emits (float32
throughout), and compares the outputs with SCORES.csv, what `escala score` wrote for the same
rows: probabilities / prediction within 1e-5 (absolute for probabilities, relative for
regression), and the labels.

Exit 0 when everything matches, 77 when onnx or numpy is not installed (the caller skips), 1
otherwise. There is no ONNX runtime on the test machines (onnx 1.12 has no reference
evaluator), hence this evaluator; it is not a runtime, only a reference for these graphs.
"""
import csv
import math
import sys

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:  # pragma: no cover
    print(f"skip: {e}")
    sys.exit(77)

NA = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"}
F32 = np.float32


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def label_encoder(x, a):
    if "keys_strings" in a:
        keys = [s(k) for k in a["keys_strings"]]
    else:
        keys = list(a["keys_int64s"])
    if "values_strings" in a:
        vals, default, dtype = [s(v) for v in a["values_strings"]], s(a.get("default_string", b"_Unused")), object
    elif "values_int64s" in a:
        vals, default, dtype = list(a["values_int64s"]), a.get("default_int64", -1), np.int64
    else:
        vals, default, dtype = list(a["values_floats"]), a.get("default_float", -0.0), F32
    table = dict(zip(keys, vals))
    flat = [table.get(s(v) if dtype is not None else v, default) for v in x.ravel().tolist()]
    return np.array(flat, dtype=dtype).reshape(x.shape)


def tree_ensemble(x, a):
    n_targets = a["n_targets"]
    nodes = {}
    for i, (t, nid) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"])):
        nodes[(t, nid)] = i
    leaves = {}
    for t, nid, tid, w in zip(a["target_treeids"], a["target_nodeids"], a["target_ids"],
                              a["target_weights"]):
        leaves.setdefault((t, nid), []).append((tid, w))
    modes = [s(m) for m in a["nodes_modes"]]
    roots = sorted({t for t in a["nodes_treeids"]})
    out = np.zeros((x.shape[0], n_targets), dtype=np.float64)
    for r in range(x.shape[0]):
        for t in roots:
            i = nodes[(t, 0)]
            while modes[i] != "LEAF":
                v = x[r, a["nodes_featureids"][i]]
                thr = a["nodes_values"][i]
                if math.isnan(v):
                    go = a["nodes_missing_value_tracks_true"][i] == 1
                elif modes[i] == "BRANCH_LT":
                    go = v < F32(thr)
                elif modes[i] == "BRANCH_EQ":
                    go = v == F32(thr)
                else:
                    raise ValueError(f"tree mode {modes[i]} not handled")
                nid = a["nodes_truenodeids"][i] if go else a["nodes_falsenodeids"][i]
                i = nodes[(t, nid)]
            for tid, w in leaves.get((t, a["nodes_nodeids"][i]), []):
                out[r, tid] += F32(w)
    out += np.array(a.get("base_values", [0.0] * n_targets), dtype=np.float64)
    return out.astype(F32)


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(F32)


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(F32)


def run_node(node, ins):
    a = attrs(node)
    op = node.op_type
    x = ins[0] if ins else None
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power, "Less": np.less, "Greater": np.greater, "Equal": np.equal,
              "Min": np.minimum, "Max": np.maximum}
    unary = {"Log": np.log, "Exp": np.exp, "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative,
             "Floor": np.floor, "Tanh": np.tanh, "IsNaN": np.isnan, "Identity": lambda v: v,
             "Relu": lambda v: np.maximum(v, F32(0)), "Erf": erf,
             "Sigmoid": lambda v: (1 / (1 + np.exp(-v.astype(np.float64)))).astype(F32)}
    if op in binary:
        return binary[op](x, ins[1])
    if op in unary:
        return unary[op](x)
    if op == "Where":
        return np.where(x, ins[1], ins[2])
    if op == "Cast":
        assert a["to"] == onnx.TensorProto.FLOAT
        return x.astype(F32)
    if op == "Clip":
        return np.minimum(np.maximum(x, ins[1]), ins[2])
    if op == "Gather":
        return np.take(x, ins[1], axis=a.get("axis", 0))
    if op == "Concat":
        return np.concatenate(ins, axis=a["axis"])
    if op == "ReduceSum":
        return x.sum(axis=tuple(ins[1].tolist()), keepdims=bool(a.get("keepdims", 1))).astype(x.dtype)
    if op == "Gemm":
        return (x.astype(np.float64) @ ins[1] + ins[2]).astype(F32)
    if op == "Softmax":
        return softmax(x, a.get("axis", -1))
    if op == "ArgMax":
        r = np.argmax(x, axis=a.get("axis", 0))
        return np.expand_dims(r, a.get("axis", 0)) if a.get("keepdims", 1) else r
    if op == "Squeeze":
        return np.squeeze(x, axis=tuple(ins[1].tolist()))
    if op == "LabelEncoder":
        return label_encoder(x, a)
    if op == "TreeEnsembleRegressor":
        return tree_ensemble(x, a)
    raise ValueError(f"operator {op} is not in the test evaluator")


def evaluate(model, feeds):
    env = dict(feeds)
    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)
    with np.errstate(all="ignore"):
        for node in model.graph.node:
            ins = [env[i] for i in node.input]
            out = run_node(node, ins)
            if isinstance(out, np.ndarray) and out.dtype == np.float64:
                out = out.astype(F32)
            env[node.output[0]] = out
    return {o.name: env[o.name] for o in model.graph.output}


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def feeds_of(model, header, rows):
    feeds = {}
    for inp in model.graph.input:
        col = header.index(inp.name)
        vals = [r[col] for r in rows]
        if inp.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            feeds[inp.name] = np.array(["" if v in NA else v for v in vals], dtype=object).reshape(-1, 1)
        else:
            feeds[inp.name] = np.array([math.nan if v in NA else float(v) for v in vals],
                                       dtype=F32).reshape(-1, 1)
    return feeds


def compare(outputs, header, rows):
    numeric = [i for i, h in enumerate(header) if h != "label"]
    want = np.array([[float(r[i]) for i in numeric] for r in rows], dtype=np.float64)
    if "prediction" in outputs:
        got = outputs["prediction"].astype(np.float64)
        err = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
        print(f"prediction: max relative difference {err:.3g}")
        return err <= 1e-5
    got = outputs["probabilities"].astype(np.float64)
    err = np.max(np.abs(got - want))
    labels = [r[header.index("label")] for r in rows]
    got_labels = [s(v) for v in outputs["label"].ravel().tolist()]
    wrong = sum(g != w for g, w in zip(got_labels, labels))
    print(f"probabilities: max abs difference {err:.3g}; labels that differ: {wrong}")
    return err <= 1e-5 and wrong == 0


def main(argv):
    model_path, data_path, scores_path = argv[1:4]
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    model = onnx.load(model_path)
    header, rows = read_csv(data_path)
    outputs = evaluate(model, feeds_of(model, header, rows))
    score_header, score_rows = read_csv(scores_path)
    if not compare(outputs, score_header, score_rows):
        print(f"{model_path}: the ONNX graph does not match escala score")
        return 1
    print(f"{model_path}: checker passes, outputs match escala score")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
