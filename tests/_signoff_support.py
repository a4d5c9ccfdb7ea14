"""A team for sign-off tests: keys, an allowed_signers trust store, governance.toml, a model version
with evidence computed from its own artifact, and packs."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlmodel import select

from governance.catalog import Catalog, Model, ModelVersion, open_catalog
from governance.config import load_settings
from governance.signing import NAMESPACE, SigningKey, generate_key

CI_VARS = ("GITHUB_ACTIONS", "GITHUB_ACTOR", "GITLAB_CI", "GITLAB_USER_LOGIN", "BUILDKITE",
           "BUILDKITE_BUILD_CREATOR", "CIRCLECI", "CIRCLE_USERNAME")

CARD = {"description": "scores credit", "intended_use": "loan triage", "limitations": "synthetic",
        "ethical_considerations": "reviewed"}

RELEASE_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: release, version: 1.2.0}
approvals: {required: 2, roles: [model-risk, compliance]}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.5}
    severity: block
"""

STRICT_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: strict, version: 1.0.0}
checks:
  - id: perf.accuracy
    uses: performance.accuracy
    assert: {gte: 0.99}
    severity: block
"""


def ssh_keygen() -> str:
    """The real ssh-keygen, or a skip (a failure under GOVERNANCE_REQUIRE_SSH_KEYGEN=1)."""
    path = shutil.which("ssh-keygen")
    if path is None:
        if os.environ.get("GOVERNANCE_REQUIRE_SSH_KEYGEN") == "1":
            pytest.fail("ssh-keygen is required (GOVERNANCE_REQUIRE_SSH_KEYGEN=1) but not installed")
        pytest.skip("ssh-keygen not installed (apt-get install openssh-client)")
    return path


def keygen_key(directory: Path, name: str) -> Path:
    """A key pair made by the real ssh-keygen."""
    path = directory / f"{name}_ed25519"
    subprocess.run([ssh_keygen(), "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(0, 1, n)
    y = (x1 + 0.5 * x2 + rng.normal(0, 0.5, n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "sex": sex, "y": y})


@dataclass
class Team:
    root: Path
    catalog: Catalog
    keys: dict[str, SigningKey] = field(default_factory=dict)
    key_files: dict[str, Path] = field(default_factory=dict)
    model: object = None

    @property
    def allowed_signers(self) -> Path:
        return self.root / "allowed_signers"

    def trust(self, *names: str, options: str = f'namespaces="{NAMESPACE}"') -> None:
        """Write the trust store: each name with its key (and ``options``)."""
        lines = [f"{n} {options} {self.keys[n].public_key}" for n in names]
        self.allowed_signers.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def pack(self, name: str, text: str) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path


def make_team(root: Path, monkeypatch: pytest.MonkeyPatch, *, stages: str = "") -> Team:
    """alice (data scientist), bob (model-risk), carol (compliance) trusted; mallory has a key only."""
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)
    (root / "governance.toml").write_text(
        '[governance]\nallowed_signers = "allowed_signers"\n'
        '[governance.roles]\nmodel-risk = ["bob"]\ncompliance = ["carol"]\n' + stages, encoding="utf-8")
    team = Team(root, open_catalog(load_settings()))
    for name in ("alice", "bob", "carol", "mallory"):
        team.key_files[name] = root / "keys" / name
        team.keys[name] = generate_key(team.key_files[name], name)
    team.trust("alice", "bob", "carol")
    return team


def add_model_version(team: Team, *, seed: int = 0) -> object:
    """credit@N whose artifact digest is the fitted model's, with evidence from that model."""
    import governance as gov
    from governance.audit import audited
    from governance.lineage import artifact_digest

    frame = data(seed=seed)
    model = LogisticRegression(max_iter=200, C=1.0 + seed).fit(frame[["x1", "x2"]], frame["y"])
    with audited(team.catalog, "setup") as tx:
        found = tx.session.exec(select(Model).where(Model.name == "credit")).first()
        if found is None:
            found = Model(name="credit", risk_tier="high")
            tx.session.add(found)
            tx.session.flush()
        count = len(tx.session.exec(select(ModelVersion)
                                    .where(ModelVersion.model_id == found.id)).all())
        tx.session.add(ModelVersion(model_id=int(found.id or 0), version=count + 1,
                                    artifact_hash=artifact_digest(model), hash_algo="blake3", card=CARD))
        tx.record("test.setup", "model:credit", {})
    gov.evaluate(model, frame, label="y", sensitive=["sex"], model_ref=f"credit@{count + 1}",
                 features=["x1", "x2"], catalog=team.catalog, actor="alice")
    team.model = model
    return model
