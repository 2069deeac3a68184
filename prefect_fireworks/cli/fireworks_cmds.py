"""FireWorks' everyday commands, with FireWorks' flags: ``update_fws``, ``set_priority``,
``append_wflow``, ``dump_wflow``, ``report``, ``introspect``; and a one-line answer for the
commands Prefect replaces (``webgui``, ``qlaunch``, ``get_qids``, ...).

The logic is in :mod:`prefect_fireworks.ops.specs`, :mod:`prefect_fireworks.ops.wf_files` and
:mod:`prefect_fireworks.ops.report`; these commands parse, confirm and print.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.apply import confirmer
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    JsonOpt,
    PasswordOpt,
    Selection,
    UsageError,
    command,
    fail,
    selection_options,
)
from prefect_fireworks.ops import report as rp
from prefect_fireworks.ops.selection import parse_fw_ids, parse_query
from prefect_fireworks.ops.specs import check_spec_update, set_priority, update_fws
from prefect_fireworks.ops.wf_files import append_wflow, dump_wflow
from prefect_fireworks.ops.workflows import resolve_wf_ids


def _selected(sel: Selection, workflows: bool = False) -> list[int]:
    """The selected fw_ids; with ``workflows``, one fw_id per selected workflow (-n/-s/-q then
    match workflow documents, as FireWorks' -wf does)."""
    if not sel.given:
        raise UsageError("select Fireworks with -i, -n, -s or -q ('{}' selects all)")
    lp = STATE.launchpad()
    return resolve_wf_ids(lp, sel.selector()) if workflows else sel.selector().resolve(lp)


@command(app, "update_fws")
@selection_options()
def update_fws_cmd(
    update: Annotated[
        str,
        typer.Option(
            "-u",
            "--update",
            help='Spec update as JSON, e.g. \'{"_tasks.1.hello": "world"}\' sets '
            "spec._tasks.1.hello.",
        ),
    ],
    sel: Selection,
    mongo: Annotated[
        bool,
        typer.Option(
            "--mongo",
            help="The update is a MongoDB update document of the Firework (fields under "
            'spec only), e.g. \'{"$unset": {"spec._priority": 1}}\'.',
        ),
    ] = False,
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Update the specs of Fireworks that have not run or that failed (FireWorks' update_fws).

    Only READY, WAITING, FIZZLED, DEFUSED and PAUSED Fireworks change; the others are listed on
    stderr (rerun them first). More than 10 Fireworks: confirm, or --password today's date.
    """
    try:
        doc = json.loads(update)
    except json.JSONDecodeError as exc:
        raise UsageError(f"-u is not valid JSON: {exc.msg}") from None
    check_spec_update(doc, mongo)
    ids = _selected(sel)
    if not ids:
        OUT.info("Nothing matches the selection.")
        return
    confirmer(password)(len(ids))
    result = update_fws(STATE.launchpad(), ids, doc, mongo)
    for fid, fw_state in result.refused:
        OUT.info(f"Cannot update spec of fw_id: {fid} with state: {fw_state}. Try rerunning first.")
    if as_json:
        OUT.json(result.to_dict())
    else:
        OUT.text(
            f"Updated the spec of {len(result.updated)} Firework(s)"
            + (f": {', '.join(map(str, result.updated))}" if result.updated else "")
        )


@command(app, "set_priority")
@selection_options()
def set_priority_cmd(
    priority: Annotated[int, typer.Argument(help="The priority (spec._priority).")],
    sel: Selection,
    password: PasswordOpt = None,
    whole_workflows: Annotated[
        bool,
        typer.Option(
            "-wf",
            help="Set it for every Firework of the selected workflows (-n/-s/-q then match "
            "workflows, -i any of their Fireworks).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set the priority (spec._priority) of Fireworks: higher runs first."""
    ids = _selected(sel, whole_workflows)
    if not ids:
        OUT.info("Nothing matches the selection.")
        return
    confirmer(password)(len(ids))
    done = set_priority(STATE.launchpad(), ids, priority, whole_workflows)
    if as_json:
        OUT.json({"priority": priority, "fw_ids": done})
    else:
        OUT.text(f"Finished setting priorities of {len(done)} FWs")


@command(app, "append_wflow", "append_wf")
def append_wflow_cmd(
    fw_id: Annotated[
        str, typer.Option("-i", "--fw_id", help="Parent Firework id(s), e.g. 3 or 3,4.")
    ],
    wf_file: Annotated[
        str, typer.Option("-f", "--wf_file", help="A Firework or workflow file (YAML or JSON).")
    ],
    detour: Annotated[
        bool,
        typer.Option(
            "-d",
            "--detour",
            help="Append as a detour: the new leaves take over the parents' children.",
        ),
    ] = False,
    no_pull_spec_mods: Annotated[
        bool,
        typer.Option(
            "--no_pull_spec_mods",
            "--no-pull-spec-mods",
            help="Do not give the new roots the parents' update_spec/mod_spec.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Append the workflow of a file below existing Fireworks (FireWorks' append_wflow)."""
    parents = parse_fw_ids(fw_id) or []
    new_ids = sorted(
        append_wflow(
            STATE.launchpad(),
            parents,
            wf_file,
            detour=detour,
            pull_spec_mods=not no_pull_spec_mods,
        )
    )
    if as_json:
        OUT.json({"parents": parents, "fw_ids": new_ids})
    else:
        OUT.text(
            f"Appended {wf_file} below fw_id(s) {', '.join(map(str, parents))}: "
            f"new fw_ids {', '.join(map(str, new_ids))}"
        )


@command(app, "dump_wflow", "dump_wf")
def dump_wflow_cmd(
    fw_id: Annotated[int, typer.Option("-i", "--fw_id", help="Any fw_id of the workflow.")],
    wf_file: Annotated[
        str,
        typer.Option("-f", "--wf_file", help="File to write (.json: JSON, else YAML)."),
    ],
) -> None:
    """Write a workflow to a file in FireWorks' format (FireWorks' dump_wflow)."""
    path = dump_wflow(STATE.launchpad(), fw_id, wf_file)
    OUT.text(f"Wrote the workflow of fw_id {fw_id} to {path}")


@command(app, "report")
def report_cmd(
    collection: Annotated[
        str,
        typer.Option("-c", "--collection", help="fws (default), wflows or launches."),
    ] = "fws",
    interval: Annotated[
        str,
        typer.Option("-i", "--interval", help="minutes, hours, days (default), months or years."),
    ] = "days",
    num_intervals: Annotated[
        int,
        typer.Option(
            "-n", "--num_intervals", help="How many intervals back (default 5; 0: all time)."
        ),
    ] = 5,
    query: Annotated[
        str | None,
        typer.Option("-q", "--query", help="An extra MongoDB filter (JSON)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts by state for each of the last N intervals, with C/(C+F) (FireWorks' report)."""
    stats = rp.report(STATE.launchpad(), collection, interval, num_intervals, parse_query(query))
    if as_json:
        OUT.json([s.to_dict() for s in stats])
    else:
        OUT.text(rp.report_text(stats, collection))


@command(app, "introspect")
def introspect_cmd(
    max_: Annotated[
        int, typer.Option("-m", "--max", help="Look at the latest N results (default 100).")
    ] = 100,
    threshold: Annotated[
        float,
        typer.Option(
            "-t",
            "--threshold",
            help="Minimum difference, in percentage points, between the share of COMPLETED "
            "and of FIZZLED documents with a key (default 10).",
        ),
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Which spec keys, Firetasks, metadata and stack traces go with failures (FireWorks'
    introspect).

    Each key:value is counted in the latest COMPLETED and FIZZLED documents; %C - %F very
    negative means it is mostly seen in failures.
    """
    lp = STATE.launchpad()
    reports: dict[str, Any] = {}
    for what in ("launches", "tasks", "fws", "wflows"):
        rows = rp.introspect(lp, what, limit=max_, threshold=threshold)
        if as_json:
            reports[what] = [r.to_dict() for r in rows]
        else:
            OUT.text(rp.introspect_text(rows, what) + "\n")
    if as_json:
        OUT.json(reports)


# -- commands Prefect replaces ------------------------------------------------------------------
REPLACED = {
    "webgui": "the Prefect UI shows every run (prefect server start); lpad get_fws and "
    "lpad get_wflows show the LaunchPad",
    "qlaunch": "Prefect work pools and workers submit jobs: lpad deploy, then prefect worker "
    "start --pool POOL",
    "get_qids": "queue jobs are Prefect flow runs on work pools: prefect flow-run ls",
    "cancel_qid": "cancel the Prefect flow run instead: prefect flow-run cancel ID",
    "detect_unreserved": "nothing is reserved in a queue here; lpad detect_lostruns finds runs "
    "that stopped",
    "recover_offline": "offline mode is not supported: every launch reports to the LaunchPad",
    "forget_offline": "offline mode is not supported: every launch reports to the LaunchPad",
    "init": "no my_launchpad.yaml is needed (the embedded server, a block or "
    "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI); FireWorks' file works with lpad -l",
    "add_scripts": "write a workflow file with ScriptTasks and lpad add it",
    "check_wflow": "lpad add checks every workflow's links and Firetasks before adding it",
    "track_fws": "trackers are stored with each launch: lpad get_fws -i ID -d all",
    "get_fws_in_wflows": "lpad get_wflows -i ID -d more lists a workflow's Fireworks; "
    "lpad get_fws -q selects Fireworks",
}


def _replaced(name: str, instead: str) -> None:
    @app.command(
        name,
        hidden=True,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def answer(ctx: typer.Context) -> None:
        raise fail(f"lpad {name} is not part of prefect-fireworks: {instead}.")

    answer.__doc__ = f"Not here: {instead}."


for _name, _instead in REPLACED.items():
    _replaced(_name, _instead)
