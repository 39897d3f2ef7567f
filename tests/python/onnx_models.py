#!/usr/bin/env python3
"""ONNX reference models for escala's ONNX runtime tests (tests/unit/onnx/onnx_runtime_test.cc).

Writes into OUTDIR one directory per case: model.onnx, input_<k>.pb and output_<k>.pb (ONNX
TensorProto files, as ONNX's own backend tests lay them out), listed in cases.txt. Expected
outputs come from PyTorch (exported MLPs) or from numpy written here for each operator. Bad models
go to OUTDIR/bad/<name>.onnx, listed in bad.txt with a piece of the error each must raise.

Exits 77 when python3-onnx, numpy or torch is missing (the test then skips).
"""
import os
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import torch
except ImportError as e:  # pragma: no cover - the test skips
    print(f"skip: {e}")
    sys.exit(77)

OUT = sys.argv[1]
RNG = np.random.default_rng(7)
CASES = []
ML = "ai.onnx.ml"

NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
    np.dtype(object): TensorProto.STRING,
}


def write_case(name, model_bytes, inputs, outputs):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    for k, a in enumerate(inputs):
        with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(a)).SerializeToString())
    for k, a in enumerate(outputs):
        with open(os.path.join(d, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(a)).SerializeToString())
    # The same, flat, a value per line: for tests that do not read TensorProto.
    for prefix, arrays in (("input", inputs), ("output", outputs)):
        for k, a in enumerate(arrays):
            with open(os.path.join(d, f"{prefix}_{k}.txt"), "w") as f:
                f.write("".join(f"{v}\n" if isinstance(v, str) else f"{v!r}\n"
                                for v in np.asarray(a).ravel().tolist()))
    CASES.append(name)


def value_info(name, a, dynamic_batch):
    shape = list(a.shape)
    if dynamic_batch and shape:
        shape[0] = "N"
    return helper.make_tensor_value_info(name, NP_TO_ONNX[a.dtype], shape)


def graph_case(name, nodes, inputs, outputs, inits=None, opset=13, ml_opset=None,
               dynamic_batch=False, output_types=None):
    """inputs/outputs: lists of (name, numpy array); inits: list of (name, array)."""
    ins = [value_info(n, a, dynamic_batch) for n, a in inputs]
    if output_types is None:
        outs = [value_info(n, a, dynamic_batch) for n, a in outputs]
    else:
        outs = output_types
    init = [numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or [])]
    graph = helper.make_graph(nodes, name, ins, outs, init)
    opsets = [helper.make_opsetid("", opset)]
    if ml_opset is not None:
        opsets.append(helper.make_opsetid(ML, ml_opset))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="escala-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    write_case(name, model.SerializeToString(), [a for _, a in inputs], [a for _, a in outputs])


