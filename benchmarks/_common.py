"""What every benchmark module returns: rows of measured vs peer vs target."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Result", "median_time", "throughput"]


@dataclass
class Result:
    """One line of the table.

    ``higher_is_better`` says how to read ``measured`` against ``target`` (throughputs) or not
    (latencies).  ``ratio`` is peer / measured for latencies and measured / peer for throughputs, so
    a ratio above 1 always means "we are faster than the peer".
    """

    name: str
    measured: float
    unit: str
    target: float | None = None
    higher_is_better: bool = False
    peer: str | None = None
    peer_measured: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_measured is None or self.measured == 0 or self.peer_measured == 0:
            return None
        if self.higher_is_better:
            return self.measured / self.peer_measured
        return self.peer_measured / self.measured

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def throughput(nbytes: int, seconds: float) -> float:
    """Bytes per second."""
    return nbytes / seconds if seconds > 0 else float("inf")
