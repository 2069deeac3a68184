"""``lpad errors`` and ``lpad restore_launch``: what FireWorks' lpad does not have.

- ``errors``: failed Fireworks grouped by error signature (:mod:`prefect_fireworks.ops.signatures`),
  root failures marked; ``lpad rerun_fws --signature SIG`` reruns one group.
- ``restore_launch``: undo a rerun (:mod:`prefect_fireworks.ops.restore`).

Also :func:`invocation`, the command line recorded as the ``command`` of a rerun record.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    DryRunOpt,
    JsonOpt,
    Selection,
    UsageError,
    command,
    selection_options,
)
from prefect_fireworks.core import states as st
from prefect_fireworks.ops.audit import Actor
from prefect_fireworks.ops.restore import apply_restore, plan_restore
from prefect_fireworks.ops.selection import Selector
from prefect_fireworks.ops.signatures import error_groups

ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", help="Why (recorded with the operation, shown by get_fws -d all)."),
]


def invocation(ctx: typer.Context | None) -> str:
    """The current ``lpad`` command as a command line (options given, long names)."""
    if ctx is None:
        return "lpad"
    parts = ctx.command_path.split()
    if parts:
        parts[0] = "lpad"
    for param in ctx.command.params:
        if getattr(param, "param_type_name", "") != "option" or param.name is None:
            continue
        value = ctx.params.get(param.name)
        if value is None or value is False or value == () or value == []:
            continue
        if param.name == "password":
            value = "****"
        flag = max(param.opts, key=len)
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts.extend(f"{flag} {shlex.quote(str(v))}" for v in value)
        else:
            parts.append(f"{flag} {shlex.quote(str(getattr(value, 'value', value)))}")
    return " ".join(parts)


ERRORS_HELP = (
    "Group failed Fireworks by error signature: the exception type, its message with numbers, "
    "paths and ids masked, and the innermost frames of the stack trace.\n\n"
    "Each Firework counts once, with its latest FIZZLED active launch. For each signature: "
    "how many Fireworks, how many of them are root failures (FIZZLED with no FIZZLED "
    "ancestor; the others fizzled in the cascade), first and last seen, example Fireworks "
    "(* marks roots). Select with -i/-n/-s/-q/-lm as get_fws does; default: -s FIZZLED.\n\n"
    "Rerun one group with: lpad rerun_fws --signature SIG (add --roots-only to rerun only its "
    "roots; their descendants follow)."
)


@command(app, "errors", help=ERRORS_HELP)
@selection_options()
def errors(
    options: Selection,
    examples: Annotated[
        int, typer.Option("--examples", min=0, help="Example fw_ids shown per signature.")
    ] = 5,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace", help="Also print the innermost frames and the end of one stack trace."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    sel = options.selector()
    if sel.is_empty:
        sel = Selector(state=st.FIZZLED)
    lp = STATE.launchpad()
    groups = error_groups(lp, sel.resolve(lp))
    if as_json:
        OUT.json([g.to_dict(examples) for g in groups])
        return
    if not groups:
        OUT.info("No failed launches in the selection.")
        return
    rows = []
    for g in groups:
        shown = [f"{i}*" if i in g.roots else str(i) for i in g.fw_ids[:examples]]
        if g.count > examples:
            shown.append("…")
        rows.append(
            (
                g.signature.sig_id,
                g.count,
                len(g.roots),
                g.signature.title,
                f"{g.first_seen or '?'} .. {g.last_seen or '?'}",
                ", ".join(shown),
            )
        )
    OUT.table(
        rows,
        ["signature", "count", "roots", "error", "first .. last seen", "Fireworks (* root)"],
        title=f"{sum(g.count for g in groups)} failed Firework(s), {len(groups)} signature(s)",
    )
    if trace:
        for g in groups:
            frames = " <- ".join(reversed(g.signature.frames)) or "-"
            OUT.text(f"\n{g.signature.sig_id} (innermost frames: {frames}):\n{g.example}")
    OUT.text("Rerun a group: lpad rerun_fws --signature SIG [--roots-only]")


RESTORE_HELP = (
    "Undo a rerun: bring the launches it archived back as the active ones and put the "
    "Firework and its descendants back in the states (and spec) they had before it.\n\n"
    "Which rerun: with --launch_id, the one that archived that launch (also when this "
    "Firework was reset as a descendant of another Firework's rerun); without, the latest "
    "rerun of this Firework not restored yet. Reruns are undone newest first.\n\n"
    "Refused, with the reason and nothing written, when a Firework of the rerun has run or "
    "changed state since, or the rerun was recorded by FireWorks' lpad or an older version "
    "(no undo record). The rerun record (get_fws -d all: rerun_history) is marked restored."
)


@command(app, "restore_launch", help=RESTORE_HELP)
def restore_launch(
    ctx: typer.Context,
    fw_id: Annotated[
        int | None, typer.Option("-i", "--fw_id", "--fw-id", help="The Firework that was rerun.")
    ] = None,
    launch_id: Annotated[
        int | None,
        typer.Option(
            "-lid",
            "--launch_id",
            "--launch-id",
            help="An archived launch: undo the rerun that archived it.",
        ),
    ] = None,
    reason: ReasonOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    if fw_id is None:
        raise UsageError("give the Firework with -i FW_ID")
    lp = STATE.launchpad()
    plan = plan_restore(lp, fw_id, launch_id)
    if not dry_run:
        plan = apply_restore(lp, plan, Actor.current(invocation(ctx), reason))
    if as_json:
        OUT.json({**plan.to_dict(), "dry_run": dry_run})
        return
    head = "Would restore" if dry_run else "Restored"
    OUT.table(
        [
            (
                f.fw_id,
                f.role,
                f"{f.state_now} -> {f.state_after}",
                ",".join(map(str, f.launches)) or "-",
                ", ".join([*f.spec_before, *(f"-{k}" for k in f.spec_unset)]) or "",
            )
            for f in plan.fireworks
        ],
        ["fw_id", "role", "state", "active launches again", "spec keys"],
        title=f"{head} the rerun of fw_id {plan.fw_id} at {plan.rerun_at} by {plan.rerun_by}",
    )
    OUT.text(
        f"{len(plan.fireworks)} Firework(s), {plan.n_launches} launch(es) made active again."
        + (" Dry run: nothing was written." if dry_run else "")
    )