def f32(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


def node(op, ins, outs, domain=None, **attrs):
    return helper.make_node(op, ins, outs, domain=domain, **attrs)


# ---- Default-domain operators --------------------------------------------------------------------

def arithmetic_cases():
    a, b, c = f32(3, 4), f32(5, 4), f32(5)
    graph_case("gemm", [node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
               [("a", a)], [("y", 0.5 * a @ b.T + 2.0 * c)], [("b", b), ("c", c)])
    a2, b2, c2 = f32(4, 3), f32(4, 5), f32(1)
    graph_case("gemm_transa", [node("Gemm", ["a", "b", "c"], ["y"], transA=1)],
               [("a", a2)], [("y", a2.T @ b2 + c2)], [("b", b2), ("c", c2)], opset=9)
    x3, w = f32(2, 3, 4), f32(4, 6)
    graph_case("matmul", [node("MatMul", ["x", "w"], ["y"])], [("x", x3)], [("y", x3 @ w)],
               [("w", w)])
    p, q = f32(2, 3, 4), f32(2, 4, 5)
    graph_case("matmul_batched", [node("MatMul", ["p", "q"], ["y"])], [("p", p), ("q", q)],
               [("y", p @ q)])
    v = f32(4)
    graph_case("matmul_vector", [node("MatMul", ["v", "w"], ["y"])], [("v", v)], [("y", v @ w)],
               [("w", w)])
    x, r, col = f32(3, 4), f32(4), f32(3, 1)
    for op, fn in [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply)]:
        graph_case(op.lower(), [node(op, ["x", "r"], ["t"]), node(op, ["t", "col"], ["y"])],
                   [("x", x), ("r", r), ("col", col)], [("y", fn(fn(x, r), col))])
    d = f32(3, 4, lo=0.5, hi=2.0)
    graph_case("div", [node("Div", ["x", "d"], ["y"])], [("x", x), ("d", d)], [("y", x / d)])
    i, j = RNG.integers(-5, 5, (3, 4)), RNG.integers(-5, 5, (4,))
    graph_case("add_int64", [node("Add", ["i", "j"], ["y"])], [("i", i), ("j", j)],
               [("y", i + j)])
    pos = f32(3, 4, lo=0.1, hi=3.0)
    graph_case("pow", [node("Pow", ["x", "e"], ["y"])], [("x", pos)],
               [("y", np.power(pos, np.float32(1.7)))], [("e", np.array(1.7, np.float32))])
    graph_case("pow_int", [node("Pow", ["x", "e"], ["y"])], [("x", x)],
               [("y", x ** 3)], [("e", np.array(3, np.int64))])
    m1, m2, m3 = f32(3, 4), f32(4), f32(3, 1)
    graph_case("max", [node("Max", ["m1", "m2", "m3"], ["y"])], [("m1", m1), ("m2", m2), ("m3", m3)],
               [("y", np.maximum(np.maximum(m1, m2), m3))])
    graph_case("min", [node("Min", ["m1", "m2"], ["y"])], [("m1", m1), ("m2", m2)],
               [("y", np.minimum(m1, m2))])


def erf(a):
    return np.vectorize(__import__("math").erf)(a.astype(np.float64)).astype(np.float32)


def unary_cases():
    x = f32(3, 5)
    pos = f32(3, 5, lo=0.1, hi=4.0)
    cases = {
        "Relu": (x, np.maximum(x, 0)),
        "Sigmoid": (x, 1 / (1 + np.exp(-x))),
        "Tanh": (x, np.tanh(x)),
        "Erf": (x, erf(x)),
        "Sqrt": (pos, np.sqrt(pos)),
        "Exp": (x, np.exp(x)),
        "Log": (pos, np.log(pos)),
        "Abs": (x, np.abs(x)),
        "Neg": (x, -x),
        "Floor": (x, np.floor(x)),
    }
    for op, (inp, out) in cases.items():
        graph_case(op.lower(), [node(op, ["x"], ["y"])], [("x", inp)], [("y", out.astype(np.float32))])
    graph_case("leakyrelu", [node("LeakyRelu", ["x"], ["y"], alpha=0.2)], [("x", x)],
               [("y", np.where(x >= 0, x, 0.2 * x).astype(np.float32))])
    # GELU as exporters write it: 0.5 * x * (1 + erf(x / sqrt(2))).
    gelu = 0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))
    graph_case("gelu_erf", [node("Div", ["x", "s2"], ["t"]), node("Erf", ["t"], ["e"]),
                            node("Add", ["e", "one"], ["a"]), node("Mul", ["x", "a"], ["m"]),
                            node("Mul", ["m", "half"], ["y"])],
               [("x", x)], [("y", gelu.astype(np.float32))],
               [("s2", np.array(np.sqrt(2), np.float32)), ("one", np.array(1, np.float32)),
                ("half", np.array(0.5, np.float32))])
    nan = x.copy()
    nan[0, 1] = np.nan
    graph_case("isnan_where", [node("IsNaN", ["x"], ["m"]), node("Where", ["m", "z", "x"], ["y"])],
               [("x", nan)], [("y", np.where(np.isnan(nan), np.float32(-1), nan))],
               [("z", np.array(-1, np.float32))])
    a, b = f32(3, 4), f32(4)
    graph_case("compare", [node("Greater", ["a", "b"], ["g"]), node("Less", ["a", "b"], ["l"]),
                           node("Equal", ["i", "j"], ["e"])],
               [("a", a), ("b", b), ("i", np.array([1, 2, 3], np.int64)),
                ("j", np.array([1, 0, 3], np.int64))],
               [("g", a > b), ("l", a < b), ("e", np.array([True, False, True]))])
    graph_case("clip", [node("Clip", ["x", "lo", "hi"], ["y"])], [("x", x)],
               [("y", np.clip(x, -0.5, 0.7))],
               [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))])
    graph_case("clip_max_only", [node("Clip", ["x", "", "hi"], ["y"])], [("x", x)],
               [("y", np.minimum(x, 0.7))], [("hi", np.array(0.7, np.float32))])
    graph_case("clip_opset9", [node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], [("x", x)],
               [("y", np.clip(x, -0.5, 0.7))], opset=9)
    graph_case("cast", [node("Cast", ["x"], ["i"], to=TensorProto.INT64),
                        node("Cast", ["i"], ["f"], to=TensorProto.FLOAT),
                        node("Cast", ["x"], ["b"], to=TensorProto.BOOL)],
               [("x", x)], [("i", x.astype(np.int64)), ("f", x.astype(np.int64).astype(np.float32)),
                            ("b", x != 0)])


def softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def shape_cases():
    x = f32(2, 3, 4)
    graph_case("softmax", [node("Softmax", ["x"], ["y"], axis=-1)], [("x", x)],
               [("y", softmax(x, -1).astype(np.float32))])
    flat = softmax(x.reshape(2, 12), 1).reshape(2, 3, 4)
    graph_case("softmax_opset11", [node("Softmax", ["x"], ["y"], axis=1)], [("x", x)],
               [("y", flat.astype(np.float32))], opset=11)
    graph_case("logsoftmax", [node("LogSoftmax", ["x"], ["y"], axis=1)], [("x", x)],
               [("y", np.log(softmax(x, 1)).astype(np.float32))])
    graph_case("flatten", [node("Flatten", ["x"], ["y"], axis=2)], [("x", x)],
               [("y", x.reshape(6, 4))])
    graph_case("reshape", [node("Reshape", ["x", "s"], ["y"])], [("x", x)],
               [("y", x.reshape(2, 2, 6))], [("s", np.array([0, 2, -1], np.int64))])
    s1 = f32(2, 1, 3, 1)
    graph_case("squeeze", [node("Squeeze", ["x", "ax"], ["y"])], [("x", s1)],
               [("y", s1.reshape(2, 3, 1))], [("ax", np.array([1], np.int64))])
    graph_case("squeeze_opset11", [node("Squeeze", ["x"], ["y"])], [("x", s1)],
               [("y", s1.reshape(2, 3))], opset=11)
    u = f32(2, 3)
    graph_case("unsqueeze", [node("Unsqueeze", ["x", "ax"], ["y"])], [("x", u)],
               [("y", u.reshape(1, 2, 3, 1))], [("ax", np.array([0, -1], np.int64))])
    graph_case("unsqueeze_opset11", [node("Unsqueeze", ["x"], ["y"], axes=[1])], [("x", u)],
               [("y", u.reshape(2, 1, 3))], opset=11)
    graph_case("transpose", [node("Transpose", ["x"], ["y"], perm=[2, 0, 1])], [("x", x)],
               [("y", x.transpose(2, 0, 1))])
    a, b = f32(2, 1, 4), f32(2, 2, 4)
    graph_case("concat", [node("Concat", ["a", "b", "a"], ["y"], axis=1)], [("a", a), ("b", b)],
               [("y", np.concatenate([a, b, a], axis=1))])
    graph_case("identity_dropout",
               [node("Identity", ["x"], ["i"]), node("Dropout", ["i", "r"], ["y", "m"])],
               [("x", x)], [("y", x), ("m", np.ones(x.shape, bool))],
               [("r", np.array(0.3, np.float32))])
    c = numpy_helper.from_array(np.array([[1.5, -2.0]], np.float32))
    v = f32(3, 2)
    graph_case("constant", [node("Constant", [], ["c"], value=c), node("Add", ["v", "c"], ["y"])],
               [("v", v)], [("y", v + np.array([[1.5, -2.0]], np.float32))])
    # PyTorch's flatten of a dynamic batch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    d = f32(3, 2, 2)
    graph_case("shape_gather",
               [node("Shape", ["d"], ["sh"]), node("Gather", ["sh", "zero"], ["n"], axis=0),
                node("Unsqueeze", ["n", "ax"], ["n1"]), node("Concat", ["n1", "m1"], ["ns"], axis=0),
                node("Reshape", ["d", "ns"], ["y"])],
               [("d", d)], [("y", d.reshape(3, 4))],
               [("zero", np.array(0, np.int64)), ("ax", np.array([0], np.int64)),
                ("m1", np.array([-1], np.int64))], dynamic_batch=True)
    table = f32(5, 3)
    idx = np.array([[4, 0], [-1, 2]], np.int64)
    graph_case("gather", [node("Gather", ["t", "i"], ["y"], axis=0)], [("i", idx)],
               [("y", table[idx])], [("t", table)])
    graph_case("gather_axis1", [node("Gather", ["t", "i"], ["y"], axis=1)], [("t", table)],
               [("y", table[:, [2, 0]])], [("i", np.array([2, 0], np.int64))])
    bn_x = f32(4, 3, 2)
    sc, bi, mu, var = f32(3), f32(3), f32(3), f32(3, lo=0.5, hi=2.0)
    bn = (bn_x - mu[None, :, None]) / np.sqrt(var[None, :, None] + 1e-3) * sc[None, :, None] \
        + bi[None, :, None]
    graph_case("batchnorm", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                  epsilon=1e-3)],
               [("x", bn_x)], [("y", bn.astype(np.float32))],
               [("s", sc), ("b", bi), ("m", mu), ("v", var)])
    am = f32(4, 5)
    am[1, 3] = am[1, 1] = 9.0
    graph_case("argmax", [node("ArgMax", ["x"], ["y"], axis=1, keepdims=0),
                          node("ArgMax", ["x"], ["z"], axis=1, keepdims=1, select_last_index=1)],
               [("x", am)],
               [("y", am.argmax(axis=1)),
                ("z", (4 - am[:, ::-1].argmax(axis=1)).reshape(4, 1))])
    graph_case("reducesum", [node("ReduceSum", ["x", "ax"], ["y"], keepdims=0)], [("x", x)],
               [("y", x.sum(axis=(0, 2)))], [("ax", np.array([0, -1], np.int64))])
    graph_case("reducesum_opset11", [node("ReduceSum", ["x"], ["y"], axes=[1])], [("x", x)],
               [("y", x.sum(axis=1, keepdims=True))], opset=11)
    # Opset 8: converted to 9 at load.
    w8, b8 = f32(4, 3), f32(3)
    x8 = f32(5, 4)
    graph_case("opset8_converted", [node("Gemm", ["x", "w", "b"], ["g"]), node("Relu", ["g"], ["y"])],
               [("x", x8)], [("y", np.maximum(x8 @ w8 + b8, 0))], [("w", w8), ("b", b8)], opset=8)


