"""CLI start-up: ``gov --help`` and ``gov models list`` on an empty catalog, beside ``mlflow --help``.

Each command runs as a fresh process (what a user or a CI step pays), the way the console script
runs it: ``python -m governance.cli`` from this interpreter, in a new empty directory whose catalog
was created once beforehand (so the timed ``models list`` opens an existing, empty catalog).  The
peer is MLflow's own ``--help`` (``python -m mlflow --help``, from the ``[bench]`` extra).  Median
wall time of several runs.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import Result

HELP_TARGET = 0.3
LIST_TARGET = 0.6


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}


def _median_run(argv: list[str], cwd: Path, repeat: int) -> float:
    env = _env()
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)  # warm the OS file cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(quick: bool = False) -> list[Result]:
    repeat = 3 if quick else 9
    gov = [sys.executable, "-m", "governance.cli"]
    peer_name = "mlflow --help"
    with tempfile.TemporaryDirectory(prefix="gov-bench-startup-") as tmp:
        cwd = Path(tmp)
        subprocess.run([*gov, "init"], cwd=cwd, env=_env(), capture_output=True, check=True)
        help_s = _median_run([*gov, "--help"], cwd, repeat)
        list_s = _median_run([*gov, "models", "list"], cwd, repeat)
        peer = None
        note = ""
        if importlib.util.find_spec("mlflow") is not None:
            peer = _median_run([sys.executable, "-m", "mlflow", "--help"], cwd, repeat)
        else:
            note = "mlflow is not installed (pip install '.[bench]'): no peer figure"
    return [
        Result("gov --help", help_s, "s", target=HELP_TARGET, peer=peer_name, peer_measured=peer, note=note),
        Result("gov models list, empty catalog", list_s, "s", target=LIST_TARGET, peer=peer_name,
               peer_measured=peer, note=note),
    ]
