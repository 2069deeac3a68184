"""The state commands: defuse, reignite, pause and resume (Fireworks and workflows), archive
and delete workflows, ``detect_lostruns``, and ``lpad admin`` (unlock, refresh, tuneup).

Each parses its options, selects, and calls the operations layer (plan, then apply under the
workflow locks) through :func:`prefect_fireworks.cli.apply.apply_to_selected`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.apply import apply_to_selected, confirmer, grouped, table_or_counts
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    DryRunOpt,
    JsonOpt,
    PasswordOpt,
    QueryOpt,
    Selection,
    command,
    selection_options,
)
from prefect_fireworks.cli.help import typer_options
from prefect_fireworks.core.constants import RUN_EXPIRATION_SECS
from prefect_fireworks.ops import transitions as tr
from prefect_fireworks.ops.admin import refresh_wflows, unlock_wflows
from prefect_fireworks.ops.deletion import delete_wflows as delete_wflows_op
from prefect_fireworks.ops.lostruns import detect_lostruns as detect_lostruns_op
from prefect_fireworks.ops.selection import Selector, parse_query
from prefect_fireworks.ops.transitions import Op, OpResult, run_op
from prefect_fireworks.ops.workflows import resolve_wf_ids

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

admin_app = typer.Typer(
    name="admin",
    help="Maintenance: unlock workflows, refresh their states, (re)create indexes.",
    **typer_options(no_args_is_help=True),
)
app.add_typer(admin_app, name="admin")


def _op_summary(as_json: bool) -> Callable[[OpResult, bool], None]:
    def show(res: OpResult, dry: bool) -> None:
        if as_json:
            d = res.to_dict()
            d["dry_run"] = dry
            OUT.json(d)
            return
        head = "would change" if dry else "changed"
        rows = [
            (c.fw_id, c.name, c.wf_id, f"{c.state_before} -> {c.state_after}") for c in res.changes
        ]
        table_or_counts(
            f"{res.command}: {head} {len(rows)} Firework(s)",
            ["fw_id", "name", "workflow", "state"],
            rows,
            lambda: [
                *grouped((f"{c.state_before} -> {c.state_after}", c.fw_id) for c in res.changes),
                f"in {len({c.wf_id for c in res.changes})} workflow(s)",
            ],
        )
        if res.skipped:
            table_or_counts(
                f"{len(res.skipped)} target(s) left as they are",
                ["fw_id", "state", "skipped because"],
                [(s.fw_id, s.state, s.reason) for s in res.skipped],
                lambda: grouped((s.reason, s.fw_id) for s in res.skipped),
            )
        extra = f", {len(res.archived)} launch(es) archived" if res.archived else ""
        OUT.text(
            f"{res.command}: {len(rows)} Firework(s) changed{extra}."
            + (" Dry run: nothing was written." if dry else "")
        )

    return show


# -- Firework and workflow operations ------------------------------------------------------------
def _run_fw_op(
    command_name: str,
    op: Op,
    sel: Selector,
    password: str | None,
    dry_run: bool,
    as_json: bool,
    *,
    workflows: bool = False,
) -> None:
    lp = STATE.launchpad()
    ids = resolve_wf_ids(lp, sel) if workflows else sel.resolve(lp)
    if not ids:
        OUT.info("Nothing matches the selection.")
        return
    apply_to_selected(
        title=command_name,
        n_targets=len(ids),
        plan=lambda: run_op(lp, command_name, ids, op, True, load_all=workflows),
        apply=lambda p, adv: run_op(
            lp, command_name, ids, op, False, progress=adv, load_all=workflows
        ),
        total=lambda p: len(ids),
        summarise=_op_summary(as_json),
        password=password,
        dry_run=dry_run,
        as_json=as_json,
    )


_WF_NOTE = "\n\n-i names any Firework of the workflow; -n, -s and -q match the workflow."

#: The Firework commands: name, operation, help.
_FW_COMMANDS: list[tuple[str, Op, str]] = [
    (
        "defuse_fws",
        tr.op_defuse,
        "Defuse Fireworks: they and their descendants will not run until reignited.\n\n"
        "COMPLETED, RUNNING and RESERVED Fireworks are rerun first (launches archived, children\n"
        "reset), then defused; ARCHIVED ones cannot be defused.",
    ),
    (
        "reignite_fws",
        tr.op_reignite,
        "Reignite DEFUSED Fireworks (WAITING, READY once their parents are COMPLETED).",
    ),
    (
        "pause_fws",
        tr.op_pause,
        "Pause WAITING, READY or RESERVED Fireworks (resume with resume_fws).",
    ),
    ("resume_fws", tr.op_resume, "Resume PAUSED Fireworks."),
]

#: The workflow commands: name, operation, help (each also answers to ``*_wfs``/``*-wfs``).
_WF_COMMANDS: list[tuple[str, Op, str]] = [
    (
        "defuse_wflows",
        tr.op_defuse_wf(True),
        "Defuse whole workflows (every Firework; COMPLETED ones are rerun first).\n\n"
        "Unlike FireWorks 2.1.4's lpad (which pauses by mistake), this really defuses.\n"
        "-i names any Firework of the workflow; -n, -s and -q match the workflow.",
    ),
    (
        "pause_wflows",
        tr.op_pause_wf,
        "Pause whole workflows (every WAITING, READY or RESERVED Firework)." + _WF_NOTE,
    ),
    (
        "reignite_wflows",
        tr.op_reignite_wf,
        "Reignite whole workflows (every DEFUSED Firework)." + _WF_NOTE,
    ),
    (
        "archive_wflows",
        tr.op_archive_wf,
        "Archive whole workflows: launches archived, every Firework ARCHIVED. Irreversible\n"
        "from the command line (rerun and reignite leave ARCHIVED Fireworks alone)." + _WF_NOTE,
    ),
]


def _register_fw_command(command_name: str, op: Op, doc: str) -> None:
    def run(
        sel: Selection,
        password: PasswordOpt = None,
        dry_run: DryRunOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        _run_fw_op(command_name, op, sel.selector(), password, dry_run, as_json)

    run.__name__ = run.__qualname__ = command_name
    run.__doc__ = doc
    command(app, command_name)(selection_options()(run))


def _register_wf_command(command_name: str, op: Op, doc: str) -> None:
    def run(
        sel: Selection,
        password: PasswordOpt = None,
        dry_run: DryRunOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        _run_fw_op(command_name, op, sel.selector(), password, dry_run, as_json, workflows=True)

    short = command_name.replace("wflows", "wfs")
    run.__name__ = run.__qualname__ = command_name
    run.__doc__ = doc
    command(app, command_name, short, short.replace("_", "-"))(
        selection_options(launches_mode=False)(run)
    )


for _spec in _FW_COMMANDS:
    _register_fw_command(*_spec)
for _spec in _WF_COMMANDS:
    _register_wf_command(*_spec)


@command(app, "delete_wflows", "delete_wfs", "delete-wfs")
@selection_options(launches_mode=False)
def delete_wflows(
    sel: Selection,
    password: PasswordOpt = None,
    ldirs: Annotated[
        bool, typer.Option("--ldirs", help="Also delete the launch directories.")
    ] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete whole workflows: Fireworks, their launches, the workflow document.

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    lp = STATE.launchpad()
    ids = resolve_wf_ids(lp, sel.selector())
    if not ids:
        OUT.info("Nothing matches the selection.")
        return

    def show(res: OpResult, dry: bool) -> None:
        if as_json:
            OUT.json(res.to_dict())
            return
        verb = "Would delete" if dry else "Deleted"
        OUT.text(
            f"{verb} {len(ids)} workflow(s): {len(res.extra['fireworks'])} Firework(s), "
            f"{len(res.extra['launches'])} launch(es)"
            + (f", {len(res.extra['launch_dirs'])} launch dir(s)" if ldirs and not dry else "")
            + "."
        )

    apply_to_selected(
        title="Deleting",
        n_targets=len(ids),
        plan=lambda: delete_wflows_op(lp, ids, ldirs, dry_run=True),
        apply=lambda p, adv: delete_wflows_op(lp, ids, ldirs, progress=adv),
        total=lambda p: len(ids),
        summarise=show,
        password=password,
        dry_run=dry_run,
        as_json=as_json,
    )


def _crash_prefect_runs(lp: Any, launch_ids: list[int]) -> dict[str, list[str]] | None:
    """Mark the Prefect runs of the lost launches Crashed; a warning line if Prefect is away."""
    if not launch_ids:
        return None
    try:
        from prefect_fireworks.prefect.crashed_runs import mark_crashed

        crashed = mark_crashed(lp, launch_ids)
    except Exception as exc:  # the LaunchPad is fixed already: Prefect's view is secondary
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        OUT.info(f"Warning: could not mark the Prefect runs of the lost launches Crashed: {reason}")
        return None
    n = len(crashed["task_runs"]) + len(crashed["flow_runs"])
    if n:
        OUT.info(
            f"Marked Crashed: {len(crashed['task_runs'])} Prefect task runs, "
            f"{len(crashed['flow_runs'])} flow runs"
        )
    return crashed


@command(app, "detect_lostruns")
def detect_lostruns(
    time_: Annotated[
        float,
        typer.Option(
            "--time",
            min=0,
            max=10**9,
            help="Seconds without a heartbeat after which a RUNNING launch is lost.",
        ),
    ] = RUN_EXPIRATION_SECS,
    fizzle: Annotated[bool, typer.Option("--fizzle", help="Mark lost launches FIZZLED.")] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Mark lost launches FIZZLED and rerun their Fireworks.")
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Refresh inconsistent Fireworks (RUNNING with a finished launch)."
        ),
    ] = False,
    max_runtime: Annotated[
        float | None,
        typer.Option("--max_runtime", "--max-runtime", help="Only runs that lasted at most this."),
    ] = None,
    min_runtime: Annotated[
        float | None,
        typer.Option("--min_runtime", "--min-runtime", help="Only runs that lasted at least this."),
    ] = None,
    query: QueryOpt = None,
    launch_query: Annotated[
        str | None,
        typer.Option(
            "-lq", "--launch_query", "--launch-query", help="Restrict to launches matching this."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find RUNNING Fireworks whose launches stopped sending heartbeats (lost runs)."""
    q = parse_query(query)
    lq = parse_query(launch_query)
    lp = STATE.launchpad()
    res = detect_lostruns_op(
        lp,
        expiration_secs=time_,
        fizzle=fizzle,
        rerun=rerun,
        max_runtime=max_runtime,
        min_runtime=min_runtime,
        refresh=refresh,
        query=q,
        launch_query=lq,
    )
    crashed = _crash_prefect_runs(lp, res.lost_launch_ids) if (fizzle or rerun) else None
    if as_json:
        OUT.json({**res.to_dict(), **({"crashed_prefect_runs": crashed} if crashed else {})})
        return
    OUT.text(f"Detected {len(res.lost_launch_ids)} lost launches: {res.lost_launch_ids}")
    OUT.text(f"Detected {len(res.lost_fw_ids)} lost FWs: {res.lost_fw_ids}")
    OUT.text(f"Detected {len(res.inconsistent_fw_ids)} inconsistent FWs: {res.inconsistent_fw_ids}")
    if res.lost_fw_ids and not (fizzle or rerun):
        OUT.info("You can fix lost FWs using the --rerun or --fizzle arguments")
    if res.inconsistent_fw_ids and not refresh:
        OUT.info("You can fix inconsistent FWs using the --refresh argument")
    if res.rerun:
        OUT.text(f"Reran FWs: {json.dumps(res.rerun)}")
    if res.orphan_claims:
        # Only printed when there are some, so the output is FireWorks' otherwise.
        OUT.text(
            f"Detected {len(res.orphan_claims)} orphan claims (RESERVED/RUNNING without a "
            f"launch): {res.orphan_claims}"
        )
        if res.claims_reset:
            OUT.text(f"Reset orphan claims: {json.dumps(res.orphan_claims)}")
        else:
            OUT.info("You can reset orphan claims using the --refresh argument")


