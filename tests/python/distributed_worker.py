"""One worker of tests/python/test_package.py's data-parallel test, run by `escala launch`.

Usage: distributed_worker.py OUT_DIR
Checks the collectives on numpy arrays, then fits a GBDTClassifier on this rank's half of a
shared dataset with comm=; rank 0 writes the model's predictions on all rows to OUT_DIR/dp.npy.
"""
import os
import sys

import numpy as np

import escala
import escala.distributed as dist


def shared_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 4))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "differ")
    return X, y


def main(out):
    with dist.init() as comm:
        r, n = comm.rank, comm.size
        assert n == 2, n
        a = np.arange(6, dtype=np.float32) + r
        comm.allreduce(a)
        assert np.array_equal(a, 2 * np.arange(6) + 1), a
        m = np.array([r], dtype=np.int64)
        comm.allreduce(m, op="max")
        assert m[0] == 1
        b = np.full(3, r, dtype=np.float64)
        comm.broadcast(b, root=1)
        assert np.all(b == 1), b
        g = comm.allgather(np.array([r, 10 * r], dtype=np.int32))
        assert g.shape == (2, 2) and g[1, 1] == 10, g
        assert comm.allgather_bytes(b"x" * (r + 1)) == [b"x", b"xx"]
        X, y = shared_data()
        half = len(X) // 2
        shard = slice(r * half, (r + 1) * half)
        clf = escala.GBDTClassifier(n_estimators=20, max_depth=3)
        clf.fit(X[shard], y[shard], comm=comm)
        assert list(clf.classes_) == ["differ", "same"], clf.classes_
        # Uneven shards: the penalty 1/(C n) uses every rank's rows, so both ranks minimise
        # the objective one process minimises on all the rows.
        mine = slice(0, len(X) // 3) if r == 0 else slice(len(X) // 3, len(X))
        lr = escala.LogisticRegression().fit(X[mine], y[mine], comm=comm)
        comm.barrier()
        if r == 0:
            np.save(os.path.join(out, "dp.npy"), clf.predict_proba(X))
            np.save(os.path.join(out, "lr.npy"), lr.predict_proba(X))


if __name__ == "__main__":
    main(sys.argv[1])
