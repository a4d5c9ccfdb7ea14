"""The governance server (``gov serve``, a real process) driven by real HTTP clients.

    python -m benchmarks.bench_server [--quick]

* start-up: from spawning ``python -m governance.cli serve`` to the first ``200`` from ``/healthz``,
  and from SIGTERM to the process's exit (target: starts in under 2 s);
* ``POST /api/v1/lineage`` from 8 concurrent clients (threads, keep-alive ``http.client``
  connections) on a SQLite file catalog: 100k events (START+COMPLETE pairs with an input and an
  output dataset and a schema facet), posted one event per request (as openlineage-python's
  ``HttpTransport`` sends them) and in batches of 50.  Measured: the rate of ``201`` answers (events
  durable in the lineage inbox) and the end-to-end rate, from the first request until the inbox has
  imported the last event; every ``IngestedEvent`` and ``Run`` row is counted after the server
  stopped (none lost).  Peer: ``gov ingest openlineage`` of the same events from an NDJSON file (the
  same import);
* p95 latency of the model version page and of a depth-3 lineage page (both directions) over a
  catalog with 1M ``run_io`` edges and 100k runs (bulk-inserted: run r reads dataset versions r-8..r
  and writes r+1; the seeded model's training run also reads version 50,000, so its card and its
  lineage page walk the large graph), 1 client, keep-alive, on a SQLite file and (with
  ``GOVERNANCE_TEST_POSTGRES_URL``) on a fresh PostgreSQL database.  Peer: Marquez's lineage calls,
  10-15 s at scale (its issues).  Quick mode: 100k edges, 10k events, fewer requests.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks._common import Result
from governance.catalog import Catalog, Dataset, DatasetVersion, IngestedEvent, Job, Run, RunIO

__all__ = ["run"]

CLIENTS = 8


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "OPENLINEAGE"))}
    env["GOVERNANCE_CATALOG_URL"] = url
    return env


class _Server:
    """``gov serve`` in a child process (its own CPU, as in production)."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.port = _port()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "serve", "--port", str(self.port)],
                                     cwd=cwd, env=_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ready_after = self._wait()

    def _wait(self, path: str = "/healthz") -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gov serve exited: {self.proc.stderr.read() if self.proc.stderr else ''!r}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("gov serve did not answer in 60 s")

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux ``/proc``), a load-independent figure."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def first_page(self) -> float:
        """Seconds from spawning to the first rendered page (after the warm-up imports)."""
        return self._wait("/")

    def stop(self) -> float:
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return time.perf_counter() - start


def _event(i: int, kind: str) -> dict[str, Any]:
    run_id = str(uuid.UUID(int=i + 1))
    fields = [{"name": "id", "type": "BIGINT"}, {"name": "amount", "type": "DECIMAL(18,2)"},
              {"name": "ts", "type": "TIMESTAMP"}]
    def ds(ns: str, name: str) -> dict[str, Any]:
        return {"namespace": ns, "name": name, "facets": {"schema": {
            "_producer": "https://example.test", "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/"
            "SchemaDatasetFacet.json", "fields": fields}}}
    return {
        "eventType": kind, "eventTime": f"2026-05-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"
        + (".000+00:00" if kind == "START" else ".500+00:00"),
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "airflow", "name": f"dag_{i % 50}.task_{i % 7}", "facets": {}},
        "inputs": [ds("postgres://dw:5432", f"public.src_{i % 200}")],
        "outputs": [ds("postgres://dw:5432", f"public.out_{i % 500}")],
    }


def _events(pairs: int) -> list[dict[str, Any]]:
    return [e for i in range(pairs) for e in (_event(i, "START"), _event(i, "COMPLETE"))]


