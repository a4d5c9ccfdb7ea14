"""Registry commands: register, promote, rollback, history, approve, waive, waivers, monitor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from governance.cli._context import check_format, emit_json, say, state
from governance.cli._policy import FORMATS, check_output, sensitive_columns, write_report
from governance.cli._read import print_table
from governance.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from governance.mlflow import MlflowRegistry

__all__ = ["register"]

_LIST_FORMATS = ("text", "json")

def _json_option(value: str | None, option: str) -> dict[str, Any] | None:
    """A JSON object given inline or as ``@FILE`` (JSON or YAML)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{option}: cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{option}: {path} is not UTF-8 text (byte {exc.start})") from exc
    import yaml

    class _PlainLoader(yaml.SafeLoader):
        """Safe loading without aliases: a card or metrics file never needs them, and an alias bomb
        would expand when the value is stored as JSON."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise InputError(f"{option}: YAML aliases (*name) are not allowed; write the values out")
            return super().compose_node(parent, index)

    try:
        data = yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(f"{option}: not valid JSON/YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{option}: expected a JSON object (or @FILE), got {type(data).__name__}")
    return data

def _decision_text(decision: dict[str, Any]) -> str:
    action = decision.get("action")
    target = f"{decision.get('model')}@{decision.get('version')}"
    if action == "promote":
        was = decision.get("from_version")
        return f"promoted {target} to {decision.get('stage')}" + (f" (was version {was})" if was else "")
    return f"{action}: {target} not promoted to {decision.get('stage')}: {decision.get('reason')}"

def register(app: typer.Typer) -> None:
    waivers = typer.Typer(help="Waivers: time-boxed, approved exceptions to one check.", no_args_is_help=True)
    _add_register(app)
    _add_document(app)
    _add_promote(app)
    _add_rollback(app)
    _add_history(app)
    _add_approve(app)
    _add_waive(app)
    _add_waivers_list(waivers)
    _add_waivers_approve(waivers)
    _add_waivers_revoke(waivers)
    _add_monitor(app)
    app.add_typer(waivers, name="waivers")


def _add_register(app: typer.Typer) -> None:
    @app.command("register")
    def register_cmd(
        ctx: typer.Context,
        name: str = typer.Argument(..., metavar="MODEL"),
        artifact: Path | None = typer.Option(None, "--artifact", help="Artifact file (SHA-256)."),
        owner: str | None = typer.Option(None, "--owner"),
        description: str | None = typer.Option(None, "--description"),
        risk_tier: str | None = typer.Option(None, "--risk-tier", help="minimal, low, medium, high."),
        card: str | None = typer.Option(None, "--card", help="Card: JSON object or @FILE."),
        metrics: str | None = typer.Option(None, "--metrics", help="Metrics: JSON object or @FILE."),
        params: str | None = typer.Option(None, "--params", help="Parameters: JSON object or @FILE."),
    ) -> None:
        """Register a new version of MODEL built outside a captured pipeline."""
        from governance.registry import register_model

        st = state(ctx)
        mv = register_model(name, artifact_path=artifact, owner=owner, description=description,
                            risk_tier=risk_tier, card=_json_option(card, "--card"),
                            metrics=_json_option(metrics, "--metrics"),
                            params=_json_option(params, "--params"),
                            catalog=st.catalog(), actor=st.actor)
        say(f"registered {name}@{mv.version}")


def _add_document(app: typer.Typer) -> None:
    @app.command("document")
    def document_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@VERSION"),
        card: str | None = typer.Option(None, "--card", help="Card fields: JSON object or @FILE."),
        owner: str | None = typer.Option(None, "--owner"),
        description: str | None = typer.Option(None, "--description"),
        risk_tier: str | None = typer.Option(None, "--risk-tier", help="minimal, low, medium, high."),
    ) -> None:
        """Fill in a version's model card (intended use, limitations, ...) and the model's details."""
        from governance.registry import document

        st = state(ctx)
        mv = document(ref, card=_json_option(card, "--card"), owner=owner, description=description,
                      risk_tier=risk_tier, catalog=st.catalog(), actor=st.actor)
        say(f"documented version {mv.version}: card fields {', '.join(sorted(mv.card)) or 'none'}")


def _add_promote(app: typer.Typer) -> None:
    @app.command("promote")
    def promote_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@VERSION"),
        to: str = typer.Option(..., "--to", help="Stage or alias to move (production, staging, ...)."),
        policy: str | None = typer.Option(None, "--policy", help="Policy pack: a path or a shipped pack's name "
                                          "(default: the stage's pack in governance.toml)."),
        predictions: Path | None = typer.Option(None, "--predictions", help="Gate on this table."),
        label: str | None = typer.Option(None, "--label"),
        prediction: str | None = typer.Option(None, "--prediction"),
        score: str | None = typer.Option(None, "--score"),
        sensitive: list[str] | None = typer.Option(None, "--sensitive", help="COL[,COL]"),
        reason: str | None = typer.Option(None, "--reason", help="Why (kept in the promotion history)."),
        if_current: str | None = typer.Option(
            None, "--if-current", metavar="VERSION|none",
            help="Move only if the stage points at this version (default: as at start)."),
        fmt: str = typer.Option("text", "--format", help="text, json, junit, sarif or github."),
        output: Path | None = typer.Option(None, "--output", "-o"),
        force: bool = typer.Option(False, "--force",
                                   help="Gate even if the pack's appliesTo.riskTier leaves out the model's."),
        key: Path | None = typer.Option(None, "--key", metavar="KEYFILE",
                                          help="Your OpenSSH Ed25519 private key: signs the decision."),
        registry: str = typer.Option("catalog", "--registry", help="catalog, or mlflow: also move the MLflow "
                                     "alias and tag the version, only after a PASS."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", metavar="URI",
                                                help="MLflow tracking URI (else MLFLOW_TRACKING_URI)."),
    ) -> int:
        """Gate MODEL@VERSION with a policy pack and, if it passes (and is signed off), move the stage.

        Exit codes: 0 promoted; 1 blocked, approvals missing or the stage moved meanwhile; 2 bad input;
        3 a check could not be evaluated.
        """
        from governance.registry import OBSERVE, promote, refusal_error

        check_format(fmt, FORMATS)
        check_output(output)
        expect: Any = OBSERVE
        if if_current is not None:
            if if_current.lower() == "none":
                expect = None
            elif if_current.isdigit():
                expect = int(if_current)
            else:
                raise InputError(f"--if-current: expected a version number or 'none', got {if_current!r}")
        st = state(ctx)
        hook = _registry_hook(registry, tracking_uri, st.catalog())
        if hook is not None:
            hook.preflight(ref)
        report = promote(ref, to=to, policy=policy, predictions=predictions, label=label,
                         prediction=prediction, score=score, sensitive=sensitive_columns(sensitive),
                         reason=reason, if_current=expect,
                         catalog=st.catalog(), actor=st.actor, raise_on_refusal=False, force=force, key=key,
                         after_pass=None if hook is None else hook.publish_promotion)
        write_report(report.output_document(), fmt, output, report.policy_path)
        decision = report.decision or {}
        if decision.get("action") != "promote":
            raise refusal_error(report)
        if fmt != "json" or output is not None:
            say(_decision_text(decision), err=fmt == "json")
        return 0


def _add_rollback(app: typer.Typer) -> None:
    @app.command("rollback")
    def rollback_cmd(
        ctx: typer.Context,
        model: str = typer.Argument(..., metavar="MODEL"),
        stage: str = typer.Option(..., "--stage", help="Stage to move back."),
        reason: str | None = typer.Option(None, "--reason", help="Why (kept in the promotion history)."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
        key: Path | None = typer.Option(None, "--key", metavar="KEYFILE",
                                          help="Your OpenSSH Ed25519 private key: signs the decision."),
        registry: str = typer.Option("catalog", "--registry", help="catalog, or mlflow: also move the MLflow "
                                     "alias back."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", metavar="URI",
                                                help="MLflow tracking URI (else MLFLOW_TRACKING_URI)."),
    ) -> None:
        """Move STAGE back to the previous version that passed its gate there."""
        from governance.registry import rollback

        check_format(fmt, _LIST_FORMATS)
        st = state(ctx)
        hook = _registry_hook(registry, tracking_uri, st.catalog())
        out = rollback(model, stage=stage, reason=reason, catalog=st.catalog(), actor=st.actor, key=key,
                       after=None if hook is None else hook.publish_rollback)
        if fmt == "json":
            emit_json(out.as_dict())
        else:
            say(f"rolled back {out.model}@{out.stage}: version {out.from_version} -> {out.to_version} ({out.reason})")


def _add_history(app: typer.Typer) -> None:
    @app.command("history")
    def history_cmd(
        ctx: typer.Context,
        model: str = typer.Argument(..., metavar="MODEL"),
        stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """Promotion history: promotions, refusals, lost races and rollbacks, oldest first."""
        from governance.registry import history

        check_format(fmt, _LIST_FORMATS)
        with_catalog = state(ctx).catalog()
        rows = [event.as_dict() for event in history(model, stage=stage, catalog=with_catalog)]
        if fmt == "json":
            emit_json(rows)
        else:
            print_table(rows, ["id", "time", "stage", "action", "from_version", "to_version", "signer",
                               "key_fingerprint", "verification", "evaluation_status", "reason"],
                        f"promotion history of {model}")


def _add_approve(app: typer.Typer) -> None:
    @app.command("approve")
    def approve_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@VERSION"),
        stage: str = typer.Option(..., "--stage", help="Stage the approval is for."),
        role: str | None = typer.Option(None, "--role", hidden=True),
        comment: str | None = typer.Option(None, "--comment"),
        key: Path | None = typer.Option(None, "--key", metavar="KEYFILE",
                                          help="Your OpenSSH Ed25519 private key: signs the decision."),
        policy: str | None = typer.Option(None, "--policy",
                                          help="Pack approved under (default: the stage's pack in governance.toml)."),
    ) -> None:
        """Sign off MODEL@VERSION for STAGE on its current evidence and pack, with your own key.

        Roles come from governance.toml ([governance.roles]); the approver must not be the promoter.
        """
        from governance.registry import approve

        st = state(ctx)
        row = approve(ref, stage=stage, role=role, comment=comment, catalog=st.catalog(), actor=st.actor,
                      key=key, policy=policy)
        how = "signed" if key is not None else "unsigned"
        say(f"approval {row.id} recorded ({how}): {row.approver} approves {ref} for {stage}")


def _add_waive(app: typer.Typer) -> None:
    @app.command("waive")
    def waive_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL[@VERSION]",
                                  help="Version (or alias, pinned now); MODEL alone waives every version. "
                                       "`gov waive revoke ID` revokes."),
        waiver_id: str | None = typer.Argument(None, hidden=True),
        check_id: str | None = typer.Option(None, "--check", help="Check id in the pack."),
        reason: str | None = typer.Option(None, "--reason"),
        approver: str | None = typer.Option(None, "--approver",
                                            help="Unsigned waivers only: who approved (not you)."),
        expires: str | None = typer.Option(None, "--expires", help="DATE, DATETIME or 30d/12h/2w."),
        ticket: str | None = typer.Option(None, "--ticket"),
        key: Path | None = typer.Option(None, "--key", metavar="KEYFILE",
                                        help="Your OpenSSH Ed25519 private key: signs the request."),
    ) -> None:
        """Waive one check for a model version until an expiry date."""
        from governance.registry import revoke_waiver, waive

        st = state(ctx)
        if ref == "revoke" and waiver_id is not None:
            if not waiver_id.isdigit():
                raise InputError(f"gov waive revoke: expected a waiver id, got {waiver_id!r}")
            revoked = revoke_waiver(int(waiver_id), reason=reason, catalog=st.catalog(), actor=st.actor)
            say(f"waiver {revoked.id} revoked")
            return
        if waiver_id is not None:
            raise InputError(f"gov waive: unexpected extra argument {waiver_id!r}")
        missing = [o for o, v in (("--check", check_id), ("--reason", reason), ("--expires", expires)) if not v]
        if key is None and not approver:
            missing.append("--key (or --approver for an unsigned waiver)")
        if missing:
            raise InputError(f"gov waive: missing {', '.join(missing)}")
        row = waive(ref, check_id=str(check_id), reason=str(reason), approver=approver,
                    expires=str(expires), ticket=ticket, catalog=st.catalog(), actor=st.actor, key=key)
        if row.approver is None:
            scope = f"version {row.versions[0]}" if row.versions else "every version"
            say(f"waiver {row.id} requested (signed by {row.requester}): {check_id} for {scope} until "
                f"{row.expires_at.isoformat()}; it counts once another person signs "
                f"`gov waivers approve {row.id} --key KEYFILE`")
            return
        scope = f"version {row.versions[0]}" if row.versions else "every version"
        say(f"waiver {row.id} recorded: {check_id} waived for {scope} until "
                   f"{row.expires_at.isoformat()} (approved by {row.approver})")


def _add_waivers_list(waivers: typer.Typer) -> None:
    @waivers.command("list")
    def waivers_list(
        ctx: typer.Context,
        model: str | None = typer.Option(None, "--model"),
        state_filter: str | None = typer.Option(None, "--state", help="active, expired or revoked."),
        fmt: str = typer.Option("text", "--format", help="text or json"),
    ) -> None:
        """List waivers, newest first."""
        from governance.registry import list_waivers

        check_format(fmt, _LIST_FORMATS)
        rows = [w.as_dict() for w in list_waivers(model=model, state=state_filter, catalog=state(ctx).catalog())]
        if fmt == "json":
            emit_json(rows)
        else:
            print_table(rows, ["id", "model", "versions", "check", "state", "expires_at", "requester",
                               "requester_verification", "approver", "approver_verification", "signatures",
                               "ticket", "reason"], "waivers")


def _add_waivers_approve(waivers: typer.Typer) -> None:
    @waivers.command("approve")
    def waivers_approve(
        ctx: typer.Context,
        waiver_id: int = typer.Argument(..., metavar="ID"),
        key: Path = typer.Option(..., "--key", metavar="KEYFILE",
                                 help="Your OpenSSH Ed25519 private key: signs the approval."),
    ) -> None:
        """Approve a signed waiver request with your own key (you must not be the requester)."""
        from governance.registry import approve_waiver

        st = state(ctx)
        row = approve_waiver(waiver_id, key=key, catalog=st.catalog(), actor=st.actor)
        say(f"waiver {row.id} approved by {row.approver} (signed): {row.check_id} until "
            f"{row.expires_at.isoformat()}")


def _add_waivers_revoke(waivers: typer.Typer) -> None:
    @waivers.command("revoke")
    def waivers_revoke(
        ctx: typer.Context,
        waiver_id: int = typer.Argument(..., metavar="ID"),
        reason: str | None = typer.Option(None, "--reason"),
    ) -> None:
        """Revoke a waiver now."""
        from governance.registry import revoke_waiver

        st = state(ctx)
        revoked = revoke_waiver(waiver_id, reason=reason, catalog=st.catalog(), actor=st.actor)
        say(f"waiver {revoked.id} revoked")


def _add_monitor(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., metavar="MODEL@STAGE"),
        data: Path = typer.Option(..., "--data", help="Production data (CSV/Parquet)."),
        policy: str = typer.Option(..., "--policy", help="Policy pack with drift/performance checks."),
        label: str | None = typer.Option(None, "--label"),
        prediction: str | None = typer.Option(None, "--prediction"),
        score: str | None = typer.Option(None, "--score"),
        sensitive: list[str] | None = typer.Option(None, "--sensitive", help="COL[,COL]"),
        notify: str | None = typer.Option(None, "--notify", metavar="URL", help="POST JSON on failure."),
        rollback_on_fail: bool = typer.Option(False, "--rollback-on-fail",
                                              help="Roll the stage back on a blocking failure."),
        fmt: str = typer.Option("text", "--format", help="text, json, junit, sarif or github."),
        output: Path | None = typer.Option(None, "--output", "-o"),
        fail_on_warn: bool = typer.Option(False, "--fail-on-warn"),
        force: bool = typer.Option(False, "--force",
                                   help="Monitor even if the pack's appliesTo.riskTier leaves out the model's."),
    ) -> int:
        """Re-run drift and performance checks on production data for the version a stage points at."""
        from governance.registry import monitor

        check_format(fmt, FORMATS)
        check_output(output)
        st = state(ctx)
        report = monitor(ref, data=data, policy=policy, label=label, prediction=prediction, score=score,
                         sensitive=sensitive_columns(sensitive), notify=notify,
                         rollback_on_fail=rollback_on_fail, catalog=st.catalog(), actor=st.actor,
                         force=force)
        document = report.gate.output_document()
        document["monitor"] = {"stage": report.stage, "notified": report.notified,
                               "rolled_back": None if report.rolled_back is None else report.rolled_back.as_dict()}
        write_report(document, fmt, output, report.gate.policy_path)
        if report.notified and report.notified.get("error"):
            say(f"gov: warning: notification to {notify} failed: {report.notified['error']}", err=True)
        if report.rolled_back:
            rb = report.rolled_back
            say(f"rolled back {rb.model}@{rb.stage}: version {rb.from_version} -> {rb.to_version}", err=True)
        return report.exit_code(fail_on_warn=fail_on_warn)


def _registry_hook(registry: str, tracking_uri: str | None, catalog: Any) -> MlflowRegistry | None:
    """``--registry``: None for the catalog alone; the MLflow side for ``mlflow``."""
    if registry == "catalog":
        if tracking_uri is not None:
            raise InputError("--tracking-uri: only with --registry mlflow")
        return None
    if registry != "mlflow":
        raise InputError(f"--registry: expected catalog or mlflow, got {registry!r}")
    from governance.mlflow import MlflowRegistry

    return MlflowRegistry(tracking_uri, catalog)
