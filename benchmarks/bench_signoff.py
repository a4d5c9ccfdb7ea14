"""Sign-off: the cost of verifying one signed approval, alone and as the gate counts it.

    python -m benchmarks.bench_signoff [--quick]

1. ``verify_statement``: one SSHSIG signature over an approval statement checked against an
   ``allowed_signers`` trust store of 25 people (parse, Ed25519 verify, namespace, validity window,
   principal); the peer is stock ``ssh-keygen -Y verify`` on the same statement and trust store (a
   process per signature, as a shell script or a git hook would do it).
2. ``approvals_status`` per approval: the gate reading N approvals of a version from a SQLite
   catalog and verifying each (statement, signature, trust, evidence/pack/artifact match, people
   counted by key), divided by N.  Target: <= 5 ms per approval.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._common import Result, median_time
from governance.audit import audited
from governance.catalog import Approval, Catalog, Model, ModelVersion
from governance.config import load_settings
from governance.policy import parse_pack
from governance.registry._approvals import approvals_status
from governance.registry._signoff import Signer, Signoff, pack_ref
from governance.signing import NAMESPACE, generate_key, load_trust_store, make_statement, sign_statement
from governance.signing import verify_statement as verify

__all__ = ["run"]

TARGET_MS = 5.0
PEOPLE = 25
PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: bench, version: 1.0.0}
approvals: {required: 1}
checks:
  - {id: perf.accuracy, uses: performance.accuracy, assert: {gte: 0.5}}
"""


def _team(root: Path) -> tuple[list, Path]:
    keys = [generate_key(root / f"k{i}", f"person{i}") for i in range(PEOPLE)]
    signers = root / "allowed_signers"
    signers.write_text("".join(f'person{i} namespaces="{NAMESPACE}" {k.public_key}\n' for i, k in enumerate(keys)))
    return keys, signers


def _gate_cost(root: Path, keys: list, signers: Path, approvals: int) -> float:
    catalog = Catalog(f"sqlite:///{root / 'catalog.db'}")
    pack = parse_pack(PACK)
    trust = load_trust_store(signers)
    signoff = Signoff(load_settings(), trust, datetime.now(UTC))
    with audited(catalog, "bench") as tx:
        model = Model(name="credit")
        tx.session.add(model)
        tx.session.flush()
        mv = ModelVersion(model_id=int(model.id or 0), version=1, artifact_hash="ab" * 32)
        tx.session.add(mv)
        tx.session.flush()
        for i in range(approvals):
            key = keys[1 + i % (PEOPLE - 1)]
            row = Approval(model_version_id=int(mv.id or 0), stage="production", approver=f"person{1 + i % 24}")
            tx.session.add(row)
            tx.session.flush()
            signoff.record(tx, "approval", int(row.id or 0), Signer(f"person{1 + i % (PEOPLE - 1)}", key),
                           subject_name="credit@1", artifact_digest=mv.artifact_hash,
                           predicate={"decision": "approve", "model": "credit", "version": 1,
                                      "stage": "production", "evidence": "sha256:e", "policy": pack_ref(pack)})
        tx.record("bench.setup", "model:credit", {})
    requester = Signer("person0", keys[0])

    def count() -> None:
        with catalog.read() as session:
            version = session.get(ModelVersion, 1)
            assert version is not None
            status = approvals_status(session, version, "production", requester=requester, pack=pack,
                                      evidence_digest="sha256:e", signoff=signoff)
            if not status.satisfied:
                raise RuntimeError(f"benchmark setup: approvals not counted: {status.ignored[:1]}")

    seconds = median_time(count, repeat=5, warmup=1)
    catalog.dispose()
    return seconds / approvals * 1000


def run(quick: bool = False) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys, signers = _team(root)
        trust = load_trust_store(signers)
        statement = make_statement(subject_name="credit@1", artifact_digest="ab" * 32, predicate={
            "action": "approval", "decision": "approve", "model": "credit", "version": 1, "stage": "production",
            "evidence": "sha256:e", "policy": {"name": "bench", "version": "1", "digest": "sha256:p"},
            "principal": "person7", "time": "2026-01-01T00:00:00.000000Z"})
        signature = sign_statement(statement, keys[7])
        text = statement.decode()
        check = verify(text, signature, trust)
        if not check.verified:
            raise RuntimeError(f"benchmark setup: {check.reason}")
        ours = median_time(lambda: verify(text, signature, trust), repeat=50 if quick else 500) * 1000
        keygen = shutil.which("ssh-keygen")
        peer = None
        note = "ssh-keygen not installed: no peer"
        if keygen is not None:
            (root / "statement").write_bytes(statement)
            (root / "statement.sig").write_text(signature)
            command = [keygen, "-Y", "verify", "-f", str(signers), "-I", "person7", "-n", NAMESPACE,
                       "-s", str(root / "statement.sig")]

            def stock() -> None:
                with (root / "statement").open("rb") as stdin:
                    subprocess.run(command, stdin=stdin, capture_output=True, check=True)

            peer = median_time(stock, repeat=5 if quick else 20, warmup=1) * 1000
            note = "peer: ssh-keygen -Y verify, one process per signature"
        results.append(Result("verify one signed approval (25-person trust store)", ours, "ms", TARGET_MS,
                              peer="ssh-keygen -Y verify" if peer is not None else None, peer_measured=peer,
                              note=note))
        approvals = 20 if quick else 200
        started = time.perf_counter()
        per_approval = _gate_cost(root, keys, signers, approvals)
        results.append(Result(f"gate: count {approvals} signed approvals, per approval (SQLite)", per_approval,
                              "ms", TARGET_MS,
                              note=f"setup and timing took {time.perf_counter() - started:.1f} s; no peer "
                                   "(no comparable tool counts signed approvals)"))
    return results


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row.as_dict())
