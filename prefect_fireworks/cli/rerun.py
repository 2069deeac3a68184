"""``lpad rerun_fws``: parse the options, call the operations layer once
(:func:`prefect_fireworks.ops.rerun.execute_rerun`), present the plan or result."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.apply import (
    TABLE_MAX_ROWS,
    confirmer,
    grouped,
    id_list,
    progress_bar,
    table_or_counts,
)
from prefect_fireworks.cli.beyond import ReasonOpt, invocation
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    DryRunOpt,
    JsonOpt,
    PasswordOpt,
    Selection,
    UsageError,
    command,
    selection_options,
)
from prefect_fireworks.ops.audit import Actor
from prefect_fireworks.ops.plan_token import plan_document, read_plan_file
from prefect_fireworks.ops.rerun import RerunPlan, RerunRequest, execute_rerun


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


# -- summary --------------------------------------------------------------------------------------
def _entry_summary(plan: RerunPlan) -> list[str]:
    """One line per role and one per state change, with their fw_ids."""
    return [
        *grouped((e.role, e.fw_id) for e in plan.entries),
        *grouped((f"{e.state_before} -> {e.state_after}", e.fw_id) for e in plan.entries),
    ]


def _restart(rec: dict[str, Any]) -> str:
    mode = rec.get("_mode") or "new directory"
    return f"restart at Firetask {rec.get('_task_n')} of their launch (mode: {mode})"


def _rerun_summary(as_json: bool) -> Callable[[RerunPlan, bool], None]:
    def show(plan: RerunPlan, dry: bool) -> None:
        if as_json:
            d = plan.to_dict()
            d["dry_run"] = dry
            OUT.json(d)
            return
        head = "Would rerun" if dry else "Reran"
        title = f"{head} {len(plan.rerun_ids)} Firework(s)"
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
        cols = ["fw_id", "name", "role", "state", "archived", "recovery"]
        table_or_counts(title, cols, rows, lambda: _entry_summary(plan))
        # A target that an earlier target already reset is listed once, with the Fireworks
        # reset, not again as "left alone" (in a dry run it is still COMPLETED in the database).
        reset_ids = {e.fw_id for e in plan.entries}
        left = [s for s in plan.skipped if s.fw_id not in reset_ids]
        covered = [s.fw_id for s in plan.skipped if s.fw_id in reset_ids]
        if covered:
            OUT.text(
                f"Target(s) {id_list(covered)}: reset as descendants of earlier targets "
                "(rerun in order, as FireWorks does)."
            )
        if left:
            table_or_counts(
                f"{len(left)} target(s) left as they are",
                ["fw_id", "state", "skipped because", "recovery"],
                [(s.fw_id, s.state, s.reason, s.recovery or "") for s in left],
                lambda: grouped((s.reason, s.fw_id) for s in left),
            )
        if len(plan.recovery) <= TABLE_MAX_ROWS:
            for fid, rec in plan.recovery.items():
                OUT.text(
                    f"fw_id {fid}: restarts at Firetask {rec.get('_task_n')} from launch "
                    f"{rec.get('_launch_id')} (mode: {rec.get('_mode') or 'new directory'})"
                )
        else:
            pairs = [(_restart(rec), fid) for fid, rec in plan.recovery.items()]
            for line in grouped(pairs):
                OUT.text(line)
        verb = "would be archived" if dry else "archived"
        OUT.text(
            f"{len(plan.entries)} Firework(s) reset, {plan.n_archived} launch(es) {verb}."
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
        "(FireWorks' EXCEPT_DETAILS_ON_RERUN; default: off, or the environment variable "
        "EXCEPT_DETAILS_ON_RERUN with the prefix PREFECT_INTEGRATIONS_FIREWORKS_).",
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
    "archive) and writes nothing. Any bad input: one-line error, exit 2, nothing written.\n\n"
    "Beyond FireWorks: --signature SIG reruns one group of lpad errors; --roots-only keeps "
    "only FIZZLED Fireworks with no FIZZLED ancestor (their descendants follow); --plan-out "
    "FILE writes the plan and its token instead of rerunning, --apply FILE reruns exactly that "
    "plan and refuses if what it covers changed; --reason is recorded with the rerun "
    "(rerun_history; undo with lpad restore_launch)."
)

SignatureOpt = Annotated[
    str | None,
    typer.Option(
        "--signature",
        help="Rerun the Fireworks whose latest failure has this error signature (lpad errors; "
        "4+ digits). Alone, it selects among FIZZLED Fireworks.",
    ),
]
RootsOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--roots-only",
        "--roots_only",
        help="Only FIZZLED Fireworks with no FIZZLED ancestor (root causes); the rerun resets "
        "their descendants anyway.",
    ),
]
PlanOutOpt = Annotated[
    str | None,
    typer.Option(
        "--plan-out",
        "--plan_out",
        help="Write the plan and its token to this JSON file; rerun nothing.",
    ),
]
ApplyOpt = Annotated[
    str | None,
    typer.Option(
        "--apply",
        help="Rerun exactly the plan in this file (from --plan-out); refused, nothing written, "
        "if the Fireworks it covers changed since. No selection or rerun options with it.",
    ),
]


@command(app, "rerun_fws", help=RERUN_HELP)
@selection_options()
def rerun_fws(
    ctx: typer.Context,
    sel: Selection,
    password: PasswordOpt = None,
    task_level: TaskLevelOpt = False,
    launch_id: LaunchIdOpt = None,
    copy_data: CopyDataOpt = False,
    previous_dir: PrevDirOpt = False,
    clear_recovery: ClearRecoveryOpt = False,
    except_details: ExceptDetailsOpt = None,
    signature: SignatureOpt = None,
    roots_only: RootsOnlyOpt = False,
    reason: ReasonOpt = None,
    plan_out: PlanOutOpt = None,
    apply: ApplyOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    actor = Actor.current(invocation(ctx), reason)
    if apply is not None:
        given = [launch_id, signature, plan_out, except_details]
        flags = [sel.launches_mode, task_level, copy_data, previous_dir, clear_recovery, roots_only]
        if sel.given or any(v is not None for v in given) or any(flags):
            raise UsageError(
                "--apply takes the selection and options from the plan file: give only "
                "--apply FILE (with --reason, --password, --dry-run, --json)"
            )
        pinned = read_plan_file(apply)
        out = execute_rerun(
            STATE.launchpad(),
            None,
            dry_run=dry_run,
            confirm=confirmer(password),
            progress=progress_bar("Rerunning", as_json),
            actor=actor,
            pinned=pinned,
        )
        assert out.final is not None
        _rerun_summary(as_json)(out.final, dry_run)
        return
    # Options are checked (no database needed) when the request is built; then one call.
    request = RerunRequest.build(
        fw_ids=sel.fw_id,
        name=sel.name,
        state=sel.state,
        query=sel.query,
        launches_mode=sel.launches_mode,
        task_level=task_level,
        launch_ids=_parse_launch_ids(launch_id),
        copy_data=copy_data,
        previous_dir=previous_dir,
        clear_recovery=clear_recovery,
        except_details=except_details,
        signature=signature,
        roots_only=roots_only,
    )
    out = execute_rerun(
        STATE.launchpad(),
        request,
        dry_run=dry_run or plan_out is not None,
        confirm=confirmer(password),
        progress=progress_bar("Rerunning", as_json),
        actor=actor,
    )
    if plan_out is not None:
        _write_plan(plan_out, out, actor, as_json)
        return
    if out.final is None:
        OUT.info("No Fireworks match the selection: nothing to rerun.")
        if as_json:
            OUT.json({"targets": [], "rerun": [], "entries": [], "skipped": []})
        return
    _rerun_summary(as_json)(out.final, dry_run)
    _warn_missing_previous_dirs(out.final)


def _warn_missing_previous_dirs(result: RerunPlan) -> None:
    """--copy-data/--previous-dir read the old launch directory when the Firework runs again:
    say so now when it is not on this machine (the rerun launch would fizzle)."""
    import os

    for fw_id, rec in sorted(result.recovery.items()):
        prev, mode = rec.get("_prev_dir"), rec.get("_mode")
        if mode in ("cp", "prev_dir") and prev and not os.path.isdir(prev):
            flag = "--copy-data" if mode == "cp" else "--previous-dir"
            OUT.info(
                f"Warning: Firework {fw_id}: its previous launch directory {prev} does not "
                f"exist on this machine; {flag} needs it on the host that runs the Firework "
                "(shared storage), or the rerun launch fizzles saying so."
            )


def _write_plan(path: str, out: Any, actor: Actor, as_json: bool) -> None:
    """``--plan-out``: the plan, its token and who made it, as JSON (nothing rerun)."""
    if out.plan is None or out.token is None:
        raise UsageError("No Fireworks match the selection: no plan written.")
    doc = plan_document(out.pinned(), out.plan.to_dict(), actor.to_record())
    try:
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=2, default=str)
            fh.write("\n")
    except OSError as exc:
        raise UsageError(f"cannot write plan file {path}: {exc.strerror or exc}") from None
    if as_json:
        OUT.json({**out.plan.to_dict(), "token": out.token, "plan_file": path, "dry_run": True})
        return
    _rerun_summary(False)(out.plan, True)
    OUT.text(f"Plan written to {path} (token {out.token[:19]}…). Apply it with:")
    OUT.text(f"  lpad rerun_fws --apply {path}")
