"""Lineage capture: step overhead, disabled decorator, fingerprint throughput, lineage queries.

    python -m benchmarks.bench_capture [--quick]

* step overhead: a ``@step`` function taking and returning a 1k-row frame, on a SQLite file
  catalog with OpenLineage events enqueued in the outbox, minus the same undecorated call; measured
  with the same frame each call (a re-run over unchanged data: the dataset versions are reused; the
  peer's workload) and with a changed cell each call (new data: two new dataset versions with their
  fields and column statistics per call; the cell write is timed in the undecorated baseline too).
  With ``GOVERNANCE_TEST_POSTGRES_URL`` set, both again on a fresh PostgreSQL database (no target).
  Peer: MLflow ``start_run`` + ``log_param``
  + ``log_input`` + ``end_run`` with MLflow's SQLite tracking store (from the ``[bench]`` extra).
* step CPU (every thread of the process, shipping included) with no OpenLineage transport, with
  openlineage-python's file transport, and with its HTTP transport posting to a minimal local
  receiver in another process (a stdlib server answering 201; its CPU is not counted: it is the
  backend's, Marquez's in production, not the pipeline's).
* disabled decorator (``GOVERNANCE_DISABLED=1``): per-call cost over the bare call.
* fingerprint of 1M rows x 10 float columns (every cell); peers: MLflow's dataset digest
  (``mlflow.data.from_pandas(df).digest``, which hashes a sample) and ``pandas.util.hash_pandas_object``.
* upstream / downstream with ``depth=3`` on a synthetic catalog with 1M ``run_io`` edges (250k runs,
  each reading 3 dataset versions and writing 1), bulk-inserted; SQLite file (without and with
  ``ANALYZE`` statistics), and PostgreSQL when ``GOVERNANCE_TEST_POSTGRES_URL`` is set.  Quick mode:
  100k edges.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks._common import Result, median_time, throughput
from governance.catalog import Catalog, Dataset, DatasetVersion, Job, Run, RunIO, clear_catalog_cache
from governance.catalog._graph import downstream, upstream
from governance.lineage import fingerprint, step
from governance.lineage._runtime import runtime


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _samples(fn: Callable[[], object], repeat: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 100, n),
            "c": rng.choice(["x", "y", "z"], n),
            "d": rng.normal(size=n),
        }
    )


def _mlflow_overhead(tmp: Path, repeat: int) -> tuple[float | None, str]:
    try:
        import mlflow
        import mlflow.data
    except ImportError:
        return None, "peer not installed (pip install '.[bench]')"
    import logging
    import warnings

    warnings.filterwarnings("ignore", module="mlflow")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    df = _frame()

    def once() -> None:
        with mlflow.start_run():
            mlflow.log_param("scale", 2.0)
            mlflow.log_input(mlflow.data.from_pandas(df, name="raw"), context="training")

    return statistics.median(_samples(once, repeat, warmup=3)), "MLflow sqlite tracking store"


def _overheads(url: str, home: Path, repeat: int) -> tuple[float, float, Callable[[], None], Any]:
    """Median step overhead in seconds with the same frame and with a changed cell each call, on the
    catalog at ``url`` (plus the undecorated and decorated functions for further timing)."""
    with _env(GOVERNANCE_CATALOG_URL=url, GOVERNANCE_HOME=str(home), GOVERNANCE_DISABLED=None,
              GOVERNANCE_ACTOR="bench"):
        runtime().settings.clear()

        def plain(raw: pd.DataFrame, scale: float = 2.0) -> pd.DataFrame:
            return raw

        decorated = step(kind="feature", name="bench.step")(plain)
        df = _frame()
        base = statistics.median(_samples(lambda: plain(df), repeat))
        same = statistics.median(_samples(lambda: decorated(df), repeat)) - base
        counter = iter(range(10**9))

        def changing_plain() -> None:
            df.iloc[0, 0] = float(next(counter))
            plain(df)

        def changing() -> None:
            df.iloc[0, 0] = float(next(counter))
            decorated(df)

        # the cell write itself (~0.1 ms of pandas) is in both, so only the capture is counted
        new = statistics.median(_samples(changing, repeat // 2)) - statistics.median(
            _samples(changing_plain, repeat // 2)
        )
        clear_catalog_cache()
        runtime().settings.clear()
    return same, new, lambda: plain(df), lambda: decorated(df)


_SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's session reuses its connection
    received = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Sink.received += 1
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        body = str(Sink.received).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def _http_sink() -> Iterator[str]:
    """A minimal OpenLineage HTTP receiver in its own process (its CPU is not the step's): answers
    ``201`` to every POST and, to ``GET``, how many it received.  Yields its base URL."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.terminate()
        proc.wait(10)


def _received(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url + "/count", timeout=10) as response:
        return int(response.read())


def _cpu_per_step(url: str, home: Path, steps: int, transport: dict[str, str] | None) -> tuple[float, float]:
    """CPU seconds per decorated call (same frame each call) over the undecorated call, every thread of
    the process counted, with the OpenLineage outbox shipped through the openlineage-python transport
    configured by the ``OPENLINEAGE__TRANSPORT__*`` variables in ``transport`` (drained before the
    clock stops) or, with None, no transport configured; and the share of it spent on other threads
    than the step's (the shipper's), per call.  The clock starts after the warm-up and a full garbage
    collection (the garbage collector's work for objects made before, such as the client's modules the
    warm-up imported, is not the steps'; collections the steps cause are counted)."""
    from governance.catalog import open_catalog
    from governance.openlineage import pending_count, shipper_for

    ol_env = {f"OPENLINEAGE__TRANSPORT__{k.upper()}": v for k, v in (transport or {}).items()}
    with _env(GOVERNANCE_CATALOG_URL=url, GOVERNANCE_HOME=str(home), GOVERNANCE_DISABLED=None,
              GOVERNANCE_ACTOR="bench", OPENLINEAGE_DISABLED=None, OPENLINEAGE_URL=None,
              OPENLINEAGE_CONFIG=None, **ol_env):
        runtime().settings.clear()

        def plain(raw: pd.DataFrame, scale: float = 2.0) -> pd.DataFrame:
            return raw

        decorated = step(kind="feature", name="bench.shipped" if transport else "bench.unshipped")(plain)
        df = _frame()
        catalog = open_catalog()
        for _ in range(20):
            decorated(df)
        shipper = shipper_for(catalog)
        shipper.join(30)
        # a full collection owed by what ran before (earlier benchmarks, the first import of the
        # client by the warm-up's shipper) is not the steps'; the window's own collections are
        gc.collect()
        start = time.process_time()
        for _ in range(steps):
            plain(df)
        bare = (time.process_time() - start) / steps
        start, start_main = time.process_time(), time.thread_time()
        for _ in range(steps):
            decorated(df)
        for _ in range(100 if transport is not None else 0):
            if not pending_count(catalog):
                break
            shipper.kick()
            shipper.join(30)
        total = time.process_time() - start
        others = (total - (time.thread_time() - start_main)) / steps  # the shipper thread's share
        cpu = total / steps - bare
        if transport is not None and pending_count(catalog):
            raise RuntimeError(f"bench: events left in the outbox after draining ({shipper.last_error})")
        clear_catalog_cache()
        runtime().settings.clear()
    return cpu, others


def bench_step(quick: bool) -> list[Result]:
    repeat = 60 if quick else 300
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        same, new, bare_call, decorated_call = _overheads(f"sqlite:///{tmp / 'catalog.db'}", tmp / "home", repeat)
        with _env(GOVERNANCE_DISABLED="1"):
            runtime().settings.clear()
            n = 20000 if quick else 200000
            bare = median_time(lambda: [bare_call() for _ in range(n)], 5, 1) / n
            off = median_time(lambda: [decorated_call() for _ in range(n)], 5, 1) / n - bare
        runtime().settings.clear()
        steps = 300 if quick else 2000
        cpu_plain, _ = _cpu_per_step(f"sqlite:///{tmp / 'cpu.db'}", tmp / "home-cpu", steps, None)
        cpu_file, ship_file = _cpu_per_step(f"sqlite:///{tmp / 'shipped.db'}", tmp / "home-shipped", steps,
                                 {"type": "file", "log_file_path": str(tmp / "events.ndjson"), "append": "true"})
        shipped = sum(1 for _ in (tmp / "events.ndjson").open(encoding="utf-8"))
        with _http_sink() as sink:
            cpu_http, ship_http = _cpu_per_step(f"sqlite:///{tmp / 'posted.db'}", tmp / "home-posted", steps,
                                     {"type": "http", "url": sink})
            posted = _received(sink)
        mlflow_s, note = _mlflow_overhead(tmp, 20 if quick else 60)
        pg = _postgres_overheads(tmp, repeat)
    results = [
        Result(
            "step overhead, 1k rows in+out, same data (SQLite file, OL outbox)",
            same * 1e3,
            "ms",
            1.5,
            peer="mlflow start_run+log_param+log_input+end_run",
            peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
            note=note,
        ),
        Result(
            "step overhead, 1k rows in+out, new data each call",
            new * 1e3,
            "ms",
            None,
            peer="mlflow start_run+log_param+log_input+end_run",
            peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
            note=f"{note}; no design target (the target's workload is the peer's: the same frame each call); "
            "adds column statistics and two new dataset versions per call, which MLflow does not compute",
        ),
        Result(
            "step CPU per call, same data, no OpenLineage transport (events wait in the outbox)",
            cpu_plain * 1e3,
            "ms",
            None,
            peer="mlflow start_run+log_param+log_input+end_run (wall time)",
            peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
            note="CPU time of every thread of the process, minus the undecorated call",
        ),
        Result(
            "step CPU per call incl. shipping, same data, file transport (openlineage-python)",
            cpu_file * 1e3,
            "ms",
            2.0,
            peer="mlflow start_run+log_param+log_input+end_run (wall time)",
            peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
            note=f"the shipper thread's building, file writes and bookkeeping counted ({ship_file * 1e3:.2f} ms of "
                 f"it); {shipped} events shipped"
                 + (f"; {cpu_file / cpu_plain:.2f}x the no-transport CPU" if cpu_plain > 0 else ""),
        ),
        Result(
            "step CPU per call incl. shipping, same data, HTTP transport to a local server (openlineage-python)",
            cpu_http * 1e3,
            "ms",
            2.0,
            peer="mlflow start_run+log_param+log_input+end_run (wall time)",
            peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
            note=f"one POST per event (the client's HttpTransport request, sent by the outbox's poster on one "
                 f"kept-alive connection) to a stdlib server "
                 f"in another process (answers 201; its CPU not counted); the shipper thread "
                 f"{ship_http * 1e3:.2f} ms of it; {posted} events received"
                 + (f"; {cpu_http / cpu_plain:.2f}x the no-transport CPU" if cpu_plain > 0 else ""),
        ),
        Result("disabled decorator (GOVERNANCE_DISABLED=1)", off * 1e6, "us", 5.0),
    ]
    if pg is not None:
        for label, value in zip(("same data", "new data each call"), pg, strict=True):
            results.append(
                Result(
                    f"step overhead, 1k rows in+out, {label}, PostgreSQL",
                    value * 1e3,
                    "ms",
                    None,
                    peer="mlflow start_run+log_param+log_input+end_run",
                    peer_measured=None if mlflow_s is None else mlflow_s * 1e3,
                    note="for teams on PostgreSQL (no design target): about a dozen round trips per run",
                )
            )
    return results


def _postgres_overheads(tmp: Path, repeat: int) -> tuple[float, float] | None:
    base = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
    if not base:
        return None
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        same, new, _, _ = _overheads(url, tmp / "pg-home", repeat)
        return same, new
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bench_fingerprint(quick: bool) -> list[Result]:
    rows = 200_000 if quick else 1_000_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame({f"c{i}": rng.normal(size=rows) for i in range(10)})
    nbytes = int(df.memory_usage(index=False).sum())
    ours = median_time(lambda: fingerprint(df), 5 if quick else 10, 2)
    pandas_s = median_time(lambda: pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes(), 3, 1)
    results = [
        Result(
            f"fingerprint {rows:,} x 10 float64 (all cells)",
            throughput(nbytes, ours) / 1e9,
            "GB/s",
            1.5,
            higher_is_better=True,
            peer="pandas.util.hash_pandas_object",
            peer_measured=throughput(nbytes, pandas_s) / 1e9,
        )
    ]
    try:
        import mlflow.data

        mlflow_s = median_time(lambda: mlflow.data.from_pandas(df).digest, 3, 1)
        results.append(
            Result(
                f"fingerprint {rows:,} x 10 vs MLflow digest (MLflow hashes a sample)",
                throughput(nbytes, ours) / 1e9,
                "GB/s",
                1.5,
                higher_is_better=True,
                peer="mlflow.data.from_pandas(df).digest",
                peer_measured=throughput(nbytes, mlflow_s) / 1e9,
            )
        )
    except ImportError:
        results.append(
            Result(
                f"fingerprint {rows:,} x 10 vs MLflow digest",
                throughput(nbytes, ours) / 1e9,
                "GB/s",
                1.5,
                higher_is_better=True,
                peer="mlflow.data.from_pandas(df).digest",
                note="peer not installed (pip install '.[bench]')",
            )
        )
    return results


def build_graph(catalog: Catalog, edges: int, seed: int = 7) -> int:
    """Bulk-insert a DAG: run r reads dataset version r and 2 random earlier ones, and writes r + 1."""
    runs = edges // 4 + 1
    now = datetime(2024, 1, 1, tzinfo=UTC)
    rnd = random.Random(seed)
    with catalog.engine.begin() as conn:
        conn.execute(
            sa.insert(Job),
            [{"id": 1, "namespace": "bench", "name": "job", "kind": "other", "created_at": now}],
        )
        conn.execute(
            sa.insert(Dataset),
            [{"id": 1, "namespace": "bench", "name": "d", "kind": "table", "tags": [], "created_at": now}],
        )
        batch = 50_000
        for lo in range(0, runs + 1, batch):
            hi = min(runs + 1, lo + batch)
            conn.execute(
                sa.insert(DatasetVersion),
                [
                    {
                        "id": i + 1,
                        "dataset_id": 1,
                        "version": i + 1,
                        "content_hash": None,
                        "coverage": "full",
                        "created_at": now,
                    }
                    for i in range(lo, hi)
                ],
            )
        for lo in range(0, runs, batch):
            hi = min(runs, lo + batch)
            conn.execute(
                sa.insert(Run),
                [
                    {
                        "id": r + 1,
                        "run_uuid": str(uuid.UUID(int=r + 1)),
                        "job_id": 1,
                        "status": "COMPLETED",
                        "started_at": now,
                        "params": {},
                        "environment": {},
                    }
                    for r in range(lo, hi)
                ],
            )
            rows = []
            for r in range(lo, hi):
                run_id = r + 1
                sources = {run_id}
                while len(sources) < min(3, run_id):
                    sources.add(rnd.randint(1, run_id))
                rows += [
                    {
                        "run_id": run_id,
                        "artifact_kind": "dataset",
                        "artifact_id": s,
                        "direction": "input",
                        "role": "in",
                        "created_at": now,
                    }
                    for s in sorted(sources)
                ]
                rows.append(
                    {
                        "run_id": run_id,
                        "artifact_kind": "dataset",
                        "artifact_id": run_id + 1,
                        "direction": "output",
                        "role": "output",
                        "created_at": now,
                    }
                )
            conn.execute(sa.insert(RunIO), rows)
    if catalog.backend == "postgresql":  # autovacuum would do it; SQLite catalogs are never ANALYZEd
        with catalog.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return runs


def _query_rows(label: str, catalog: Catalog, runs: int, edges: int, quick: bool) -> list[Result]:
    rnd = random.Random(3)
    targets = [rnd.randint(runs // 2, runs) for _ in range(20 if quick else 60)]
    sources = [rnd.randint(runs // 2, runs) for _ in range(20 if quick else 60)]
    out = []
    for name, fn, ids in (("upstream", upstream, targets), ("downstream", downstream, sources)):
        samples = []
        sizes = []
        with catalog.read() as session:
            fn(session, "dataset", ids[0], depth=3)
            for ident in ids:
                start = time.perf_counter()
                graph = fn(session, "dataset", ident, depth=3)
                samples.append(time.perf_counter() - start)
                sizes.append(len(graph.nodes))
        out.append(
            Result(
                f"lineage {name} depth 3, {edges:,} edges, {label}",
                statistics.median(samples) * 1e3,
                "ms",
                10.0,
                peer="Marquez (reported 10-15 s)",
                peer_measured=12_500.0,
                note=f"median graph {int(statistics.median(sizes))} nodes",
            )
        )
    return out


def bench_queries(quick: bool) -> list[Result]:
    edges = 100_000 if quick else 1_000_000
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        catalog = Catalog(f"sqlite:///{Path(tmpdir) / 'graph.db'}")
        runs = build_graph(catalog, edges)
        results += _query_rows("SQLite", catalog, runs, edges, quick)
        with catalog.engine.begin() as conn:  # `PRAGMA optimize` or a DBA may have run it
            conn.exec_driver_sql("ANALYZE")
        results += _query_rows("SQLite after ANALYZE", catalog, runs, edges, quick)
        catalog.dispose()
    base = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
    if base:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        try:
            catalog = Catalog(url)
            runs = build_graph(catalog, edges)
            results += _query_rows("PostgreSQL", catalog, runs, edges, quick)
            catalog.dispose()
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    else:
        results.append(
            Result(
                "lineage queries, PostgreSQL",
                0.0,
                "ms",
                None,  # not measured: nothing to compare with the target
                note="skipped: GOVERNANCE_TEST_POSTGRES_URL not set",
            )
        )
    return results


def run(quick: bool = False) -> list[Result]:
    return [*bench_step(quick), *bench_fingerprint(quick), *bench_queries(quick)]


def main() -> None:
    for result in run(quick="--quick" in sys.argv):
        print(result.as_dict())


if __name__ == "__main__":
    main()


__all__: list[Any] = ["run"]
