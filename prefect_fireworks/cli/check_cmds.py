"""``lpad admin check [--repair] [--json]``: the LaunchPad's invariants (see ``ops/check.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_fireworks.cli.common import OUT, STATE, JsonOpt, command
from prefect_fireworks.cli.state_cmds import admin_app
from prefect_fireworks.ops.check import CLAIM_GRACE_SECS, check, repair


@command(admin_app, "check")
def admin_check(
    do_repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what can be fixed: roll forward dead processes' intents, release stale "
            "locks, rewrite cached states, reset orphan claims, delete Fireworks of no workflow.",
        ),
    ] = False,
    claim_grace: Annotated[
        float,
        typer.Option(
            "--claim-grace",
            "--claim_grace",
            min=0,
            max=10**9,
            help="Seconds a Firework may stay claimed without a launch, or exist without a "
            "workflow, before it counts (a checkout or an add in progress).",
        ),
    ] = CLAIM_GRACE_SECS,
    as_json: JsonOpt = False,
) -> None:
    """Check the LaunchPad's invariants; each violation is printed with its ids.

    Exit 0 when clean, 1 when a violation is left (after --repair, when given).
    """
    # The check must see what a crash left (and --repair report what it finished), not what
    # connecting would have finished silently.
    STATE.finish_intents = False
    try:
        lp = STATE.launchpad()
    finally:
        STATE.finish_intents = True
    rep = (
        repair(lp, claim_grace_secs=claim_grace)
        if do_repair
        else check(lp, claim_grace_secs=claim_grace)
    )
    if as_json:
        OUT.json(rep.to_dict())
    else:
        for v in rep.violations:
            OUT.text(f"{v.check}: {v.message}")
        for line in rep.repaired if do_repair else []:
            OUT.text(f"repaired: {line}")
        left = rep.remaining if do_repair else rep.violations
        for v in left if do_repair else []:
            OUT.text(f"remaining {v.check}: {v.message}")
        summary = (
            f"{rep.n_workflows} workflow(s), {rep.n_fireworks} Firework(s), "
            f"{rep.n_launches} launch(es) checked in {rep.seconds:.2f} s: "
        )
        OUT.text(summary + ("clean." if not left else f"{len(left)} violation(s)."))
    if not rep.clean:
        raise typer.Exit(1)
