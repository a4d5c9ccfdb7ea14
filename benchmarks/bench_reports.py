"""Report rendering: model card HTML and PDF; audit trail PDF for 1,000 and 10,000 events.

The audit PDF lists the most recent 500 events in full and summarises the older ones; the peer row
is the naive listing of every event as a table row (WeasyPrint lays out each row), measured on
1,000 events.  Run: ``python -m benchmarks.bench_reports [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import Result, median_time
from governance.audit import audited
from governance.catalog import Catalog
from governance.reporting import render_audit_report, render_model_card

__all__ = ["run"]


def _seed_events(catalog: Catalog, count: int) -> None:
    done = 0
    while done < count:
        batch = min(2_000, count - done)
        with audited(catalog, "bench") as tx:
            for i in range(done, done + batch):
                tx.record(
                    ["run.start", "run.complete", "dataset_version.create"][i % 3], f"run:r{i}", {"i": i}
                )
        done += batch


def _once(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def run(quick: bool = False) -> list[Result]:
    from tests.test_report_seed import seed_model

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        seed_model(catalog)
        repeat = 3 if quick else 5
        html = median_time(
            lambda: render_model_card("credit-scorer@1", format="html", catalog=catalog),
            repeat=repeat,
            warmup=1,
        )
        results.append(Result("model card HTML", html, "s", note="lineage, 3 charts, 16 sections"))
        pdf = median_time(
            lambda: render_model_card("credit-scorer@1", format="pdf", catalog=catalog),
            repeat=repeat,
            warmup=1,
        )
        results.append(Result("model card PDF", pdf, "s", target=2.0, note="WeasyPrint, ~9 A4 pages"))

        sizes = (1_000,) if quick else (1_000, 10_000)
        seeded = 0
        for size in sizes:
            _seed_events(catalog, size - seeded)
            seeded = size
            measured = _once(lambda: render_audit_report(format="pdf", catalog=catalog))
            peer = None
            if size == 1_000:
                peer = _once(
                    lambda: render_audit_report(format="pdf", catalog=catalog, max_events=None or 10**9)
                )
            results.append(
                Result(
                    f"audit PDF, {size:,} events",
                    measured,
                    "s",
                    target=30.0,
                    peer="every event as a table row" if peer is not None else None,
                    peer_measured=peer,
                    note="latest 500 in full, older summarised",
                )
            )
            as_json = _once(lambda: render_audit_report(format="json", catalog=catalog))
            results.append(Result(f"audit JSON, {size:,} events", as_json, "s", note="every event"))
        catalog.dispose()
    return results


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row.as_dict())
