"""``lpad rerun_fws``: parse the options, call the operations layer once
(:func:`prefect_fireworks.ops.rerun.execute_rerun`), present the plan or result."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.apply import confirmer, progress_bar
from prefect_fireworks.cli.beyond import ReasonOpt, invocation
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
    command,
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
#: Above this many Fireworks a rerun prints counts instead of one table row per Firework
#: (--json always lists every one).
TABLE_MAX_ROWS = 20


def _id_list(ids: Sequence[int], limit: int = 12) -> str:
    """``1, 2, 3`` or, for many, ``1, 2, ... 300 (300 ids)``."""
    ids = sorted(ids)
    if len(ids) <= limit:
        return ", ".join(map(str, ids))
    return f"{', '.join(map(str, ids[: limit - 1]))}, ... {ids[-1]} ({len(ids)} ids)"


def _entry_summary(plan: RerunPlan) -> list[str]:
    """One line per role and one per state change, with their fw_ids."""
    lines = []
    by_role: dict[str, list[int]] = {}
    by_change: dict[str, list[int]] = {}
    for e in plan.entries:
        by_role.setdefault(e.role, []).append(e.fw_id)
        by_change.setdefault(f"{e.state_before} -> {e.state_after}", []).append(e.fw_id)
    for role, ids in by_role.items():
        lines.append(f"{role}: {len(ids)} ({_id_list(ids)})")
    for change, ids in sorted(by_change.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{change}: {len(ids)}")
    lines.append("(--json lists every Firework and the launches it archives)")
    return lines


def _rerun_summary(as_json: bool) -> Callable[[RerunPlan, bool], None]:
    def show(plan: RerunPlan, dry: bool) -> None:
        if as_json:
            d = plan.to_dict()
            d["dry_run"] = dry
            OUT.json(d)
            return
        head = "Would rerun" if dry else "Reran"
        title = f"{head} {len(plan.rerun_ids)} Firework(s)"
        if len(plan.entries) <= TABLE_MAX_ROWS:
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
            OUT.table(rows, cols, title=title)
        else:
            OUT.text(title + ":")
            for line in _entry_summary(plan):
                OUT.text(f"  {line}")
        # A target that an earlier target already reset is listed once, with the Fireworks
        # reset, not again as "left alone" (in a dry run it is still COMPLETED in the database).
        reset_ids = {e.fw_id for e in plan.entries}
        left = [s for s in plan.skipped if s.fw_id not in reset_ids]
        covered = [s.fw_id for s in plan.skipped if s.fw_id in reset_ids]
        if covered:
            OUT.text(
                f"Target(s) {_id_list(covered)}: reset as descendants of earlier targets "
                "(rerun in order, as FireWorks does)."
            )
        if left and len(left) <= TABLE_MAX_ROWS:
            OUT.table(
                [(s.fw_id, s.state, s.reason, s.recovery or "") for s in left],
                ["fw_id", "state", "skipped because", "recovery"],
                title=f"{len(left)} target(s) left as they are",
            )
        elif left:
            reasons = Counter(s.reason for s in left)
            OUT.text(f"{len(left)} target(s) left as they are:")
            for reason, n in reasons.most_common():
                ids = [s.fw_id for s in left if s.reason == reason]
                OUT.text(f"  {reason}: {n} ({_id_list(ids)})")
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
def rerun_fws(
    ctx: typer.Context,
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
        given = [fw_id, name, state, query, launch_id, signature, plan_out]
        flags = [launches_mode, task_level, copy_data, previous_dir, clear_recovery, roots_only]
        if any(v is not None for v in given) or any(flags) or except_details is not None:
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
        fw_ids=fw_id,
        name=name,
        state=state,
        query=query,
        launches_mode=launches_mode,
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
