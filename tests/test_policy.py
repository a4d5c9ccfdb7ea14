"""Policy packs: loading errors (file, line, field), digests, engine statuses, waivers, plugins."""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.checks import CheckContext, CheckRegistry, Measurement, builtin_checks
from governance.errors import InputError, NotFoundError
from governance.policy import (
    Status,
    WaiverInfo,
    context_for_frame,
    context_for_predictions,
    list_packs,
    load_pack,
    parse_pack,
    run_pack,
)

HEAD = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: test, version: "1.0"}
checks:
"""


@pytest.fixture(scope="module")
def registry() -> CheckRegistry:
    return CheckRegistry(builtin_checks())


def _pack(body: str, registry: CheckRegistry, source: str = "p.yaml"):
    return parse_pack(HEAD + textwrap.dedent(body), source, registry=registry)


def _error(text: str, registry: CheckRegistry) -> str:
    with pytest.raises(InputError) as info:
        parse_pack(text, "policies/p.yaml", registry=registry)
    return str(info.value)


def test_shipped_packs_load_and_map_every_check(registry: CheckRegistry) -> None:
    assert {"baseline", "high-risk"} <= set(list_packs())
    for name in ("baseline", "high-risk"):
        pack = load_pack(name, registry=registry)
        assert pack.digest.startswith("sha256:") and len(pack.digest) == 71
        assert all(spec.maps_to for spec in pack.checks), name
    assert load_pack("high-risk", registry=registry).approvals is not None


def test_unknown_pack_name_lists_shipped_packs() -> None:
    with pytest.raises(NotFoundError, match=r"shipped packs: .*baseline"):
        load_pack("nope")


def test_digest_ignores_layout_and_comments_but_not_content(registry: CheckRegistry) -> None:
    body = "  - {id: a, uses: performance.accuracy, assert: {gte: 0.7}}\n"
    a = parse_pack(HEAD + body, registry=registry)
    b = parse_pack(
        "# comment\n" + HEAD + "  - id: a\n    uses: performance.accuracy\n    assert:\n      gte: 0.7\n",
        registry=registry,
    )
    c = parse_pack(HEAD + body.replace("0.7", "0.71"), registry=registry)
    assert a.digest == b.digest != c.digest


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  - {id: a, uses: fairness.nope, assert: {gte: 1}}\n",
            "policies/p.yaml line 5: checks[0].uses: unknown check 'fairness.nope'; known checks: ",
        ),
        (
            "  - id: a\n    uses: fairness.demographic_parity_ratio\n    with:\n      minGroupSiz: 3\n",
            "policies/p.yaml line 8: checks[0].with.minGroupSiz: unknown parameter for "
            "fairness.demographic_parity_ratio",
        ),
        (
            "  - id: a\n    uses: fairness.demographic_parity_ratio\n    with:\n      minGroupSize: lots\n",
            "policies/p.yaml line 8: checks[0].with.minGroupSize: expected a valid integer",
        ),
        (
            "  - {id: a, uses: performance.accuracy}\n  - {id: a, uses: performance.f1}\n",
            "policies/p.yaml line 6: checks[1].id: duplicate check id 'a' (first at checks[0])",
        ),
        (
            "  - id: a\n    uses: performance.accuracy\n    assert: {gte: 1, lte: 2}\n",
            "policies/p.yaml line 7: checks[0].assert: needs exactly one of gte, lte, gt, lt, eq, between; "
            "got gte, lte",
        ),
        (
            "  - id: a\n    uses: performance.accuracy\n    assert: {gte: high}\n",
            "policies/p.yaml line 7: checks[0].assert.gte: expected a valid number",
        ),
        (
            "  - id: a\n    uses: performance.accuracy\n    severity: fatal\n",
            "policies/p.yaml line 7: checks[0].severity: expected 'block' or 'warn'",
        ),
        (
            "  - id: a\n    uses: performance.accuracy\n    colour: red\n",
            "policies/p.yaml line 7: checks[0].colour: unknown field",
        ),
    ],
)
def test_errors_name_file_line_and_field(body: str, expected: str, registry: CheckRegistry) -> None:
    assert _error(HEAD + body, registry).startswith(expected)


def test_empty_and_malformed_packs(registry: CheckRegistry) -> None:
    assert "the policy pack is empty" in _error("", registry)
    assert _error(HEAD, registry) == (
        "policies/p.yaml line 4: checks: the pack has no checks; expected a list with at least one check"
    )
    msg = _error(HEAD.replace("PolicyPack", "Pack") + "  - {id: a, uses: performance.f1}\n", registry)
    assert msg == "policies/p.yaml line 2: kind: expected 'PolicyPack'; got 'Pack'"
    msg = _error("apiVersion: governance/v1\nkind: PolicyPack\nmetadata: {name: x, version: 1}\n", registry)
    assert msg == "policies/p.yaml line 1: checks: required field is missing"
    msg = _error(
        "apiVersion: governance/v2\nkind: PolicyPack\nmetadata: {name: x, version: 1}\nchecks: []\n", registry
    )
    assert "line 4: checks: the pack has no checks" in msg
    msg = _error(
        HEAD.replace("governance/v1", "governance/v9") + "  - {id: a, uses: performance.f1}\n", registry
    )
    assert msg.startswith("policies/p.yaml line 1: apiVersion: expected 'governance/v1'")


def test_yaml_syntax_error_names_the_line(registry: CheckRegistry) -> None:
    msg = _error(HEAD + "  - id: a\n    uses: [performance.f1\n", registry)
    assert msg == (
        "policies/p.yaml line 7, column 1: checks[0].uses: YAML syntax error: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence at line 6, column 11)"
    )
    msg = _error(HEAD + "  - {id: a, uses: performance.f1}\n  - id: b\n    with:\n      sensitive: [sex\n"
                 "    assert: {gte: 1}\n", registry)
    assert msg.startswith("policies/p.yaml line 9, column 11: checks[1].with.sensitive: YAML syntax error: ")


def test_python_tags_are_refused(registry: CheckRegistry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = HEAD + f"  - id: !!python/object/apply:os.system ['touch {marker}']\n    uses: performance.f1\n"
    msg = _error(text, registry)
    assert msg.startswith("policies/p.yaml line 5: checks[0].id: the tag !!python/object/apply:os.system ")
    assert "no !!python tags" in msg
    assert not marker.exists()


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "y": y,
            "p": np.where(rng.random(n) < 0.85, y, 1 - y),
            "s": rng.random(n),
            "sex": rng.choice(["F", "M"], n),
        }
    )


def _ctx() -> CheckContext:
    return context_for_frame(_frame(), label="y", prediction="p", score="s", sensitive=["sex"])


def test_assertions_severities_and_overall_status(registry: CheckRegistry) -> None:
    pack = _pack(
        """
      - {id: acc, uses: performance.accuracy, assert: {gte: 0.8}, maps_to: ["SR-11-7:outcomes-analysis"]}
      - {id: acc_hi, uses: performance.accuracy, assert: {gte: 0.99}, severity: warn}
      - {id: f1, uses: performance.f1, assert: {between: [0.5, 1.0]}}
    """,
        registry,
    )
    result = run_pack(pack, _ctx(), registry=registry)
    statuses = {r.id: r.status for r in result.results}
    assert statuses == {"acc": Status.PASS, "acc_hi": Status.WARN, "f1": Status.PASS}
    assert result.status is Status.WARN and result.exit_code == 0
    doc = result.to_document()
    assert set(doc) == {"policy", "subject", "status", "results"}
    assert doc["policy"] == {"name": "test", "version": "1.0", "digest": pack.digest}
    first = doc["results"][0]
    assert set(first) == {
        "id",
        "uses",
        "status",
        "severity",
        "required",
        "value",
        "assert",
        "by_group",
        "message",
        "maps_to",
        "waiver",
        "ci",
    }
    assert first["assert"] == {"gte": 0.8} and first["maps_to"] == ["SR-11-7:outcomes-analysis"]
    blocked = run_pack(
        _pack("  - {id: acc, uses: performance.accuracy, assert: {gte: 0.95}}\n", registry),
        _ctx(),
        registry=registry,
    )
    assert blocked.status is Status.FAIL and blocked.exit_code == 1
    assert blocked.results[0].message.endswith("is not >= 0.95")


def test_gate_fails_closed_on_missing_inputs_and_errors(registry: CheckRegistry) -> None:
    pack = _pack(
        """
      - {id: acc, uses: performance.accuracy, assert: {gte: 0.5}}
      - {id: lineage, uses: lineage.completeness, assert: {eq: true}}
    """,
        registry,
    )
    result = run_pack(pack, _ctx(), registry=registry)
    lineage = result.results[1]
    # a predictions table can never have a registered version's lineage: not applicable, not a pass
    assert lineage.status is Status.NOT_APPLICABLE
    assert lineage.message == ("not applicable: a predictions table has no catalog record (lineage, "
                               "documentation, champion); a predictions table is not a registered model version")
    assert result.status is Status.PASS and result.exit_code == 0
    # an input the table could have had but lacks (no score column given) fails closed
    unscored = context_for_frame(_frame(), label="y", prediction="p", sensitive=["sex"])
    auc = _pack("  - {id: auc, uses: performance.roc_auc, assert: {gte: 0.5}}\n", registry)
    missing = run_pack(auc, unscored, registry=registry)
    assert missing.results[0].status is Status.NOT_RUN
    assert missing.results[0].message == "missing required input(s): scores"
    assert missing.status is Status.ERROR and missing.exit_code == 3
    optional = _pack(
        """
      - {id: acc, uses: performance.accuracy, assert: {gte: 0.5}}
      - {id: lineage, uses: lineage.completeness, assert: {eq: true}, required: false}
    """,
        registry,
    )
    assert run_pack(optional, _ctx(), registry=registry).status is Status.PASS
    bad_column = _pack(
        "  - {id: dp, uses: fairness.demographic_parity_ratio, with: {sensitive: [race]},"
        " assert: {gte: 0.8}}\n",
        registry,
    )
    errored = run_pack(bad_column, _ctx(), registry=registry)
    assert errored.results[0].status is Status.ERROR
    assert "sensitive column(s) race not in the predictions table" in errored.results[0].message
    assert errored.status is Status.ERROR


def test_waivers_valid_expired_revoked(registry: CheckRegistry) -> None:
    pack = _pack("  - {id: acc, uses: performance.accuracy, assert: {gte: 0.99}}\n", registry)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    valid = WaiverInfo(
        id=1,
        check_id="acc",
        expires_at=now + timedelta(days=3),
        approver="carol",
        reason="known gap",
        ticket="RISK-1",
    )
    expired = WaiverInfo(id=2, check_id="acc", expires_at=now - timedelta(days=1), approver="carol")
    revoked = WaiverInfo(
        id=3, check_id="acc", expires_at=now + timedelta(days=3), revoked_at=now - timedelta(hours=1)
    )
    waived = run_pack(pack, _ctx(), registry=registry, waivers=[valid], now=now)
    assert waived.results[0].status is Status.WAIVED and waived.status is Status.PASS
    assert waived.to_document()["results"][0]["waiver"]["ticket"] == "RISK-1"
    late = run_pack(pack, _ctx(), registry=registry, waivers=[expired], now=now)
    assert late.results[0].status is Status.FAIL and late.status is Status.FAIL
    assert late.results[0].waiver == {**expired.to_dict(now)} and late.results[0].waiver["state"] == "expired"
    assert "waiver 2 expired at 2025-05-31T00:00:00Z" in late.results[0].message
    warn_pack = _pack(
        "  - {id: acc, uses: performance.accuracy, assert: {gte: 0.99}, severity: warn}\n", registry
    )
    assert run_pack(warn_pack, _ctx(), registry=registry, waivers=[expired], now=now).status is Status.FAIL
    ignored = run_pack(pack, _ctx(), registry=registry, waivers=[revoked], now=now)
    assert ignored.results[0].status is Status.FAIL and ignored.results[0].waiver is None


def test_reassert_stored_measurements_without_data(registry: CheckRegistry) -> None:
    pack = _pack("  - {id: acc, uses: performance.accuracy, assert: {gte: 0.8}}\n", registry)
    first = run_pack(pack, _ctx(), registry=registry)
    stored = {r.id: Measurement.from_dict(r.measurement.to_dict()) for r in first.results if r.measurement}
    stricter = _pack("  - {id: acc, uses: performance.accuracy, assert: {gte: 0.9}}\n", registry)
    again = run_pack(stricter, CheckContext(), registry=registry, measurements=stored)
    assert again.results[0].value == first.results[0].value
    assert again.results[0].status is Status.FAIL


def test_ci_bound_without_bootstrap_is_an_error(registry: CheckRegistry) -> None:
    pack = _pack("  - {id: acc, uses: performance.accuracy, assert: {gte: 0.1, bound: ci_low}}\n", registry)
    result = run_pack(pack, _ctx(), registry=registry)
    assert result.results[0].status is Status.ERROR
    assert "no confidence interval" in result.results[0].message


def test_predictions_file_csv_and_parquet_and_missing_columns(
    tmp_path: Path, registry: CheckRegistry
) -> None:
    frame = _frame()
    csv, parquet = tmp_path / "p.csv", tmp_path / "p.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    pack = _pack("  - {id: dp, uses: fairness.demographic_parity_difference, assert: {lte: 0.5}}\n", registry)
    values = []
    for path in (csv, parquet):
        ctx = context_for_predictions(path, label="y", prediction="p", score="s", sensitive=["sex"])
        values.append(run_pack(pack, ctx, registry=registry).results[0].value)
    assert values[0] == pytest.approx(values[1], abs=1e-12)
    with pytest.raises(InputError) as info:
        context_for_predictions(csv, label="label", prediction="p", sensitive=["gender"])
    assert str(info.value) == (
        f"{csv}: no label column 'label'; no sensitive column 'gender'; columns are: y, p, s, sex"
    )


def test_third_party_check_from_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "acme_checks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        from governance.checks import Check, CheckParams, Measurement

        class Params(CheckParams):
            limit: int = 10

        class RowCount(Check):
            id = "acme.row_count"
            version = "2"
            Params = Params
            requires = frozenset({"predictions"})

            def compute(self, ctx, params):
                return Measurement(value=float(len(ctx.require_predictions())),
                                   evidence={"limit": params.limit})
    """)
    )
    dist = tmp_path / "acme_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[governance.checks]\nacme = acme_checks:RowCount\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_checks", raising=False)
    registry = CheckRegistry.from_entry_points()
    assert "acme.row_count" in registry and "fairness.demographic_parity_ratio" in registry
    pack = parse_pack(
        HEAD + "  - {id: rows, uses: acme.row_count, with: {limit: 3}, assert: {gte: 100}}\n",
        registry=registry,
    )
    result = run_pack(pack, _ctx(), registry=registry)
    assert result.results[0].status is Status.PASS
    assert result.results[0].check_version == "2"
    assert result.results[0].value == 600.0
    with pytest.raises(InputError, match=r"unknown parameter for acme\.row_count"):
        parse_pack(HEAD + "  - {id: rows, uses: acme.row_count, with: {max: 3}}\n", registry=registry)