# ---- ai.onnx.ml ------------------------------------------------------------------------------------

def ml_cases():
    x = f32(4, 3)
    graph_case("scaler", [node("Scaler", ["x"], ["y"], domain=ML, offset=[0.5, -1.0, 2.0],
                               scale=[2.0, 0.5, 1.5])],
               [("x", x)], [("y", ((x - [0.5, -1.0, 2.0]) * [2.0, 0.5, 1.5]).astype(np.float32))],
               ml_opset=1)
    xn = x.copy()
    xn[1, 0] = xn[2, 2] = np.nan
    imputed = np.where(np.isnan(xn), np.array([9.0, 8.0, 7.0], np.float32), xn)
    graph_case("imputer", [node("Imputer", ["x"], ["y"], domain=ML,
                                imputed_value_floats=[9.0, 8.0, 7.0],
                                replaced_value_float=float("nan"))],
               [("x", xn)], [("y", imputed.astype(np.float32))], ml_opset=1)
    for norm, den in [("L1", np.abs(x).sum(1)), ("L2", np.sqrt((x * x).sum(1))), ("MAX", x.max(1))]:
        graph_case(f"normalizer_{norm.lower()}",
                   [node("Normalizer", ["x"], ["y"], domain=ML, norm=norm)], [("x", x)],
                   [("y", (x / den[:, None]).astype(np.float32))], ml_opset=1)
    graph_case("binarizer", [node("Binarizer", ["x"], ["y"], domain=ML, threshold=0.3)],
               [("x", x)], [("y", (x > 0.3).astype(np.float32))], ml_opset=1)
    cats = np.array([["b"], ["z"], ["a"]], dtype=object)
    graph_case("onehot_strings",
               [node("OneHotEncoder", ["c"], ["y"], domain=ML, cats_strings=["a", "b", "c"])],
               [("c", cats)], [("y", np.array([[[0, 1, 0]], [[0, 0, 0]], [[1, 0, 0]]], np.float32))],
               ml_opset=1)
    ints = np.array([3, 1, 7], np.int64)
    graph_case("onehot_int64",
               [node("OneHotEncoder", ["c"], ["y"], domain=ML, cats_int64s=[1, 3])],
               [("c", ints)], [("y", np.array([[0, 1], [1, 0], [0, 0]], np.float32))], ml_opset=1)
    graph_case("labelencoder",
               [node("LabelEncoder", ["s"], ["i"], domain=ML, keys_strings=["x", "y"],
                     values_int64s=[10, 20], default_int64=-5),
                node("LabelEncoder", ["i"], ["t"], domain=ML, keys_int64s=[10, -5],
                     values_strings=["ten", "none"], default_string="?")],
               [("s", np.array(["y", "x", "q"], dtype=object))],
               [("i", np.array([20, 10, -5], np.int64)),
                ("t", np.array(["?", "ten", "none"], dtype=object))], ml_opset=2)
    graph_case("labelencoder_v1",
               [node("LabelEncoder", ["s"], ["i"], domain=ML, classes_strings=["x", "y", "z"],
                     default_int64=-1),
                node("LabelEncoder", ["j"], ["t"], domain=ML, classes_strings=["x", "y", "z"],
                     default_string="none")],
               [("s", np.array(["z", "x", "q"], dtype=object)), ("j", np.array([1, 7], np.int64))],
               [("i", np.array([2, 0, -1], np.int64)), ("t", np.array(["y", "none"], dtype=object))],
               ml_opset=1)
    linear_cases(x)
    tree_cases()


