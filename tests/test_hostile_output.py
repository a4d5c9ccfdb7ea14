"""Hostile names in the catalog and in data reach no terminal, log or CI runner as anything but inert text.

Names, group values and actors are data anyone with catalog or file access can write.  Each output
here is read back as a CI runner or a terminal would: no line may start a workflow command, no raw
control character may pass, rich markup in data is shown as typed, and nothing crashes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlmodel import select

from governance._display import guard_lines, printable
from governance.audit import audited
from governance.catalog import Model, open_catalog
from governance.cli import main
from governance.registry import register_model, waive

HOSTILE = [
    "x[/bold]",
    "[link=https://evil.example]click me[/link]",
    "clear\x1b[2Jscreen",
    "osc8 \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "m\n::add-mask::secret",
    "m\n::error file=a.py,line=1::forged",
    "m\r::warning::rewritten",
    "rtl\u202eevil",
    "zero\u200bwidth",
    "::set-output name=x::y",
]
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
OURS = re.compile(r"^::(error|warning|notice) (file=[^,]*,)?(line=\d+,)?title=gov policy ")


def _assert_inert(text: str, *, annotations_allowed: bool = False) -> None:
    assert not RAW_CONTROL.search(text), repr(text)
    for line in text.splitlines():
        if line.lstrip().startswith("::"):
            assert annotations_allowed and OURS.match(line), f"data started a workflow command: {line!r}"


@pytest.mark.parametrize("name", HOSTILE)
def test_printable_is_one_inert_line(name: str) -> None:
    shown = printable(name)
    assert "\n" not in shown and "\r" not in shown
    _assert_inert(shown)
    assert printable("plain name-1.2") == "plain name-1.2"


def test_guard_lines_defuses_commands_formed_by_neighbours() -> None:
    shown = guard_lines(":" + ":error::x\n  ::warning::y\nok :: fine\n")
    assert shown == "\\x3a:error::x\n  \\x3a:warning::y\nok :: fine\n"


@pytest.fixture
def hostile_catalog(gov_env: Path) -> Path:
    catalog = open_catalog()
    for i, name in enumerate(HOSTILE):
        model_name = name.strip().replace("@", "_") or f"m{i}"
        register_model(model_name, owner=name, description=name, catalog=catalog, actor=name.strip() or "x")
        waive(f"{model_name}@1", check_id="perf.accuracy", reason=name, approver=f"boss{i}", expires="30d",
              ticket=name, catalog=catalog, actor=f"req{i}")
    return gov_env


@pytest.mark.parametrize("argv", [
    ["models", "list"],
    ["waivers", "list"],
    ["audit", "log", "--limit", "500"],
    ["history", HOSTILE[0]],
    ["history", HOSTILE[3]],
    ["models", "show", HOSTILE[1]],
    ["models", "show", HOSTILE[4]],
])
def test_listings_show_hostile_names_inert(hostile_catalog: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str]) -> None:
    capsys.readouterr()
    assert main(argv) == 0
    out, err = capsys.readouterr()
    _assert_inert(out)
    _assert_inert(err)


def test_markup_in_names_is_shown_as_typed(hostile_catalog: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no name folds across table lines
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "x[/bold]" in out
    assert "[link=https://evil.example]click me[/link]" in out
    assert "clear\\x1b[2Jscreen" in out


def test_an_actor_with_a_carriage_return_cannot_rewrite_an_audit_line(hostile_catalog: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["audit", "log", "--limit", "500"]) == 0
    out = capsys.readouterr().out
    assert "m\\r\\x3a:warning::rewritten" in out or "m\\r::warning::rewritten" in out
    assert "\r" not in out


def _predictions(root: Path) -> Path:
    rows = ["y,yhat,sex"]
    groups = ["F\n::add-mask::secret", "M\n::error file=x::forged", "\x1b[2J[bold]X"]
    for i in range(300):
        g = groups[i % 3]
        yhat = 1 if i % 3 == 0 else (i // 3) % 2  # the first group is always approved: unfair on purpose
        rows.append(f"{i % 2},{yhat},\"{g}\"")
    path = root / "hostile.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: hostile, version: 1.0.0}
checks:
  - id: fairness.dp
    uses: fairness.demographic_parity_ratio
    assert: {gte: 0.99}
"""


