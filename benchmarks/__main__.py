"""Run every benchmark side by side with its peer and print measured / peer / ratio / target / met.

    python -m benchmarks            # full run (under 10 minutes on 2 cores)
    python -m benchmarks --quick    # smaller sizes, for a smoke test
    python -m benchmarks --only capture,fairness --output results.json

Speed is checked here, never by timed assertions in tests.  A ratio above 1 means faster than the
peer.  Peers that are heavy to install (MLflow) come from the ``[bench]`` extra; when missing, their
row says so.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks._common import Result

AREAS = ("capture", "openlineage", "ingest", "audit", "fairness", "reports", "startup", "signoff", "mlflow",
         "server", "spark", "spark_lineage")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.001 <= abs(value) < 100_000:
        return f"{value:.4g}"
    return f"{value:.3e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated areas out of {', '.join(AREAS)}")
    parser.add_argument("--output", default="benchmarks/results.json", help="where to write the JSON results")
    args = parser.parse_args(argv)
    areas = [a.strip() for a in args.only.split(",") if a.strip()] or list(AREAS)
    unknown = sorted(set(areas) - set(AREAS))
    if unknown:
        parser.error(f"--only: unknown area {unknown[0]!r}; choose from {', '.join(AREAS)}")

    console = Console(width=None if sys.stdout.isatty() else 200)
    rows: list[tuple[str, Result]] = []
    failures: dict[str, str] = {}
    started = time.perf_counter()
    for area in areas:
        console.print(f"[bold]running {area}[/] ...")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{area}")
            results = module.run(quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken area must not hide the others
            failures[area] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        rows.extend((area, r) for r in results)
        console.print(f"  done in {time.perf_counter() - t0:.1f} s")

    table = Table(title=f"benchmarks ({'quick' if args.quick else 'full'}) on {platform.node()}, "
                        f"{os.cpu_count()} cores, Python {platform.python_version()}")
    for column in ("area", "what", "measured", "unit", "peer", "peer measured", "ratio (x faster)", "target", "met"):
        table.add_column(column)
    for area, r in rows:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[r.met]
        target = "-" if r.target is None else f"{'>=' if r.higher_is_better else '<='} {_fmt(r.target)}"
        table.add_row(area, r.name, _fmt(r.measured), r.unit, r.peer or "-", _fmt(r.peer_measured),
                      _fmt(r.ratio), target, met)
    console.print(table)
    for area, r in rows:
        if r.note:
            console.print(Text(f"{area} / {r.name}: {r.note}", style="dim"))
    for area, reason in failures.items():
        console.print(Text(f"{area} failed: {reason}", style="red"))

    document = {
        "when": datetime.now(UTC).isoformat(), "quick": args.quick, "host": platform.node(),
        "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "seconds": round(time.perf_counter() - started, 1),
        "results": [{"area": area, **r.as_dict()} for area, r in rows], "failures": failures,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {out} ({document['seconds']} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