def zipmap_type():
    """seq(map(string, float)): what ZipMap produces."""
    t = onnx.TypeProto()
    m = t.sequence_type.elem_type.map_type
    m.key_type = TensorProto.STRING
    m.value_type.tensor_type.elem_type = TensorProto.FLOAT
    return t


def linear_cases(x):
    coef = f32(3, 3)
    bias = f32(3)
    scores = x @ coef.T + bias
    prob = softmax(scores, 1).astype(np.float32)
    graph_case("linear_classifier",
               [node("LinearClassifier", ["x"], ["label", "prob"], domain=ML,
                     coefficients=coef.ravel().tolist(), intercepts=bias.tolist(),
                     classlabels_strings=["ant", "bee", "cat"], post_transform="SOFTMAX"),
                node("ZipMap", ["prob"], ["zip"], domain=ML, classlabels_strings=["ant", "bee", "cat"])],
               [("x", x)],
               [("label", np.array(["ant", "bee", "cat"], dtype=object)[prob.argmax(1)]),
                ("zip", prob)],
               ml_opset=1, dynamic_batch=True,
               output_types=[helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
                             helper.make_value_info("zip", zipmap_type())])
    c1, b1 = f32(1, 3), f32(1)
    s = (x @ c1.T + b1).ravel()
    p1 = 1 / (1 + np.exp(-s))
    graph_case("linear_classifier_binary",
               [node("LinearClassifier", ["x"], ["label", "prob"], domain=ML,
                     coefficients=c1.ravel().tolist(), intercepts=b1.tolist(),
                     classlabels_ints=[0, 1], post_transform="LOGISTIC")],
               [("x", x)],
               [("label", (p1 > 0.5).astype(np.int64)),
                ("prob", np.stack([1 - p1, p1], 1).astype(np.float32))], ml_opset=1,
               dynamic_batch=True)
    c2, b2 = f32(2, 3), f32(2)
    graph_case("linear_regressor",
               [node("LinearRegressor", ["x"], ["y"], domain=ML, coefficients=c2.ravel().tolist(),
                     intercepts=b2.tolist(), targets=2)],
               [("x", x)], [("y", (x @ c2.T + b2).astype(np.float32))], ml_opset=1)


