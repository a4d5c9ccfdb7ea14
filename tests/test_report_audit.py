"""The audit trail report: order, filters, chain and checkpoint status, summaries, CLI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from governance.audit import audited
from governance.catalog import AuditCheckpoint, AuditEvent, Catalog
from governance.cli import main
from governance.errors import InputError, NotFoundError
from governance.reporting import render_audit_report
from tests.test_report_seed import seed_model


def _events(doc: dict[str, object]) -> list[dict[str, object]]:
    events = doc["events"]
    assert isinstance(events, list)
    return events


def test_audit_json_lists_events_in_order_with_verification(catalog: Catalog) -> None:
    seed_model(catalog, name="credit-scorer")
    seed_model(catalog, name="churn", dataset_name="customers")
    doc = json.loads(render_audit_report(format="json", catalog=catalog))
    events = _events(doc)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and seqs[0] == 1 and len(seqs) == doc["chain_events"]
    assert doc["verification"]["ok"] is True and doc["verification"]["count"] == len(seqs)
    assert doc["checkpoint"] is None
    first = events[0]
    assert {"actor", "action", "subject", "time", "data", "hash"} <= set(first)
    only = json.loads(render_audit_report(model="churn", format="json", catalog=catalog))
    subjects = {e["subject"] for e in _events(only)}
    assert subjects and all("churn" in s for s in subjects)
    assert "model:churn@1" in subjects and "model:credit-scorer@1" not in subjects
    assert only["verification"]["count"] == len(seqs)  # verification always covers the whole chain


def test_since_filter_and_bad_input(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog)
    future = json.loads(render_audit_report(since="2999-01-01", format="json", catalog=sqlite_catalog))
    assert future["events"] == [] and future["filters"]["since"] == "2999-01-01T00:00:00Z"
    past = json.loads(
        render_audit_report(since=datetime(2000, 1, 1, tzinfo=UTC), format="json", catalog=sqlite_catalog)
    )
    assert len(past["events"]) == past["chain_events"]
    with pytest.raises(InputError, match="--since: expected an ISO-8601 date"):
        render_audit_report(since="last tuesday", format="json", catalog=sqlite_catalog)
    with pytest.raises(NotFoundError, match="unknown model 'ghost'"):
        render_audit_report(model="ghost", format="json", catalog=sqlite_catalog)
    with pytest.raises(InputError, match="--format"):
        render_audit_report(format="md", catalog=sqlite_catalog)


def test_tampered_chain_and_checkpoints_show_in_the_report(sqlite_catalog: Catalog) -> None:
    seed_model(sqlite_catalog)
    with sqlite_catalog.read() as session:
        head = session.get(AuditEvent, 3)
        assert head is not None
        good_hash = head.hash
    with audited(sqlite_catalog, "ops") as tx:
        tx.session.add(
            AuditCheckpoint(seq=3, hash=good_hash, algorithm="ed25519", key_id="k1", signature="sig")
        )
        tx.record("audit.checkpoint", "audit:3", {"seq": 3})
    html = render_audit_report(format="html", catalog=sqlite_catalog)
    assert "intact" in html and "the log extends the checkpoint at seq 3" in html
    with sqlite_catalog.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2"))
    html = render_audit_report(format="html", catalog=sqlite_catalog)
    assert "broken at seq 2" in html
    assert "the chain breaks at seq 2, inside the checkpointed range" in html
    doc = json.loads(render_audit_report(format="json", catalog=sqlite_catalog))
    assert doc["verification"]["ok"] is False and doc["verification"]["first_bad_seq"] == 2
    assert doc["checkpoint"]["state"] == "bad"


def test_an_exported_checkpoint_is_verified_with_its_signature(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    from governance.audit import create_checkpoint, generate_keypair, load_private_key

    seed_model(sqlite_catalog)
    private, public = generate_keypair(tmp_path / "keys")
    cp_file = tmp_path / "head.checkpoint.json"
    signed = create_checkpoint(sqlite_catalog, load_private_key(private), cp_file, actor="ops")
    doc = json.loads(render_audit_report(format="json", catalog=sqlite_catalog, checkpoint=cp_file, pubkey=public))
    cp = doc["checkpoint"]
    assert (cp["state"], cp["source"], cp["seq"], cp["key_id"]) == ("ok", "file", signed.seq, signed.key_id)
    assert cp["signature"].startswith("verified with the public key given")
    html = render_audit_report(format="html", catalog=sqlite_catalog, checkpoint=cp_file, pubkey=public)
    assert "Exported checkpoint" in html and "verified with the public key given" in html
    # without the file and key: the catalog's copy, checked against the log, signature not checked
    plain = json.loads(render_audit_report(format="json", catalog=sqlite_catalog))["checkpoint"]
    assert plain["source"] == "catalog" and plain["signature"].startswith("not checked")

    # an altered checkpoint file (the signed head moved) no longer matches its signature
    forged = json.loads(cp_file.read_text())
    forged["seq"] = signed.seq - 1
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    bad = json.loads(render_audit_report(format="json", catalog=sqlite_catalog, checkpoint=forged_file,
                                         pubkey=public))["checkpoint"]
    assert bad["state"] == "bad" and bad["signature"].startswith("does NOT match")

    # a log rolled back past the signed head (a restored older backup): signature fine, log not
    with sqlite_catalog.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE seq >= :s"), {"s": signed.seq})
    rolled = json.loads(render_audit_report(format="json", catalog=sqlite_catalog, checkpoint=cp_file,
                                            pubkey=public))["checkpoint"]
    assert rolled["state"] == "bad" and rolled["signature"].startswith("verified")
    assert "truncated or restored from an older backup" in rolled["detail"]
    out = tmp_path / "audit.html"
    assert main(["--catalog", sqlite_catalog.url, "report", "audit", "-o", str(out), "--checkpoint", str(cp_file),
                 "--pubkey", str(public)]) == 0
    assert "truncated or restored from an older backup" in out.read_text()


def test_long_logs_are_summarised_in_the_pdf_and_complete_in_json(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    seed_model(sqlite_catalog)
    with audited(sqlite_catalog, "bulk") as tx:
        for i in range(40):
            tx.record("run.start", f"run:r{i}", {"i": i})
    total = json.loads(render_audit_report(format="json", catalog=sqlite_catalog))["chain_events"]
    out = tmp_path / "audit.pdf"
    pdf = render_audit_report(format="pdf", catalog=sqlite_catalog, output=out, max_events=10)
    assert isinstance(pdf, bytes) and out.read_bytes() == pdf
    from pypdf import PdfReader

    text = " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    assert f"{total} events match; the 10 most recent are listed in full" in text
    assert "Summary of the older events" in text and "run.start" in text and "Chain verification" in text
    assert "run:r39" in text and "run:r0 " not in text
    assert render_audit_report(format="pdf", catalog=sqlite_catalog, max_events=10) == pdf


def test_cli_audit(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{gov_env / 'cat.db'}"
    catalog = Catalog(url)
    seed_model(catalog)
    catalog.dispose()
    out = gov_env / "audit.json"
    assert (
        main(
            [
                "--catalog",
                url,
                "report",
                "audit",
                "--model",
                "credit-scorer",
                "--since",
                "2000-01-01",
                "--format",
                "json",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["filters"]["model"] == "credit-scorer"
    assert (
        main(
            ["--catalog", url, "report", "audit", "--since", "soon", "--format", "json", "--output", str(out)]
        )
        == 2
    )
    assert "--since: expected an ISO-8601" in capsys.readouterr().err
    assert main(["--catalog", url, "report", "audit", "--format", "md", "--output", str(out)]) == 2
