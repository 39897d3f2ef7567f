"""Data-parallel jobs from Python: join the job, run collectives on numpy arrays.

    import escala.distributed as dist
    with dist.init() as comm:                   # escala launch, torchrun, Slurm, mpirun
        grad = np.asarray(local_gradient, dtype=np.float32)
        comm.allreduce(grad, op="avg")          # in place, the GIL released
        clf = escala.GBDTClassifier().fit(X_shard, y_shard, comm=comm)

``init()`` reads the same environment as escala's C++ workers (RANK/WORLD_SIZE/MASTER_ADDR
from torchrun, SLURM_*, OMPI_*, ESCALA_*) and returns the job's communicator; a process started
alone gets the size-1 communicator. Close it (or leave the ``with`` block) before exiting: a
worker that vanishes without a goodbye is reported to the others as failed.
"""

from __future__ import annotations

import numpy as np

from . import _core


class Communicator:
    """A job's communicator: rank, size and collectives on numpy arrays (float32, float64,
    int32, int64; writeable and C-contiguous for the in-place ones)."""

    def __init__(self, core: "_core.Communicator"):
        self._c = core

    @property
    def rank(self) -> int:
        return self._c.rank

    @property
    def size(self) -> int:
        return self._c.size

    @property
    def backend(self) -> str:
        return self._c.backend

    def allreduce(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        """Reduces `array` over ranks in place (sum, avg, max, min) and returns it."""
        self._c.allreduce(array, op)
        return array

    def broadcast(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Copies root's `array` into every rank's, in place, and returns it."""
        self._c.broadcast(array, root)
        return array

    def allgather(self, array: np.ndarray) -> np.ndarray:
        """Every rank's `array` (same shape everywhere), stacked: shape (size, *array.shape)."""
        return self._c.allgather(array)

    def allgather_bytes(self, data: bytes) -> list:
        """Every rank's bytes, of any length, in rank order."""
        return list(self._c.allgather_bytes(data))

    def barrier(self) -> None:
        self._c.barrier()

    def close(self) -> None:
        """Leaves the job (idempotent)."""
        self._c.close()

    def __enter__(self) -> "Communicator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def init() -> Communicator:
    """Joins the job this process was launched into (or a job of one)."""
    return Communicator(_core.Communicator.join())