def tree_attrs():
    """Two trees over 2 features; tree 0 sends missing x0 right (true), tree 1 left."""
    return dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 1, 0, 0],
        nodes_values=[0.5, -0.2, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_LT", "LEAF", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 2, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[4, 3, 0, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0, 0],
    )


def tree_reference(x):
    """Leaf index per row and tree, by hand from tree_attrs()."""
    out = []
    for r in x:
        a, b = r
        if np.isnan(a) or a <= 0.5:
            t0 = 2 if b < -0.2 else 3
        else:
            t0 = 4
        t1 = 1 if b > 0.1 else 2
        out.append((t0, t1))
    return out


def tree_cases():
    x = f32(6, 2, lo=-1.0, hi=1.0)
    x[0, 0] = np.nan
    leaves = tree_reference(x)
    w0 = {2: 1.0, 3: -0.5, 4: 2.0}
    w1 = {1: 0.25, 2: -1.5}
    reg = np.array([[w0[a] + w1[b] + 0.1] for a, b in leaves], np.float32)
    graph_case("tree_regressor",
               [node("TreeEnsembleRegressor", ["x"], ["y"], domain=ML, n_targets=1,
                     target_treeids=[0, 0, 0, 1, 1], target_nodeids=[2, 3, 4, 1, 2],
                     target_ids=[0] * 5, target_weights=[1.0, -0.5, 2.0, 0.25, -1.5],
                     base_values=[0.1], **tree_attrs())],
               [("x", x)], [("y", reg)], ml_opset=3, dynamic_batch=True)
    # The same with ml opset 3's tensor attributes.
    attrs = tree_attrs()
    attrs["nodes_values_as_tensor"] = numpy_helper.from_array(
        np.array(attrs.pop("nodes_values"), np.float32))
    graph_case("tree_regressor_tensor_attrs",
               [node("TreeEnsembleRegressor", ["x"], ["y"], domain=ML, n_targets=1,
                     target_treeids=[0, 0, 0, 1, 1], target_nodeids=[2, 3, 4, 1, 2],
                     target_ids=[0] * 5,
                     target_weights_as_tensor=numpy_helper.from_array(
                         np.array([1.0, -0.5, 2.0, 0.25, -1.5], np.float32)),
                     base_values_as_tensor=numpy_helper.from_array(np.array([0.1], np.float32)),
                     **attrs)],
               [("x", x)], [("y", reg)], ml_opset=3, dynamic_batch=True)
    # Binary classifier, one class's weights, LOGISTIC (XGBoost's converted form).
    s = reg.ravel() - 0.1
    p = 1 / (1 + np.exp(-s))
    graph_case("tree_classifier_binary",
               [node("TreeEnsembleClassifier", ["x"], ["label", "prob"], domain=ML,
                     class_treeids=[0, 0, 0, 1, 1], class_nodeids=[2, 3, 4, 1, 2],
                     class_ids=[0] * 5, class_weights=[1.0, -0.5, 2.0, 0.25, -1.5],
                     classlabels_int64s=[0, 1], post_transform="LOGISTIC", **tree_attrs())],
               [("x", x)], [("label", (p > 0.5).astype(np.int64)),
                            ("prob", np.stack([1 - p, p], 1).astype(np.float32))], ml_opset=3,
               dynamic_batch=True)
    # Three classes, a weight per class on each leaf, softmax.
    wc = {2: [1, 0, 0], 3: [0, 1, 0], 4: [0, 0, 1]}
    wd = {1: [0.5, 0, 0], 2: [0, 0, 0.5]}
    ids, nids, tids, ws = [], [], [], []
    for t, table in ((0, wc), (1, wd)):
        for leaf, weights in table.items():
            for c, w in enumerate(weights):
                tids.append(t)
                nids.append(leaf)
                ids.append(c)
                ws.append(float(w))
    raw = np.array([np.add(wc[a], wd[b]) for a, b in leaves], np.float32)
    prob = softmax(raw, 1).astype(np.float32)
    graph_case("tree_classifier_multiclass",
               [node("TreeEnsembleClassifier", ["x"], ["label", "prob"], domain=ML,
                     class_treeids=tids, class_nodeids=nids, class_ids=ids, class_weights=ws,
                     classlabels_strings=["r", "g", "b"], post_transform="SOFTMAX",
                     **tree_attrs())],
               [("x", x)], [("label", np.array(["r", "g", "b"], dtype=object)[prob.argmax(1)]),
                            ("prob", prob)], ml_opset=3, dynamic_batch=True)


