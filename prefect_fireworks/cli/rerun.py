"""``lpad rerun_fws`` and the commands around it (defuse, pause, reignite, resume, archive,
delete, detect_lostruns, admin).

Every multi-target command goes through :func:`apply_to_selected`: validate and plan (nothing
written), ``--dry-run`` prints the plan, more than 10 targets need a yes or ``--password``, a
progress bar while applying, a summary table (or ``--json``) after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    DryRunOpt,
    FwIdsOpt,
    JsonOpt,
    LaunchesModeOpt,
    NameOpt,
    PasswordOpt,
    QueryOpt,
    StateOpt,
    UsageError,
    asker,
    command,
)
from prefect_fireworks.ops import state_ops as cmds
from prefect_fireworks.ops.rerun import RerunPlan, apply_rerun, plan_rerun, validate_options
from prefect_fireworks.ops.selection import Selector, confirm_mass, parse_query

admin_app = typer.Typer(
    name="admin",
    help="Maintenance: unlock workflows, refresh their states, (re)create indexes.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(admin_app, name="admin")


# -- the generic "apply to the selected Fireworks" helper ----------------------------------------
def apply_to_selected(
    *,
    title: str,
    n_targets: int,
    plan: Callable[[], Any],
    apply: Callable[[Any, Callable[[int], None]], Any],
    total: Callable[[Any], int],
    summarise: Callable[[Any, bool], None],
    password: str | None,
    dry_run: bool,
    as_json: bool,
    noun: str = "entries",
) -> Any:
    """Selection is done; plan (validates, writes nothing), confirm, apply with a progress bar,
    summarise.

    Args:
        title: progress-bar label.
        n_targets: how many targets were selected (the confirmation counts these).
        plan: computes the plan; raises on any bad input.
        apply: writes the plan, calling ``advance(k)`` as it goes.
        total: the progress bar's total for a plan.
        summarise: prints a plan/result (``dry`` tells which).
        password: ``--password``.
        dry_run: print the plan only.
        as_json: machine-readable output.
        noun: what the confirmation counts.
    """
    planned = plan()
    if dry_run:
        summarise(planned, True)
        return planned
    confirm_mass(n_targets, password, asker())
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task(title, total=max(total(planned), 1))
        result = apply(planned, lambda k: bar.advance(task, k))
    summarise(result, False)
    return result


def _selector(
    fw_id: str | None, name: str | None, state: str | None, query: str | None, lm: bool = False
) -> Selector:
    return Selector.from_options(fw_id, name, state, query, lm)


def _parse_launch_ids(values: Sequence[str] | None) -> list[int] | None:
    if not values:
        return None
    out: list[int] = []
    for v in values:
        for piece in v.split(","):
            piece = piece.strip()
            if not piece.lstrip("-").isdigit():
                raise UsageError(f"invalid launch id {piece!r}: give integers")
            out.append(int(piece))
    return out


# -- summaries -----------------------------------------------------------------------------------
def _rerun_summary(as_json: bool) -> Callable[[RerunPlan, bool], None]:
    def show(plan: RerunPlan, dry: bool) -> None:
        if as_json:
            d = plan.to_dict()
            d["dry_run"] = dry
            OUT.json(d)
            return
        head = "Would rerun" if dry else "Reran"
        rows = [
            (
                e.fw_id,
                e.name,
                e.role,
                f"{e.state_before} -> {e.state_after}",
                ",".join(map(str, e.archived)) or "-",
                e.recovery or "",
            )
            for e in plan.entries
        ]
        cols = ["fw_id", "name", "role", "state", "archived launches", "recovery"]
        OUT.table(rows, cols, title=f"{head} {len(plan.rerun_ids)} Firework(s)")
        if plan.skipped:
            OUT.table(
                [(s.fw_id, s.state, s.reason, s.recovery or "") for s in plan.skipped],
                ["fw_id", "state", "skipped because", "recovery"],
                title=f"{len(plan.skipped)} target(s) left as they are",
            )
        for fid, rec in plan.recovery.items():
            OUT.text(
                f"fw_id {fid}: restarts at Firetask {rec.get('_task_n')} from launch "
                f"{rec.get('_launch_id')} (mode: {rec.get('_mode') or 'new directory'})"
            )
        verb = "would be archived" if dry else "archived"
        OUT.text(
            f"{len(plan.entries)} Firework(s) reset, {plan.n_archived} launch(es) {verb}."
            + (" Dry run: nothing was written." if dry else "")
        )

    return show


def _op_summary(as_json: bool) -> Callable[[cmds.OpResult, bool], None]:
    def show(res: cmds.OpResult, dry: bool) -> None:
        if as_json:
            d = res.to_dict()
            d["dry_run"] = dry
            OUT.json(d)
            return
        head = "Would change" if dry else "Changed"
        rows = [
            (c.fw_id, c.name, c.wf_id, f"{c.state_before} -> {c.state_after}") for c in res.changes
        ]
        OUT.table(
            rows,
            ["fw_id", "name", "workflow", "state"],
            title=f"{res.command}: {head.lower()} {len(rows)} Firework(s)",
        )
        if res.skipped:
            OUT.table(
                [(s.fw_id, s.state, s.reason) for s in res.skipped],
                ["fw_id", "state", "skipped because"],
                title=f"{len(res.skipped)} target(s) left as they are",
            )
        extra = f", {len(res.archived)} launch(es) archived" if res.archived else ""
        OUT.text(
            f"{res.command}: {len(rows)} Firework(s) changed{extra}."
            + (" Dry run: nothing was written." if dry else "")
        )

    return show


# -- rerun_fws -----------------------------------------------------------------------------------
TaskLevelOpt = Annotated[
    bool,
    typer.Option(
        "--task-level",
        "--task_level",
        help="Rerun only from the Firetask that failed, using the checkpoint stored in the "
        "launch (spec._recovery). Later plain reruns keep the recovery.",
    ),
]
LaunchIdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-lid",
        "--launch_id",
        "--launch-id",
        help="With --task-level: the launch to recover for each selected Firework (same "
        "number as Fireworks; repeat the option or give a comma list). Default: the last.",
    ),
]
CopyDataOpt = Annotated[
    bool,
    typer.Option(
        "-cp",
        "--copy-data",
        "--copy_data",
        help="With --task-level: copy the previous launch directory into the new one "
        "(same filesystem).",
    ),
]
PrevDirOpt = Annotated[
    bool,
    typer.Option(
        "-pd",
        "--previous-dir",
        "--previous_dir",
        help="With --task-level: rerun in the previous launch directory (sets spec._launch_dir). "
        "Exclusive with -cp.",
    ),
]
ClearRecoveryOpt = Annotated[
    bool,
    typer.Option(
        "--clear-recovery",
        "--clear_recovery",
        help="Remove spec._recovery (and the _launch_dir that --previous-dir set) so the "
        "Firework starts from scratch.",
    ),
]
ExceptDetailsOpt = Annotated[
    bool | None,
    typer.Option(
        "--except-details/--no-except-details",
        help="Copy a FIZZLED Firework's exception _details into spec._exception_details "
        "(FireWorks' EXCEPT_DETAILS_ON_RERUN; default from "
        "$PREFECT_INTEGRATIONS_FIREWORKS_EXCEPT_DETAILS_ON_RERUN, else off).",
        show_default=False,
    ),
]

RERUN_HELP = (
    "Rerun Fireworks: archive their launches and those of all their children.\n\n"
    "Rerunning a Firework moves all its launches to archived_launches and does the same "
    "for all its children (not its parents), reached through children that are not "
    "WAITING, including DEFUSED and PAUSED ones. The Firework becomes READY (WAITING if a "
    "parent is not COMPLETED); the children become WAITING. Archived launches stay "
    "readable (lpad get_fws -d all) and do not affect operation.\n\n"
    "WARNING: a rerun does not undo the dynamic actions the Firework took: Fireworks it "
    "added stay (and are added again when it completes again), and specs it modified in "
    "its children stay modified (a _push is applied again).\n\n"
    "Targets: -i (one id or a comma list), or -n/-s/-q (combinable); -lm runs -q/-s on the "
    "launches collection, e.g. to rerun by stack trace:\n\n"
    '  lpad rerun_fws -lm -q \'{"action.stored_data._exception._stacktrace": {"$regex": "My error"}}\'\n\n'  # noqa: E501
    "The same selectors work with lpad get_fws, to preview. Common use: lpad rerun_fws -s "
    "FIZZLED. ARCHIVED and DEFUSED targets are left untouched, WAITING targets are "
    "skipped.\n\n"
    "--task-level reruns only the failed Firetasks of a cleanly failed Firework, from the "
    "failure data stored in the launch (-lid picks the launch, default the last; -cp "
    "copies the previous directory's files into the new one; -pd reruns in the previous "
    "directory). It writes spec._recovery; later plain reruns keep it and restart at the "
    "task level too, until --clear-recovery removes it.\n\n"
    "More than 10 Fireworks: you are asked to confirm, unless --password is today's date "
    "(YYYY-MM-DD). --dry-run prints the plan (states before and after, launches to "
    "archive) and writes nothing. Any bad input: one-line error, exit 2, nothing written."
)


@command(app, "rerun_fws", help=RERUN_HELP)
def rerun_fws(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    launches_mode: LaunchesModeOpt = False,
    password: PasswordOpt = None,
    task_level: TaskLevelOpt = False,
    launch_id: LaunchIdOpt = None,
    copy_data: CopyDataOpt = False,
    previous_dir: PrevDirOpt = False,
    clear_recovery: ClearRecoveryOpt = False,
    except_details: ExceptDetailsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    sel = _selector(fw_id, name, state, query, launches_mode)
    lids = _parse_launch_ids(launch_id)
    # Options first (no database needed), then the selection, then the plan.
    mode = validate_options(
        sel.fw_ids or ([0] * len(lids) if lids else []),
        task_level,
        None,
        None,
        clear_recovery,
        copy_data,
        previous_dir,
    )
    if lids and not task_level:
        raise UsageError(
            "-lid/--launch_id, -cp/--copy-data and -pd/--previous-dir need --task-level"
        )
    lp = STATE.launchpad()
    ids = sel.resolve(lp)
    if not ids:
        OUT.info("No Fireworks match the selection: nothing to rerun.")
        if as_json:
            OUT.json({"targets": [], "rerun": [], "entries": [], "skipped": []})
        return

    def plan() -> RerunPlan:
        return plan_rerun(
            lp,
            ids,
            task_level=task_level,
            launch_ids=lids,
            recover_mode=mode,
            clear_recovery=clear_recovery,
            except_details=except_details,
        )

    apply_to_selected(
        title="Rerunning",
        n_targets=len(ids),
        plan=plan,
        apply=lambda p, adv: apply_rerun(lp, p, adv),
        total=lambda p: len(p.entries) or len(p.targets),
        summarise=_rerun_summary(as_json),
        password=password,
        dry_run=dry_run,
        as_json=as_json,
    )


# -- Firework and workflow operations ------------------------------------------------------------
def _run_fw_op(
    command_name: str,
    op: cmds.Op,
    sel: Selector,
    password: str | None,
    dry_run: bool,
    as_json: bool,
    *,
    workflows: bool = False,
) -> None:
    lp = STATE.launchpad()
    ids = cmds.resolve_wf_ids(lp, sel) if workflows else sel.resolve(lp)
    if not ids:
        OUT.info("Nothing matches the selection.")
        return
    apply_to_selected(
        title=command_name,
        n_targets=len(ids),
        plan=lambda: cmds.run_op(lp, command_name, ids, op, True, load_all=workflows),
        apply=lambda p, adv: cmds.run_op(
            lp, command_name, ids, op, False, progress=adv, load_all=workflows
        ),
        total=lambda p: len(ids),
        summarise=_op_summary(as_json),
        password=password,
        dry_run=dry_run,
        as_json=as_json,
    )


@command(app, "defuse_fws")
def defuse_fws(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    launches_mode: LaunchesModeOpt = False,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Defuse Fireworks: they and their descendants will not run until reignited.

    COMPLETED, RUNNING and RESERVED Fireworks are rerun first (launches archived, children
    reset), then defused; ARCHIVED ones cannot be defused.
    """
    sel = _selector(fw_id, name, state, query, launches_mode)
    _run_fw_op("defuse_fws", cmds.op_defuse, sel, password, dry_run, as_json)


