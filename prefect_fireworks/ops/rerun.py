"""The one rerun entry point: a validated request -> select -> guard -> plan -> confirm -> apply.

Every front end calls :func:`execute_rerun` once: ``lpad rerun_fws`` (with a confirmation and a
progress bar), the ``rerun-fws`` Prefect flow (with the automation guards and artifacts) and
:func:`rerun_fws` for plain Python. Options are checked once, when the :class:`RerunRequest` is
built (:mod:`.rerun_request`), before the database is touched; the plan and apply steps live in
:mod:`.rerun_plan` and :mod:`.rerun_apply` (all re-exported here).

Guards, for automations: ``max_reruns`` refuses Fireworks already rerun that many times
(counted from their ``archived_launches``), ``stacktrace_regex`` keeps only Fireworks whose
active launch's stack trace matches, ``only_fizzled`` leaves alone Fireworks no longer FIZZLED.

Beyond FireWorks (``docs/beyond-fireworks.md``): ``signature`` keeps one error-signature group
(:mod:`.signatures`), ``roots_only`` keeps root failures (:mod:`.roots`); every plan gets a
token (:mod:`.plan_token`) — a ``pinned`` plan (``--apply``) is refused when it changed, and a
``gate`` (approval in the Prefect UI) is followed by the same check; every rerun records its
``actor`` and reason (:mod:`.audit`). No Prefect import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import DEFAULT_MAX_RERUNS, STACKTRACE_KEY
from prefect_fireworks.ops.audit import Actor
from prefect_fireworks.ops.editor import Progress, SkippedTarget
from prefect_fireworks.ops.plan_token import (
    Fingerprint,
    PinnedPlan,
    PlanChangedError,
    check_unchanged,
    fingerprints,
    pin_plan,
)
from prefect_fireworks.ops.rerun_plan import (
    EXCEPT_DETAILS_ENV,
    RECOVER_MODES,
    RecoverMode,
    RerunEntry,
    RerunOptions,
    RerunPlan,
    RerunResult,
    apply_rerun,
    except_details_default,
    plan_rerun,
    plan_with_options,
    validate_options,
)
from prefect_fireworks.ops.rerun_request import RerunRequest, check_stacktrace_regex
from prefect_fireworks.ops.roots import roots_only as keep_roots
from prefect_fireworks.ops.selection import Selector
from prefect_fireworks.ops.signatures import (
    ErrorGroup,
    error_groups,
    match_signature,
)

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "DEFAULT_MAX_RERUNS",
    "EXCEPT_DETAILS_ENV",
    "RECOVER_MODES",
    "STACKTRACE_KEY",
    "PinnedPlan",
    "PlanChangedError",
    "Progress",
    "RecoverMode",
    "RerunEntry",
    "RerunOptions",
    "RerunOutcome",
    "RerunPlan",
    "RerunRequest",
    "RerunResult",
    "SkippedTarget",
    "apply_rerun",
    "check_stacktrace_regex",
    "except_details_default",
    "execute_rerun",
    "plan_rerun",
    "plan_with_options",
    "rerun_fws",
    "validate_options",
]

#: Opens a progress display for ``total`` items; yields the callback that advances it.
ProgressFactory = Callable[[int], AbstractContextManager[Progress | None]]


@dataclass
class RerunOutcome:
    """What :func:`execute_rerun` selected, refused, planned and (unless a dry run) did.

    Attributes:
        selected: the fw_ids the selector matched.
        refused: Fireworks the guards refused: ``{fw_id, name, state, reason}``.
        over_budget: some Firework was refused by ``max_reruns``.
        plan: the plan (None when nothing was selected).
        result: what was written (None for a dry run or when nothing was left to rerun).
        dry_run: nothing was written on purpose.
        token: the plan's token (:mod:`.plan_token`).
        fingerprints: what the token hashes, by fw_id.
        error_groups: the error-signature groups of the selection, when a signature or
            ``roots_only`` was asked for (else empty).
        actor: who reran, and why.
    """

    selected: list[int]
    refused: list[dict[str, Any]] = field(default_factory=list)
    over_budget: bool = False
    plan: RerunPlan | None = None
    result: RerunResult | None = None
    dry_run: bool = False
    token: str | None = None
    fingerprints: dict[int, Fingerprint] = field(default_factory=dict)
    error_groups: list[ErrorGroup] = field(default_factory=list)
    actor: Actor | None = None

    def pinned(self) -> PinnedPlan:
        """The plan with its token (what ``--plan-out`` writes, what an approval approves)."""
        assert self.plan is not None and self.token is not None
        return PinnedPlan(
            token=self.token,
            targets=list(self.plan.targets),
            options=dataclasses.asdict(self.plan.options),
            fireworks=dict(self.fingerprints),
        )

    @property
    def kept(self) -> list[int]:
        """Targets left after the guards."""
        return list(self.plan.targets) if self.plan is not None else []

    @property
    def final(self) -> RerunPlan | None:
        """The result when applied, else the plan."""
        return self.result if self.result is not None else self.plan


def _guard(
    lp: LaunchPad, ids: Sequence[int], request: RerunRequest
) -> tuple[list[int], list[dict[str, Any]], bool]:
    """Split the selected ids into those to rerun and those refused (with reasons)."""
    if not request.has_guards:
        return list(ids), [], False
    docs = {
        d["fw_id"]: d
        for d in lp.fireworks.find(
            {"fw_id": {"$in": list(ids)}},
            {"_id": 0, "fw_id": 1, "name": 1, "state": 1, "archived_launches": 1},
        )
    }
    matching: set[int] | None = None
    if request.stacktrace_regex:
        found = lp.get_fw_ids(
            {"fw_id": {"$in": list(ids)}, STACKTRACE_KEY: {"$regex": request.stacktrace_regex}},
            launches_mode=True,
        )
        assert isinstance(found, list)
        matching = set(found)
    keep: list[int] = []
    refused: list[dict[str, Any]] = []
    over_budget = False
    max_reruns = request.max_reruns
    for fw_id in ids:
        doc = docs.get(fw_id, {})
        state = doc.get("state", "")
        n_reruns = len(doc.get("archived_launches") or [])
        row = {"fw_id": fw_id, "name": doc.get("name", ""), "state": state}
        if request.only_fizzled and state != st.FIZZLED:
            reason = f"is {state}, not FIZZLED (rerun already?): nothing to do"
        elif matching is not None and fw_id not in matching:
            reason = f"stack trace does not match {request.stacktrace_regex!r}"
        elif max_reruns is not None and n_reruns >= max_reruns:
            reason = (
                f"refused: already rerun {n_reruns} time(s), the budget is max_reruns={max_reruns}"
            )
            over_budget = True
        else:
            keep.append(fw_id)
            continue
        refused.append({**row, "reason": reason})
    return keep, refused, over_budget


@contextmanager
def _no_progress(total: int) -> Iterator[Progress | None]:
    yield None


def _narrow(lp: LaunchPad, ids: list[int], request: RerunRequest, out: RerunOutcome) -> list[int]:
    """Apply ``signature`` and ``roots_only`` to the selection."""
    if request.signature:
        out.error_groups = error_groups(lp, ids)
        ids = [
            i for i in ids if i in set(match_signature(out.error_groups, request.signature).fw_ids)
        ]
    if request.roots_only:
        if not out.error_groups:
            out.error_groups = error_groups(lp, ids)
        ids = keep_roots(lp, ids)
    return ids


def _plan_pinned(lp: LaunchPad, keep: list[int], opts: RerunOptions, out: RerunOutcome) -> None:
    """Plan and pin: fingerprints read right after the plan; planned again if they moved."""
    options = dataclasses.asdict(opts)
    for _ in range(3):
        out.plan = plan_with_options(lp, keep, opts)
        out.token, out.fingerprints = pin_plan(lp, out.plan, options)
        if fingerprints(lp, out.fingerprints) == out.fingerprints:
            return


def execute_rerun(
    lp: LaunchPad,
    request: RerunRequest | None,
    *,
    dry_run: bool = False,
    confirm: Callable[[int], None] | None = None,
    progress: ProgressFactory | None = None,
    on_plan: Callable[[RerunOutcome], None] | None = None,
    actor: Actor | None = None,
    pinned: PinnedPlan | None = None,
    gate: Callable[[RerunOutcome], None] | None = None,
) -> RerunOutcome:
    """Select, guard, plan, confirm and apply one rerun.

    Args:
        lp: the LaunchPad.
        request: the validated request (None with ``pinned``).
        dry_run: stop after the plan; write nothing.
        confirm: called with the number of selected Fireworks before anything is written
            (raises to abort, e.g. FireWorks' more-than-10 check).
        progress: opens a progress display for the number of Fireworks to write.
        on_plan: called with the outcome once planned (before confirming and applying).
        actor: who reruns, and why (recorded in ``rerun_history``; default: this OS user).
        pinned: apply exactly this plan (``--apply``): its targets and options, refused with
            ``PlanChangedError`` when its token no longer matches.
        gate: called after ``on_plan`` and before anything is written (an approval); it may
            raise to write nothing. The plan's Fireworks are then checked again, and the apply
            is pinned to them.

    Returns:
        The outcome (``plan`` is None when the selection matched nothing).

    Raises:
        ValueError: ids that do not exist or launches without recovery data (nothing written);
            ``PlanChangedError`` when a pinned or gated plan changed (nothing written).
    """
    actor = actor or Actor.current()
    if pinned is not None:
        opts = RerunOptions(**pinned.options)
        selected = list(pinned.targets)
        out = RerunOutcome(selected=selected, dry_run=dry_run, actor=actor)
        keep = selected
    else:
        if request is None:
            raise ValueError("execute_rerun needs a request or a pinned plan")
        out = RerunOutcome(selected=[], dry_run=dry_run, actor=actor)
        selected = _narrow(lp, request.selector.resolve(lp), request, out)
        out.selected = selected
        if not selected:
            return out
        opts = request.options
        if opts.launch_ids and len(opts.launch_ids) != len(selected):
            raise ValueError("Specify the same number of tasks and launches")
        keep, out.refused, out.over_budget = _guard(lp, selected, request)
        if opts.launch_ids and len(keep) != len(selected):
            kept = set(keep)
            lids = [lid for fid, lid in zip(selected, opts.launch_ids, strict=True) if fid in kept]
            opts = dataclasses.replace(opts, launch_ids=lids or None)
    _plan_pinned(lp, keep, opts, out)
    assert out.plan is not None and out.token is not None
    if pinned is not None:
        check_unchanged(
            pinned.token, pinned.targets, pinned.options, pinned.fireworks, out.fingerprints
        )
    if on_plan is not None:
        on_plan(out)
    if dry_run or not keep:
        return out
    verify = pinned is not None or gate is not None
    if gate is not None:
        gate(out)
        now = fingerprints(lp, out.fingerprints)
        check_unchanged(
            out.token, out.plan.targets, dataclasses.asdict(opts), out.fingerprints, now
        )
    if confirm is not None:
        confirm(len(selected))
    record = {
        "by": actor.by,
        "actor": actor.to_record(),
        "command": actor.command,
        "reason": actor.reason,
        "plan_token": out.token if verify else None,
    }
    total = len(out.plan.entries) or len(out.plan.targets)
    with (progress or _no_progress)(total) as advance:
        out.result = apply_rerun(
            lp,
            out.plan,
            advance,
            expected=out.fingerprints if verify else None,
            record=record,
        )
    return out


def rerun_fws(
    lp: LaunchPad,
    selection: Selector | Sequence[int] | int,
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    rerun_duplicates: bool = True,
    except_details: bool | None = None,
    dry_run: bool = False,
    password: str | None = None,
    ask: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
    confirm: bool = True,
) -> RerunResult:
    """``lpad rerun_fws`` as a function: select, validate, confirm, plan, apply.

    Args:
        lp: the LaunchPad.
        selection: a :class:`Selector` or fw_ids.
        task_level: see :func:`plan_rerun` (and the other rerun options).
        launch_ids: see :func:`plan_rerun`.
        recover_mode: see :func:`plan_rerun`.
        clear_recovery: see :func:`plan_rerun`.
        rerun_duplicates: see :func:`plan_rerun`.
        except_details: see :func:`plan_rerun`.
        dry_run: compute and return the plan; write nothing.
        password: today's date, for more than 10 Fireworks.
        ask: asks the user instead of a password (``None``: nobody can answer).
        progress: see :func:`apply_rerun`.
        confirm: apply FireWorks' more-than-10 confirmation.

    Raises:
        ValueError: any bad input; nothing is written then.

    Example:
        ```python
        from prefect_fireworks.ops.selection import Selector

        rerun_fws(lp, Selector(state="FIZZLED"), password="2026-01-31")
        ```
    """
    from prefect_fireworks.ops.selection import confirm_mass

    request = RerunRequest.build(
        selection,
        task_level=task_level,
        launch_ids=launch_ids,
        recover_mode=recover_mode,
        clear_recovery=clear_recovery,
        rerun_duplicates=rerun_duplicates,
        except_details=except_details,
    )

    @contextmanager
    def bar(total: int) -> Iterator[Progress | None]:
        yield progress

    out = execute_rerun(
        lp,
        request,
        dry_run=dry_run,
        confirm=(lambda n: confirm_mass(n, password, ask)) if confirm else None,
        progress=bar,
    )
    if out.result is not None:
        return out.result
    plan = out.plan or RerunPlan(targets=[], options=request.options)
    res = RerunResult(**{k: getattr(plan, k) for k in plan.__dataclass_fields__})
    res.dry_run = dry_run
    return res