def _post_all(port: int, events: list[dict[str, Any]], per_request: int) -> tuple[float, int]:
    bodies = [json.dumps(events[i] if per_request == 1 else events[i: i + per_request]).encode()
              for i in range(0, len(events), per_request)]
    shares = [bodies[c::CLIENTS] for c in range(CLIENTS)]
    failures: list[int] = []

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in mine:
            conn.request("POST", "/api/v1/lineage", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                failures.append(resp.status)
        conn.close()

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, len(failures)


def _inbox(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/healthz")
    status: dict[str, Any] = json.loads(conn.getresponse().read())["lineage_inbox"]
    conn.close()
    return status


def _drained(port: int, timeout: float = 1800.0) -> dict[str, Any]:
    """Wait until the server's lineage inbox has imported every accepted request."""
    deadline = time.monotonic() + timeout
    while True:
        status = _inbox(port)
        if status["pending_requests"] == 0 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _count(url: str) -> tuple[int, int]:
    catalog = Catalog(url)
    with catalog.read() as session:
        events = session.execute(sa.select(sa.func.count()).select_from(IngestedEvent)).scalar()
        runs = session.execute(sa.select(sa.func.count()).select_from(Run)).scalar()
    catalog.dispose()
    return int(events or 0), int(runs or 0)


def bench_ingest(quick: bool) -> list[Result]:
    """8 clients post every event, then the inbox drains; rows are counted after the server stopped.

    Two rates: *accepted* (every ``201``: the events are durable in the inbox) and *imported* (from the
    first request until the last event is in the catalog, the figure the target is about)."""
    pairs = 5_000 if quick else 50_000  # quick: 10k events, enough to be past the start-up (1k were mostly start-up)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        events = _events(pairs)
        file = base / "events.ndjson"
        file.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
        peer_url = f"sqlite:///{base / 'peer.db'}"
        Catalog(peer_url).dispose()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "governance.cli", "ingest", "openlineage", str(file)], cwd=base,
                       env=_env(peer_url), check=True, capture_output=True)
        peer_rate = len(events) / (time.perf_counter() - start)

        for per_request in (1, 50):
            url = f"sqlite:///{base / f'served-{per_request}.db'}"
            Catalog(url).dispose()
            server = _Server(url, base)
            try:
                cpu_before = server.cpu_seconds()
                started = time.perf_counter()
                accepted_in, failed = _post_all(server.port, events, per_request)
                at_end = _inbox(server.port)
                status = _drained(server.port)
                imported_in = time.perf_counter() - started
                cpu_after = server.cpu_seconds()
            finally:
                server.stop()
            stored, runs = _count(url)
            lost = len(events) - stored
            how = "one event per request (HttpTransport)" if per_request == 1 else "batches of 50 events"
            cpu = (f"; server CPU {1e6 * (cpu_after - cpu_before) / len(events):.0f} us/event"
                   if cpu_before is not None and cpu_after is not None else "")
            results.append(Result(
                f"POST /api/v1/lineage, {CLIENTS} clients, {how}, SQLite: accepted (201, durable)",
                len(events) / accepted_in, "events/s", None, higher_is_better=True,
                peer="gov ingest openlineage FILE (same events, same import)", peer_measured=peer_rate,
                note=f"{len(events):,} events in {accepted_in:.1f} s, {failed} non-201; "
                     f"{at_end['pending_events']:,} waiting for import when the last 201 came"))
            results.append(Result(
                f"POST /api/v1/lineage, {CLIENTS} clients, {how}, SQLite: imported (first POST to last row)",
                len(events) / imported_in, "events/s", 2_000.0, higher_is_better=True,
                peer="gov ingest openlineage FILE (same events, same import)", peer_measured=peer_rate,
                note=f"{len(events):,} events: {stored:,} stored, {lost} lost, {status['refused_events']} refused, "
                     f"{failed} non-201, {runs:,} runs (expected {pairs:,}){cpu}"))
    return results


def build_catalog(catalog: Catalog, runs: int, inputs: int = 9) -> int:
    """Bulk-insert ``runs`` runs, each reading ``inputs`` dataset versions and writing one: ``runs *
    (inputs + 1)`` edges."""
    now = datetime(2024, 1, 1, tzinfo=UTC)
    with catalog.engine.begin() as conn:
        conn.execute(sa.insert(Job), [{"id": 1, "namespace": "bench", "name": "bench.transform", "kind": "feature",
                                       "created_at": now}])
        conn.execute(sa.insert(Dataset), [{"id": 1, "namespace": "bench", "name": "bench.table", "kind": "table",
                                           "tags": [], "created_at": now}])
        batch = 20_000
        for lo in range(0, runs + 1, batch):
            hi = min(runs + 1, lo + batch)
            conn.execute(sa.insert(DatasetVersion), [{
                "id": i + 1, "dataset_id": 1, "version": i + 1, "content_hash": f"{i:064x}", "hash_algo": "blake3",
                "coverage": "full", "row_count": 1000 + i % 97, "created_at": now} for i in range(lo, hi)])
        edges = 0
        for lo in range(0, runs, batch):
            hi = min(runs, lo + batch)
            conn.execute(sa.insert(Run), [{
                "id": r + 1, "run_uuid": str(uuid.UUID(int=r + 1)), "job_id": 1, "status": "COMPLETED",
                "started_at": now, "params": {}, "environment": {}} for r in range(lo, hi)])
            rows = []
            for r in range(lo, hi):
                run_id = r + 1
                for k in range(inputs):
                    rows.append({"run_id": run_id, "artifact_kind": "dataset", "artifact_id": max(1, run_id - k),
                                 "direction": "input", "role": f"in{k}", "created_at": now})
                rows.append({"run_id": run_id, "artifact_kind": "dataset", "artifact_id": run_id + 1,
                             "direction": "output", "role": "output", "created_at": now})
            conn.execute(sa.insert(RunIO), rows)
            edges += len(rows)
    return edges


