"""The rerun's data: options, plan, result, and the check that options go together.

Shared by :mod:`.rerun_plan` (the plan), :mod:`.rerun_apply` (the writes) and :mod:`.rerun`
(the one entry point); everything here is re-exported by both. No I/O, no Prefect import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prefect_fireworks.core.settings import ENV_PREFIX, get_settings
from prefect_fireworks.ops.editor import SkippedTarget

RecoverMode = Literal["cp", "prev_dir"]
RECOVER_MODES: tuple[str, ...] = ("cp", "prev_dir")
#: Environment variable standing in for FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` config.
EXCEPT_DETAILS_ENV = f"{ENV_PREFIX}EXCEPT_DETAILS_ON_RERUN"


def except_details_default() -> bool:
    """FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` (default False), from the settings."""
    return get_settings().except_details_on_rerun


# -- plan and result -----------------------------------------------------------------------------
@dataclass
class RerunEntry:
    """One Firework a rerun resets.

    Attributes:
        fw_id: the Firework.
        name: its name.
        wf_id: the workflow (its lowest fw_id).
        role: ``target`` (asked for), ``duplicate`` (shares a launch with a target that has
            ``_dupefinder``) or ``descendant``.
        state_before: state before the rerun.
        state_after: state after it (READY or WAITING).
        archived: launch ids moved from ``launches`` to ``archived_launches``.
        recovery: what happens to ``spec._recovery``: ``set``, ``kept``, ``cleared`` or None.
    """

    fw_id: int
    name: str
    wf_id: int
    role: str
    state_before: str
    state_after: str
    archived: list[int] = field(default_factory=list)
    recovery: str | None = None


@dataclass
class RerunOptions:
    """The options of one rerun (validated by :func:`validate_options`)."""

    task_level: bool = False
    launch_ids: list[int] | None = None
    recover_mode: str | None = None
    clear_recovery: bool = False
    rerun_duplicates: bool = True
    except_details: bool = False


@dataclass
class RerunPlan:
    """What a rerun will do; computed by :func:`plan_rerun` without writing anything.

    Attributes:
        targets: the fw_ids asked for, in order.
        options: the rerun options.
        entries: every Firework reset (targets, duplicates and descendants), by workflow.
        skipped: targets left alone (ARCHIVED/DEFUSED untouched, WAITING skipped).
        recovery: the ``spec._recovery`` each task-level target gets.
        workflows: workflow id -> the ordered steps (fw_id, recover launch) run in it.
    """

    targets: list[int]
    options: RerunOptions
    entries: list[RerunEntry] = field(default_factory=list)
    skipped: list[SkippedTarget] = field(default_factory=list)
    recovery: dict[int, dict[str, Any]] = field(default_factory=dict)
    workflows: dict[int, list[tuple[int, int | str | None, bool]]] = field(default_factory=dict)

    @property
    def rerun_ids(self) -> list[int]:
        """Targets and duplicates actually rerun (FireWorks' ``rerun_fw`` return value)."""
        return [e.fw_id for e in self.entries if e.role in ("target", "duplicate")]

    @property
    def n_archived(self) -> int:
        """Launches that will be archived."""
        return sum(len(e.archived) for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``, Prefect results)."""
        return {
            "targets": self.targets,
            "options": asdict(self.options),
            "rerun": self.rerun_ids,
            "entries": [asdict(e) for e in self.entries],
            "skipped": [asdict(s) for s in self.skipped],
            "recovery": {str(k): v for k, v in self.recovery.items()},
            "archived_launches": self.n_archived,
        }


@dataclass
class RerunResult(RerunPlan):
    """What a rerun did (the plan as recomputed and written under each workflow's lock).

    Attributes:
        seconds: wall time of the apply step.
        dry_run: True when nothing was written.
    """

    seconds: float = 0.0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = super().to_dict()
        d.update(seconds=round(self.seconds, 3), dry_run=self.dry_run)
        return d


# -- validation ----------------------------------------------------------------------------------
def validate_options(
    fw_ids: Sequence[int] | None,
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    copy_data: bool = False,
    previous_dir: bool = False,
) -> str | None:
    """Check the rerun options go together; returns the recover mode.

    Raises:
        ValueError: with FireWorks' message where it has one.
    """
    if copy_data and previous_dir:
        raise ValueError("-cp/--copy-data and -pd/--previous-dir are mutually exclusive")
    mode = recover_mode
    if copy_data or previous_dir:
        flag = "cp" if copy_data else "prev_dir"
        if mode is not None and mode != flag:
            raise ValueError(f"recover_mode {mode!r} contradicts the copy-data/previous-dir flag")
        mode = flag
    if mode is not None and mode not in RECOVER_MODES:
        raise ValueError(f"recover_mode must be one of {', '.join(RECOVER_MODES)}, not {mode!r}")
    if not task_level and (launch_ids or mode is not None):
        raise ValueError(
            "-lid/--launch_id, -cp/--copy-data and -pd/--previous-dir need --task-level"
        )
    if task_level and clear_recovery:
        raise ValueError("--clear-recovery cannot be combined with --task-level")
    if launch_ids and fw_ids is not None and len(launch_ids) != len(fw_ids):
        raise ValueError("Specify the same number of tasks and launches")
    return mode


def make_options(
    fw_ids: Sequence[int] | None,
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    rerun_duplicates: bool = True,
    except_details: bool | None = None,
    copy_data: bool = False,
    previous_dir: bool = False,
) -> RerunOptions:
    """Check the options (:func:`validate_options`) and build them; ``except_details`` None
    means the settings' default.

    Raises:
        ValueError: as :func:`validate_options`.
    """
    mode = validate_options(
        fw_ids, task_level, launch_ids, recover_mode, clear_recovery, copy_data, previous_dir
    )
    return RerunOptions(
        task_level=task_level,
        launch_ids=[int(i) for i in launch_ids] if launch_ids else None,
        recover_mode=mode,
        clear_recovery=clear_recovery,
        rerun_duplicates=rerun_duplicates,
        except_details=except_details_default() if except_details is None else except_details,
    )