# -- admin ---------------------------------------------------------------------------------------
def _confirmed_workflows(sel: Selection, password: str | None) -> tuple[LaunchPad, list[int]]:
    """The LaunchPad and the selected workflows, after FireWorks' more-than-10 confirmation."""
    lp = STATE.launchpad()
    ids = resolve_wf_ids(lp, sel.selector())
    confirmer(password)(len(ids))
    return lp, ids


@command(admin_app, "unlock")
@selection_options(launches_mode=False)
def admin_unlock(sel: Selection, password: PasswordOpt = None) -> None:
    """Remove the lock of workflows, whoever holds it (after a killed process).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    lp, ids = _confirmed_workflows(sel, password)
    unlocked = unlock_wflows(lp, ids)
    OUT.text(f"Finished unlocking {len(ids)} workflow(s); {len(unlocked)} were locked.")


@command(admin_app, "refresh")
@selection_options(launches_mode=False)
def admin_refresh(sel: Selection, password: PasswordOpt = None) -> None:
    """Recompute workflow states from their launches (e.g. after a lock stopped a refresh).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    lp, ids = _confirmed_workflows(sel, password)
    changed = refresh_wflows(lp, ids)
    OUT.text(f"Finished refreshing {len(ids)} workflow(s); {len(changed)} state change(s).")


@command(admin_app, "tuneup")
def admin_tuneup(
    full: Annotated[
        bool, typer.Option("--full", help="Accepted for FireWorks compatibility (no compaction).")
    ] = False,
) -> None:
    """(Re)create the LaunchPad's indexes."""
    STATE.launchpad().tuneup()
    OUT.text("Indexes are up to date.")