def _p95(port: int, path: str, count: int) -> tuple[float, float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples = []
    size = 0
    for i in range(count + 3):
        start = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
        if i >= 3:  # warm-up: first requests import the report builders
            samples.append(time.perf_counter() - start)
        size = len(body)
    conn.close()
    samples.sort()
    return samples[int(0.95 * (len(samples) - 1))] * 1e3, statistics.median(samples) * 1e3, size


def _pg_database(base: str) -> tuple[str, str]:
    name = f"govbench_server_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(base: str, name: str) -> None:
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _pages_on(label: str, url: str, workdir: Path, runs: int, requests: int) -> list[Result]:
    from tests._server_support import seed_catalog

    catalog = Catalog(url)
    start = time.perf_counter()
    edges = build_catalog(catalog, runs)
    if catalog.backend == "postgresql":  # ids were given explicitly: move the sequences past them
        with catalog.engine.begin() as conn:
            for table in ("run", "dataset_version", "run_io", "job", "dataset"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))")
    seed_catalog(catalog)
    middle = runs // 2
    with catalog.engine.begin() as conn:
        train = conn.execute(sa.select(Run.id).join(Job, Job.id == Run.job_id).where(Job.name == "train")).scalar()
        conn.execute(sa.insert(RunIO), [{"run_id": train, "artifact_kind": "dataset", "artifact_id": middle,
                                         "direction": "input", "role": "reference",
                                         "created_at": datetime.now(UTC)}])
    if catalog.backend == "postgresql":  # autovacuum would do it in time
        with catalog.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    built = time.perf_counter() - start
    catalog.dispose()
    results: list[Result] = []
    server = _Server(url, workdir)
    try:
        for what, path in (
            ("model version page", "/version?ref=credit-scorer@1"),
            ("lineage page, depth 3 both ways (model)", "/lineage?node=model:credit-scorer@1&depth=3"),
            ("lineage page, depth 3 both ways (dataset mid-graph)", f"/lineage?node=dataset:{middle}&depth=3"),
            ("lineage API, depth 3 both ways (dataset mid-graph)",
             f"/api/v1/lineage?nodeId=dataset:{middle}&depth=3"),
        ):
            p95, median, size = _p95(server.port, path, requests)
            results.append(Result(
                f"{what}, {edges:,} edges / {runs:,} runs, {label}, p95", p95, "ms", 300.0,
                peer="Marquez lineage (reported 10-15 s)", peer_measured=12_500.0,
                note=f"median {median:.0f} ms over {requests} requests, {size // 1024} KiB; catalog built "
                     f"in {built:.0f} s"))
    finally:
        server.stop()
    return results


def bench_pages(quick: bool) -> list[Result]:
    """The same catalog on a SQLite file and, with ``GOVERNANCE_TEST_POSTGRES_URL`` set, on a fresh
    PostgreSQL database (dropped afterwards)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    runs = 10_000 if quick else 100_000
    requests = 30 if quick else 200
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += _pages_on("SQLite", f"sqlite:///{Path(tmp) / 'big.db'}", Path(tmp), runs, requests)
    base = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
    if not base:
        results.append(Result("server pages, PostgreSQL", 0.0, "ms", None,
                              note="skipped: set GOVERNANCE_TEST_POSTGRES_URL to run the PostgreSQL leg"))
        return results
    name, url = _pg_database(base)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results += _pages_on("PostgreSQL", url, Path(tmp), runs, requests)
    finally:
        _drop_pg_database(base, name)
    return results


def bench_startup(quick: bool) -> list[Result]:
    samples = []
    stops = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
        Catalog(url).dispose()
        pages = []
        cpu: list[float] = []
        for _ in range(2 if quick else 5):
            server = _Server(url, Path(tmp))
            samples.append(server.ready_after)
            used = server.cpu_seconds()
            if used is not None:
                cpu.append(used)
            pages.append(server.first_page())
            stops.append(server.stop())
    return [
        Result("gov serve start-up to first answer (/healthz, median)", statistics.median(samples), "s", 2.0,
               note=f"max {max(samples):.2f} s over {len(samples)} starts; CPU used by then "
                    f"{statistics.median(cpu) if cpu else float('nan'):.2f} s (wall time grows with machine load)"),
        Result("gov serve start-up to the first page (inventory, median)", statistics.median(pages), "s", None,
               note="pages wait for the warm-up imports (report builders, registry), about a second"),
        Result("gov serve SIGTERM to exit (median)", statistics.median(stops), "s", None,
               note="graceful: in-flight requests finish, the lineage inbox catches up (the rest waits on disk)"),
    ]


def run(quick: bool = False) -> list[Result]:
    return [*bench_startup(quick), *bench_ingest(quick), *bench_pages(quick)]


def main() -> None:
    for result in run(quick="--quick" in sys.argv):
        print(result.as_dict())


if __name__ == "__main__":
    main()