CLI_CASES = {
    "unknown-check": ("  - id: a\n    uses: performance.acuracy\n",
                      "line 6: checks[0].uses: unknown check 'performance.acuracy'; did you mean "
                      "'performance.accuracy'?"),
    "unknown-parameter": ("  - id: a\n    uses: performance.accuracy\n    with: {colour: red}\n",
                          "line 7: checks[0].with.colour: unknown parameter for performance.accuracy"),
    "wrong-type": ("  - id: a\n    uses: performance.accuracy\n    assert: {gte: high}\n",
                   "line 7: checks[0].assert.gte: expected a valid number"),
    "duplicate-id": ("  - {id: a, uses: performance.accuracy}\n  - {id: a, uses: performance.f1}\n",
                     "line 6: checks[1].id: duplicate check id 'a' (first at checks[0])"),
    "empty-pack": ("", "line 4: checks: the pack has no checks"),
    "yaml-syntax": ("  - id: a\n    uses: [performance.f1\n", "line 7, column 1: checks[0].uses: YAML syntax error"),
    "python-tag": ("  - id: a\n    uses: performance.f1\n    with: !!python/object/apply:os.system ['true']\n",
                   "line 7: checks[0].with: the tag !!python/object/apply:os.system is not allowed"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_refuses_a_bad_pack_with_one_line_naming_file_line_and_field(
    case: str, gov_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from governance.cli import main

    body, expected = CLI_CASES[case]
    pack = gov_env / f"{case}.yaml"
    pack.write_text(HEAD + body, encoding="utf-8")
    table = gov_env / "preds.csv"
    table.write_text("y,p\n1,1\n0,0\n", encoding="utf-8")
    code = main(["check", "--policy", str(pack), "--predictions", str(table), "--label", "y", "--prediction", "p"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"gov: error: {pack} {expected}"), lines[0]