@pytest.mark.parametrize("fmt", ["text", "github", "junit", "sarif", "json"])
def test_group_values_in_every_gate_format_are_inert(gov_env: Path, capsys: pytest.CaptureFixture[str],
                                                      fmt: str) -> None:
    data = _predictions(gov_env)
    (gov_env / "pack.yaml").write_text(PACK, encoding="utf-8")
    capsys.readouterr()
    code = main(["check", "--policy", "pack.yaml", "--predictions", str(data), "--label", "y",
                 "--prediction", "yhat", "--sensitive", "sex", "--format", fmt])
    assert code == 1
    out, err = capsys.readouterr()
    _assert_inert(out, annotations_allowed=fmt == "github")
    _assert_inert(err)
    if fmt == "github":
        assert out.count("\n::error ") == 1 or out.startswith("::error ") or "\n::error " in out
    if fmt in ("json", "sarif"):
        json.loads(out)  # still the machine document


def test_with_output_stdout_is_one_summary_line(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _predictions(gov_env)
    (gov_env / "pack.yaml").write_text(PACK, encoding="utf-8")
    capsys.readouterr()
    code = main(["check", "--policy", "pack.yaml", "--predictions", str(data), "--label", "y",
                 "--prediction", "yhat", "--sensitive", "sex", "--format", "sarif", "--output", "gate.sarif"])
    assert code == 1
    out, _ = capsys.readouterr()
    assert len(out.splitlines()) == 1, out
    assert out.startswith("gate BLOCKED: status FAIL (fairness.dp)") and "gate.sarif" in out
    assert json.loads((gov_env / "gate.sarif").read_text(encoding="utf-8"))["version"] == "2.1.0"


@pytest.mark.parametrize("argv", [
    ["check", "--policy", "pack.yaml", "--predictions", "{data}", "--label", "y", "--prediction", "yhat",
     "--sensitive", "sex", "--format", "{fmt}", "--output", "link"],
    ["report", "audit", "--format", "json", "--output", "link"],
    ["audit", "checkpoint", "--output", "link", "--key", "keys/audit-signing.key"],
])
@pytest.mark.parametrize("fmt", ["json", "github"])
def test_output_never_follows_a_symlink(gov_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        fmt: str) -> None:
    data = _predictions(gov_env)
    (gov_env / "pack.yaml").write_text(PACK, encoding="utf-8")
    register_model("m", catalog=open_catalog(), actor="a")
    assert main(["audit", "keygen", "--output-dir", "keys"]) == 0
    victim = gov_env / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (gov_env / "link").symlink_to(victim)
    capsys.readouterr()
    code = main([a.format(data=data, fmt=fmt) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "symbolic link" in err
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert (gov_env / "link").is_symlink()


def test_rows_forged_with_hostile_names_do_not_crash_any_listing(gov_env: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A name that skipped register_model's checks (written with SQL) still lists inert."""
    catalog = open_catalog()
    register_model("plain", catalog=catalog, actor="a")
    with audited(catalog, "a") as tx:
        model = tx.session.exec(select(Model).where(Model.name == "plain")).one()
        model.name = "\n::add-mask::x [/bold] \x1b[31m"
        tx.record("test.rename", "model:plain")
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    _assert_inert(capsys.readouterr().out)


def test_capture_warnings_in_the_log_are_inert(gov_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import governance as gov
    from governance.lineage import CaptureRole, capture_adapter

    class Hostile:
        pass

    @capture_adapter.register(Hostile)
    def _(obj: Hostile, role: CaptureRole) -> object:
        raise RuntimeError("adapter \x1b[2J\x1b]8;;https://evil.example\x07bug\u202e")

    @gov.step(kind="other", name="hostile.log")
    def use(thing: Hostile) -> int:
        return 1

    with caplog.at_level(logging.DEBUG, logger="governance"):
        assert use(Hostile()) == 1
    messages = "\n".join(r.getMessage() for r in caplog.records if r.name == "governance")
    assert "adapter \\x1b[2J\\x1b]8;;https://evil.example\\x07bug\\u202e" in messages
    _assert_inert(messages)
