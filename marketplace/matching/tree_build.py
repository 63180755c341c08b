"""Building the matching index's BallTree without making queries wait.

scikit-learn builds a ``BallTree`` in compiled code that holds the GIL for the whole build
(about a second for a million points), so a build in a background *thread* still stalls
every query thread. :class:`ProcessTreeBuilder` builds in a worker process instead: the
points go to the worker through shared memory, the worker returns only the tree's index
arrays (node data, bounds, permutation: a few MB), and the tree object is reassembled in
this process around its own copy of the points. While the worker builds, the calling
thread waits with the GIL released, so queries keep being answered.

:class:`InlineTreeBuilder` builds in the calling thread: simplest, and right for small
indexes and tests.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import shared_memory
from types import TracebackType
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.neighbors import BallTree

from marketplace.errors import TreeBuildError

__all__ = ["InlineTreeBuilder", "ProcessTreeBuilder", "TreeBuilder", "build_tree"]

logger = logging.getLogger(__name__)


def build_tree(points: NDArray[np.float64], *, leaf_size: int) -> Any:
    """Build a Euclidean ``BallTree`` over ``points`` (shape (n, dims), n >= 1)."""
    if points.ndim != 2 or points.shape[0] == 0:
        raise TreeBuildError(f"cannot build a tree over points of shape {points.shape}")
    return BallTree(points, leaf_size=leaf_size)


class TreeBuilder(Protocol):
    """Builds a ``BallTree`` over C-contiguous float64 points; the tree may keep them."""

    def build(self, points: NDArray[np.float64], *, leaf_size: int) -> Any:
        """Return a built tree over ``points``."""
        ...


class InlineTreeBuilder:
    """Builds in the calling thread (holding the GIL for the duration of the build)."""

    def build(self, points: NDArray[np.float64], *, leaf_size: int) -> Any:
        """Build the tree here and now."""
        return build_tree(points, leaf_size=leaf_size)


def _build_in_worker(name: str, shape: tuple[int, int], leaf_size: int) -> tuple[Any, ...]:
    """Worker side: build over the shared points and return the state without the data."""
    shm = shared_memory.SharedMemory(name=name)
    try:
        points: NDArray[np.float64] = np.ndarray(shape, dtype=np.float64, buffer=shm.buf)
        tree = BallTree(points, leaf_size=leaf_size)
        state = tree.__getstate__()
        rest = tuple(state[1:])
        del tree, state, points
        return rest
    finally:
        shm.close()


class ProcessTreeBuilder:
    """Builds large trees in a worker process so that query threads never stall.

    Args:
        min_points: Below this many points, build inline (a process round trip costs
            more than the build).
        start_method: ``multiprocessing`` start method of the worker (``"spawn"`` is safe
            in threaded programs).

    Use as a context manager, or call :meth:`close` to stop the worker.
    """

    def __init__(self, *, min_points: int = 50_000, start_method: str = "spawn") -> None:
        self._min_points = min_points
        self._context = multiprocessing.get_context(start_method)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=self._context)
            return self._pool

    def build(self, points: NDArray[np.float64], *, leaf_size: int) -> Any:
        """Build over ``points`` in the worker (inline if small); the tree uses ``points``."""
        if points.shape[0] < self._min_points:
            return build_tree(points, leaf_size=leaf_size)
        if points.ndim != 2 or not points.flags.c_contiguous or points.dtype != np.float64:
            raise TreeBuildError("points must be a C-contiguous float64 array of shape (n, d)")
        shm = shared_memory.SharedMemory(create=True, size=max(points.nbytes, 1))
        try:
            shared: NDArray[np.float64] = np.ndarray(points.shape, np.float64, buffer=shm.buf)
            shared[...] = points
            del shared
            future = self._executor().submit(
                _build_in_worker, shm.name, (points.shape[0], points.shape[1]), leaf_size
            )
            rest = future.result()
        except BrokenProcessPool:
            logger.warning("tree-build worker died; building inline instead")
            with self._lock:
                self._pool = None
            return build_tree(points, leaf_size=leaf_size)
        finally:
            shm.close()
            shm.unlink()
        tree = BallTree.__new__(BallTree)
        tree.__setstate__((points, *rest))
        if np.asarray(tree.data).shape != points.shape or len(tree.idx_array) != points.shape[0]:
            logger.warning("unexpected BallTree state layout; building inline instead")
            return build_tree(points, leaf_size=leaf_size)
        return tree

    def close(self) -> None:
        """Stop the worker process (a later build starts a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> ProcessTreeBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