# ---- PyTorch MLPs ----------------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU, "leakyrelu": lambda: torch.nn.LeakyReLU(0.1),
}


def torch_case(name, module, x, opset, dynamic=True, props=None):
    module.eval()
    path = os.path.join(OUT, name + ".tmp.onnx")
    kwargs = {}
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "N"}, "output": {0: "N"}}
    torch.onnx.export(module, torch.from_numpy(x[:2]), path, input_names=["input"],
                      output_names=["output"], opset_version=opset, **kwargs)
    if props:
        model = onnx.load(path)
        helper.set_model_props(model, props)
        onnx.save(model, path)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
    write_case(name, data, [x], [y])


def torch_cases():
    torch.manual_seed(0)
    x = f32(64, 16)
    for act, make in ACTIVATIONS.items():
        for opset in (13, 17):
            layers = [torch.nn.Linear(16, 32), make(), torch.nn.Linear(32, 32), make(),
                      torch.nn.Linear(32, 1)]
            torch_case(f"torch_{act}_opset{opset}", torch.nn.Sequential(*layers), x, opset)
    for opset in (13, 17):
        bn = torch.nn.BatchNorm1d(32)
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        m = torch.nn.Sequential(torch.nn.Linear(16, 32), bn, torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(32, 3), torch.nn.Softmax(dim=1))
        torch_case(f"torch_bn_dropout_softmax_opset{opset}", m, x, opset)
    x3 = f32(8, 4, 4)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(),
                            torch.nn.Linear(8, 2), torch.nn.LogSoftmax(dim=1))
    torch_case("torch_flatten_logsoftmax", m, x3, 13)
    m = torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch_case("torch_fixed_batch", m, x[:1], 13, dynamic=False)
    big = f32(32, 64)
    m = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                            torch.nn.ReLU(), torch.nn.Linear(256, 1))
    # The benchmark's shape, with its columns named for scoring CSVs.
    torch_case("torch_mlp_64_256_256_1", m, big, 17,
               props={"feature_names": ",".join(f"f{j}" for j in range(64))})