@command(app, "reignite_fws")
def reignite_fws(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    launches_mode: LaunchesModeOpt = False,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Reignite DEFUSED Fireworks (WAITING, READY once their parents are COMPLETED)."""
    sel = _selector(fw_id, name, state, query, launches_mode)
    _run_fw_op("reignite_fws", cmds.op_reignite, sel, password, dry_run, as_json)


@command(app, "pause_fws")
def pause_fws(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    launches_mode: LaunchesModeOpt = False,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pause WAITING, READY or RESERVED Fireworks (resume with resume_fws)."""
    sel = _selector(fw_id, name, state, query, launches_mode)
    _run_fw_op("pause_fws", cmds.op_pause, sel, password, dry_run, as_json)


@command(app, "resume_fws")
def resume_fws(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    launches_mode: LaunchesModeOpt = False,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Resume PAUSED Fireworks."""
    sel = _selector(fw_id, name, state, query, launches_mode)
    _run_fw_op("resume_fws", cmds.op_resume, sel, password, dry_run, as_json)


WF_SELECT_NOTE = "-i names any Firework of the workflow; -n, -s and -q match the workflow."


@command(app, "defuse_wflows", "defuse_wfs", "defuse-wfs")
def defuse_wflows(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Defuse whole workflows (every Firework; COMPLETED ones are rerun first).

    Unlike FireWorks 2.1.4's lpad (which pauses by mistake), this really defuses.
    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    _run_fw_op(
        "defuse_wflows", cmds.op_defuse_wf(True), sel, password, dry_run, as_json, workflows=True
    )


@command(app, "pause_wflows", "pause_wfs", "pause-wfs")
def pause_wflows(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pause whole workflows (every WAITING, READY or RESERVED Firework).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    _run_fw_op("pause_wflows", cmds.op_pause_wf, sel, password, dry_run, as_json, workflows=True)


@command(app, "reignite_wflows", "reignite_wfs", "reignite-wfs")
def reignite_wflows(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Reignite whole workflows (every DEFUSED Firework).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    _run_fw_op(
        "reignite_wflows", cmds.op_reignite_wf, sel, password, dry_run, as_json, workflows=True
    )


@command(app, "archive_wflows", "archive_wfs", "archive-wfs")
def archive_wflows(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Archive whole workflows: launches archived, every Firework ARCHIVED. Irreversible
    from the command line (rerun and reignite leave ARCHIVED Fireworks alone).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    _run_fw_op(
        "archive_wflows", cmds.op_archive_wf, sel, password, dry_run, as_json, workflows=True
    )


@command(app, "delete_wflows", "delete_wfs", "delete-wfs")
def delete_wflows(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
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
    sel = _selector(fw_id, name, state, query)
    lp = STATE.launchpad()
    ids = cmds.resolve_wf_ids(lp, sel)
    if not ids:
        OUT.info("Nothing matches the selection.")
        return

    def show(res: cmds.OpResult, dry: bool) -> None:
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
        plan=lambda: cmds.delete_wflows(lp, ids, ldirs, dry_run=True),
        apply=lambda p, adv: cmds.delete_wflows(lp, ids, ldirs, progress=adv),
        total=lambda p: len(ids),
        summarise=show,
        password=password,
        dry_run=dry_run,
        as_json=as_json,
    )


@command(app, "detect_lostruns")
def detect_lostruns(
    time_: Annotated[
        float,
        typer.Option(
            "--time", help="Seconds without a heartbeat after which a RUNNING launch is lost."
        ),
    ] = 4 * 3600,
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
    res = cmds.detect_lostruns(
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
    if as_json:
        OUT.json(res.to_dict())
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


# -- admin ---------------------------------------------------------------------------------------
@command(admin_app, "unlock")
def admin_unlock(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Remove the lock of workflows, whoever holds it (after a killed process).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    lp = STATE.launchpad()
    ids = cmds.resolve_wf_ids(lp, sel)
    confirm_mass(len(ids), password, asker())
    unlocked = cmds.unlock_wflows(lp, ids)
    OUT.text(f"Finished unlocking {len(ids)} workflow(s); {len(unlocked)} were locked.")


@command(admin_app, "refresh")
def admin_refresh(
    fw_id: FwIdsOpt = None,
    name: NameOpt = None,
    state: StateOpt = None,
    query: QueryOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Recompute workflow states from their launches (e.g. after a lock stopped a refresh).

    -i names any Firework of the workflow; -n, -s and -q match the workflow.
    """
    sel = _selector(fw_id, name, state, query)
    lp = STATE.launchpad()
    ids = cmds.resolve_wf_ids(lp, sel)
    confirm_mass(len(ids), password, asker())
    changed = cmds.refresh_wflows(lp, ids)
    OUT.text(f"Finished refreshing {len(ids)} workflow(s); {len(changed)} state change(s).")


@command(admin_app, "tuneup")
def admin_tuneup(
    full: Annotated[
        bool, typer.Option("--full", help="Accepted for FireWorks compatibility (no compaction).")
    ] = False,
) -> None:
    """(Re)create the LaunchPad's indexes."""
    cmds.tuneup(STATE.launchpad())
    OUT.text("Indexes are up to date.")
