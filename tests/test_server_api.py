"""The server's JSON API on a real uvicorn socket, over a SQLite file and PostgreSQL: the read API,
and POST /api/v1/lineage fed by the real openlineage-python client."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from governance.catalog import AuditEvent, Catalog, Dataset, IngestedEvent, Run, RunIO
from governance.server import ServerConfig, Token, hash_token
from tests._server_support import Live, live_server, run_event, seed_catalog

WRITE = "gov_write_" + "w" * 20
READ = "gov_read_" + "r" * 20
CONFIG = ServerConfig(tokens=(Token("airflow", hash_token(WRITE), frozenset({"write"})),
                              Token("auditor", hash_token(READ), frozenset({"read"}))), max_body_bytes=64 * 1024)


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Catalog, Live]]:
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    catalog = Catalog(url)
    seed_catalog(catalog)
    with live_server(catalog, CONFIG) as live:
        yield catalog, live
    catalog.dispose()


def _get(live: Live, path: str) -> dict:
    reply = live.get(path, Authorization=f"Bearer {READ}")
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def test_read_api_shows_what_the_catalog_holds(served: tuple[Catalog, Live]) -> None:
    _, live = served
    models = _get(live, "/api/v1/models")
    assert models["total"] == 1
    [model] = models["items"]
    assert (model["name"], model["owner"], model["risk_tier"]) == ("credit-scorer", "risk-analytics", "high")
    assert [(s["stage"], s["version"], s["gate"]["status"]) for s in model["stages"]] == [("production", 1, "PASS")]

    detail = _get(live, "/api/v1/models/detail?ref=credit-scorer")
    assert [v["version"] for v in detail["versions"]["items"]] == [1]
    assert detail["aliases"][0]["alias"] == "production"
    assert [h["action"] for h in detail["history"]] == ["promote"]
    assert detail["waivers"][0]["check"] == "drift.income_psi"

    version = _get(live, "/api/v1/models/version?ref=credit-scorer@production")
    assert version["version"]["label"] == "credit-scorer@1"
    assert version["policies"][0]["name"] == "production"
    fairness = next(c for c in version["policies"][0]["checks"] if c["id"] == "fairness.selection_rate_ratio")
    assert {g["group"] for g in fairness["groups"]} >= {"sex=F", "sex=M"}

    evals = _get(live, "/api/v1/models/evaluations?ref=credit-scorer@1")
    assert evals["total"] == 1
    by_group = next(c for c in evals["items"][0]["checks"] if c["id"] == "fairness.selection_rate_ratio")["by_group"]
    assert by_group["sex=F"]["selection_rate"] == pytest.approx(0.4137)

    approvals = _get(live, "/api/v1/models/approvals?ref=credit-scorer@1")
    assert [a["approver"] for a in approvals["items"]] == ["model-risk-officer"]
    assert _get(live, "/api/v1/models/aliases?ref=credit-scorer")["items"][0]["version"] == 1
    assert _get(live, "/api/v1/models/waivers?ref=credit-scorer")["total"] == 1
    assert _get(live, "/api/v1/models/history?ref=credit-scorer")["items"][0]["stage"] == "production"

    found = _get(live, "/api/v1/search?q=credit")
    assert [m["name"] for m in found["models"]] == ["credit-scorer"]
    datasets = _get(live, "/api/v1/datasets?q=applications")
    assert datasets["items"][0]["name"] == "applications"
    dv = _get(live, f"/api/v1/datasets/version?id={datasets['items'][0]['latest_version_id']}")
    assert {f["name"] for f in dv["fields"]} >= {"income", "sex"}

    audit = _get(live, "/api/v1/audit?limit=5")
    assert audit["limit"] == 5 and audit["total"] > 5 and len(audit["items"]) == 5
    seqs = [e["seq"] for e in audit["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert _get(live, "/api/v1/audit/verification")["verification"]["ok"] is True


def test_lineage_graph_has_marquez_shape_depth_and_as_of(served: tuple[Catalog, Live]) -> None:
    _, live = served
    graph = _get(live, "/api/v1/lineage?nodeId=model:credit-scorer@1&depth=3&direction=upstream")
    ids = {node["id"] for node in graph["graph"]}
    assert graph["root"] in ids and graph["root"].startswith("model:")
    kinds = {node["type"] for node in graph["graph"]}
    assert kinds == {"MODEL", "RUN", "DATASET"}
    for node in graph["graph"]:
        for edge in node["inEdges"]:
            assert edge["destination"] == node["id"] and edge["origin"] in ids
    shallow = _get(live, "/api/v1/lineage?nodeId=model:credit-scorer@1&depth=1&direction=upstream")
    assert len(shallow["graph"]) < len(graph["graph"])
    before = _get(live, "/api/v1/lineage?nodeId=model:credit-scorer@1&asOf=2000-01-01T00:00:00Z")
    assert [n["id"] for n in before["graph"]] == [graph["root"]]
    bad = live.get("/api/v1/lineage?nodeId=model:credit-scorer@1&depth=99", Authorization=f"Bearer {READ}")
    assert bad.status == 400 and "depth" in bad.json()["error"]
    missing = live.get("/api/v1/lineage?nodeId=model:nope@1", Authorization=f"Bearer {READ}")
    assert missing.status == 404 and "nope" in missing.json()["error"]


def test_pagination_and_bad_parameters(served: tuple[Catalog, Live]) -> None:
    _, live = served
    first = _get(live, "/api/v1/audit?limit=3")
    second = _get(live, "/api/v1/audit?limit=3&offset=3")
    assert first["next_offset"] == 3
    assert {e["seq"] for e in first["items"]}.isdisjoint(e["seq"] for e in second["items"])
    for query, word in (("limit=0", "limit"), ("limit=x", "limit"), ("offset=-1", "offset"),
                        ("since=yesterday", "since")):
        reply = live.get(f"/api/v1/audit?{query}", Authorization=f"Bearer {READ}")
        assert reply.status == 400 and word in reply.json()["error"]
    assert live.get("/api/v1/models/detail", Authorization=f"Bearer {READ}").json()["error"] == \
        "ref: required query parameter"


def test_real_openlineage_client_posts_into_the_catalog(served: tuple[Catalog, Live]) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Dataset as OLDataset
    from openlineage.client.event_v2 import Job, RunEvent, RunState
    from openlineage.client.event_v2 import Run as OLRun
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

    catalog, live = served
    events = []
    for compression in (None, "gzip"):
        config = HttpConfig.from_dict({"url": live.base, "compression": compression,
                                       "auth": {"type": "api_key", "apiKey": WRITE}})
        assert isinstance(config.auth, ApiKeyTokenProvider)
        client = OpenLineageClient(transport=HttpTransport(config))
        run_id = str(uuid.uuid4())
        for state in (RunState.START, RunState.COMPLETE):
            event = RunEvent(eventType=state, eventTime=f"2026-05-01T10:0{len(events)}:00+00:00",
                             run=OLRun(runId=run_id), job=Job(namespace="airflow", name=f"load_{compression}"),
                             producer="https://github.com/OpenLineage/OpenLineage/tree/1.0/client/python",
                             inputs=[OLDataset(namespace="s3://raw", name="orders.csv")],
                             outputs=[OLDataset(namespace="postgres://dw:5432", name=f"public.orders_{compression}")])
            client.emit(event)
            events.append((run_id, state))
        client.transport.close()

    assert live.imported()["refused_events"] == 0
    with catalog.read() as session:
        runs = session.execute(sa.select(Run.run_uuid, Run.status).where(Run.producer.is_not(None))).all()
        assert sorted(tuple(r) for r in runs) == sorted({(r, "COMPLETED") for r, _ in events})
        names = set(session.execute(sa.select(Dataset.name)).scalars())
        assert {"orders.csv", "public.orders_None", "public.orders_gzip"} <= names
        ingests = session.execute(sa.select(AuditEvent.actor).where(AuditEvent.action == "openlineage.ingest"))
        actors = list(ingests.scalars())  # one audit event per event, or per batch: the import decides
        assert actors and set(actors) == {"token:airflow"}


def test_lineage_post_answers_like_marquez(served: tuple[Catalog, Live]) -> None:
    catalog, live = served
    run_id = str(uuid.uuid4())
    good = run_event(run_id, inputs=["public.orders"], outputs=["public.daily"])
    first = live.post_json("/api/v1/lineage", good, WRITE)
    assert first.status == 201 and first.body == b""
    assert first.headers["location"] == f"/api/v1/lineage/inbox?receipt={first.headers['x-lineage-receipt']}"
    assert live.post_json("/api/v1/lineage", good, WRITE).status == 201  # idempotent

    bad = run_event(str(uuid.uuid4()))
    bad["run"]["runId"] = ""
    reply = live.post_json("/api/v1/lineage", bad, WRITE)
    assert reply.status == 400
    [problem] = reply.json()["errors"]
    assert problem["path"] == "$.run.runId" and problem["message"].startswith("expected")

    other = str(uuid.uuid4())
    batch = [run_event(other, "START"), run_event(other, "COMPLETE", time_="not a time"), "x"]
    reply = live.post_json("/api/v1/lineage", batch, WRITE)
    assert reply.status == 400 and [e["path"] for e in reply.json()["errors"]] == ["$[1].eventTime", "$[2]"]
    reply = live.post_json("/api/v1/lineage", batch[:2], WRITE)
    assert reply.status == 400  # the valid event of the batch is accepted all the same, under a receipt
    assert reply.json()["errors"][0]["path"] == "$[1].eventTime" and reply.json()["accepted"] == 1
    partly = reply.json()["receipt"]

    reply = live.request("POST", "/api/v1/lineage", b"{not json", {"Authorization": f"Bearer {WRITE}"})
    assert reply.status == 400 and reply.json()["errors"][0]["path"] == "$"
    big = json.dumps(run_event(str(uuid.uuid4()), job="x" * 70_000)).encode()
    reply = live.request("POST", "/api/v1/lineage", big, {"Authorization": f"Bearer {WRITE}"})
    assert reply.status == 413
    bomb = gzip.compress(b"[" + b" " * 200_000 + b"]")
    reply = live.request("POST", "/api/v1/lineage", bomb,
                         {"Authorization": f"Bearer {WRITE}", "Content-Encoding": "gzip"})
    assert reply.status == 413

    assert live.post_json("/api/v1/lineage", good).status == 401
    assert live.post_json("/api/v1/lineage", good, READ).status == 403
    assert live.post_json("/api/v1/lineage", good, "gov_wrong").status == 401
    assert live.imported()["refused_events"] == 0
    assert _get(live, first.headers["location"])["state"] == "imported"
    assert _get(live, f"/api/v1/lineage/inbox?receipt={partly}") == {"receipt": partly, "state": "imported",
                                                                      "refused": []}
    with catalog.read() as session:
        count = session.execute(sa.select(sa.func.count()).select_from(RunIO).join(Run, Run.id == RunIO.run_id)
                                .where(Run.run_uuid == run_id)).scalar()
        assert count == 2
        other_run = session.execute(sa.select(Run.status).where(Run.run_uuid == other)).scalar()
        assert other_run == "RUNNING"


def test_read_scope_is_needed_and_openapi_lists_every_endpoint(served: tuple[Catalog, Live]) -> None:
    from governance.server._api import READ_ENDPOINTS

    _, live = served
    assert live.get("/api/v1/models").status == 401
    assert live.get("/api/v1/models", Authorization=f"Bearer {WRITE}").status == 403
    doc = live.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {path for path, _ in READ_ENDPOINTS} <= set(doc["paths"])
    assert "post" in doc["paths"]["/api/v1/lineage"]


def test_concurrent_clients_lose_nothing(served: tuple[Catalog, Live]) -> None:
    """8 clients post at once (single events and batches): every event is stored once, audited once."""
    import threading

    catalog, live = served
    runs = [str(uuid.uuid4()) for _ in range(40)]
    failures: list[int] = []

    def client(mine: list[str], batch: bool) -> None:
        for run_id in mine:
            pair = [run_event(run_id, "START", outputs=[f"public.t_{run_id[:4]}"]),
                    run_event(run_id, "COMPLETE", time_="2026-05-01T10:05:00+00:00")]
            replies = [live.post_json("/api/v1/lineage", pair, WRITE)] if batch else \
                [live.post_json("/api/v1/lineage", event, WRITE) for event in pair]
            failures.extend(r.status for r in replies if r.status != 201)

    threads = [threading.Thread(target=client, args=(runs[i::8], i % 2 == 0)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    status = live.imported()
    assert status["refused_events"] == 0 and status["pending_events"] == 0
    with catalog.read() as session:
        stored = session.execute(sa.select(Run.run_uuid, Run.status).where(Run.run_uuid.in_(runs))).all()
        assert sorted(tuple(r) for r in stored) == sorted((r, "COMPLETED") for r in runs)
        events = session.execute(sa.select(sa.func.count()).select_from(IngestedEvent)
                                 .where(IngestedEvent.run_uuid.in_(runs))).scalar()
        assert events == 80