# ---- Models that must be refused ---------------------------------------------------------------

BAD = []


def bad(name, data, expect):
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".onnx"), "wb") as f:
        f.write(data)
    BAD.append((name, expect))


def model_bytes(nodes, inputs, outputs, inits=(), opset=13, check=False):
    g = helper.make_graph(nodes, "bad", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if check:
        onnx.checker.check_model(m)
    return m.SerializeToString()


def raw_tensor(name, dims, data):
    """A float initializer whose raw data need not match its shape."""
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.raw_data = data
    return t


def bad_cases():
    fx = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    fy = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    good = model_bytes([node("Relu", ["x"], ["y"])], [fx], [fy])
    bad("truncated", good[: len(good) // 2], "ONNX")
    bad("random", bytes(RNG.integers(0, 256, 4096, dtype=np.uint8)), "not an ONNX model")
    bad("cycle", model_bytes([node("Add", ["x", "b"], ["a"]), node("Relu", ["a"], ["b"]),
                              node("Identity", ["a"], ["y"])], [fx], [fy]), "cycle")
    w = raw_tensor("w", [4, 4], bytes(48))
    bad("initializer_size", model_bytes([node("MatMul", ["x", "w"], ["y"])], [fx], [fy], [w]),
        "initializer 'w'")
    s = numpy_helper.from_array(np.array([3, 5], np.int64), "s")
    bad("impossible_reshape", model_bytes([node("Reshape", ["x", "s"], ["y"], name="reshape_3x5")],
                                          [fx], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])], [s]),
        "reshape_3x5")
    bad("unsupported_op", model_bytes([node("Sin", ["x"], ["y"], name="the_sine")], [fx], [fy]),
        "Sin")
    dx = helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 4])
    dy = helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 4])
    bad("double_input", model_bytes([node("Relu", ["x"], ["y"])], [dx], [dy]), "DOUBLE")
    bad("opset18", model_bytes([node("Relu", ["x"], ["y"])], [fx], [fy], opset=18), "opset 18")
    hx = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1 << 40])
    bad("huge_input", model_bytes([node("Relu", ["x"], ["y"])], [hx], [fy]), "dimension")
    hw = raw_tensor("w", [1 << 20, 1 << 20], b"")
    bad("huge_initializer", model_bytes([node("Add", ["x", "w"], ["y"])], [fx], [fy], [hw]),
        "initializer 'w'")
    big = numpy_helper.from_array(np.array([4, 6485182846807983103], np.int64), "s")
    bad("overflowing_reshape", model_bytes([node("Reshape", ["x", "s"], ["y"], name="huge")], [fx],
                                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
                                           [big]), "impossible")
    # A malformed graph of an old opset: refused before libonnx's converter sees it.
    bad("malformed_opset8", model_bytes([node("Relu", ["nowhere"], ["y"])], [fx], [fy], opset=8),
        "nothing produces")
    bad("bad_gemm_weights", model_bytes(
        [node("Gemm", ["x", "w"], ["y"], name="gemm_7")], [fx], [fy],
        [numpy_helper.from_array(np.zeros((5, 4), np.float32), "w")]), "gemm_7")


def main():
    os.makedirs(OUT, exist_ok=True)
    arithmetic_cases()
    unary_cases()
    shape_cases()
    ml_cases()
    torch_cases()
    bad_cases()
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    with open(os.path.join(OUT, "bad.txt"), "w") as f:
        f.write("".join(f"{n}\t{e}\n" for n, e in BAD))


main()
