"""FireWorks' state vocabulary, ranks, named groups and the workflow-state rule.

Pure functions only: every other module takes its state lists from here so no list is spelled
twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ARCHIVED = "ARCHIVED"
FIZZLED = "FIZZLED"
DEFUSED = "DEFUSED"
PAUSED = "PAUSED"
WAITING = "WAITING"
READY = "READY"
RESERVED = "RESERVED"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"

#: FireWorks' ``Firework.STATE_RANKS``.
STATE_RANKS: dict[str, int] = {
    ARCHIVED: -2,
    FIZZLED: -1,
    DEFUSED: 0,
    PAUSED: 0,
    WAITING: 1,
    READY: 2,
    RESERVED: 3,
    RUNNING: 4,
    COMPLETED: 5,
}
STATES: tuple[str, ...] = tuple(STATE_RANKS)

#: States a refresh never changes (only a user command leaves them).
STICKY_STATES = frozenset({DEFUSED, ARCHIVED, PAUSED})
#: States a Firework may be paused from.
PAUSABLE_STATES = frozenset({WAITING, READY, RESERVED})
#: States ``defuse_fw`` sets directly; other states are rerun first.
DIRECTLY_DEFUSABLE_STATES = frozenset({DEFUSED, WAITING, READY, FIZZLED, PAUSED})
#: States whose Firework has a live launch.
ACTIVE_STATES = frozenset({RESERVED, RUNNING})
#: States ``update_fws`` may modify.
UPDATABLE_STATES = frozenset({READY, WAITING, FIZZLED, DEFUSED, PAUSED})
#: States a rerun leaves alone as a target.
RERUN_IGNORED_STATES = frozenset({ARCHIVED, DEFUSED})
#: Launch states that end a launch.
FINISHED_STATES = frozenset({COMPLETED, FIZZLED})


def validate_state(state: str) -> str:
    """Upper-case a state name and check it is one of FireWorks' nine states.

    Args:
        state: a state name in any case.

    Returns:
        The upper-case state name.

    Raises:
        ValueError: the name is not a FireWorks state.
    """
    upper = state.strip().upper()
    if upper not in STATE_RANKS:
        raise ValueError(f"unknown state {state!r}; expected one of {', '.join(STATES)}")
    return upper


def parents_done(parent_states: Iterable[str], allow_fizzled_parents: bool = False) -> bool:
    """Whether every parent state lets a child run (COMPLETED, or FIZZLED when allowed)."""
    ok = {COMPLETED, FIZZLED} if allow_fizzled_parents else {COMPLETED}
    return all(s in ok for s in parent_states)


def workflow_state(
    fw_states: Mapping[int, str],
    links: Mapping[int, Iterable[int]],
    allow_fizzled: Mapping[int, bool] | None = None,
) -> str:
    """FireWorks' aggregated workflow state (``Workflow.state``), in FireWorks' order of rules.

    Args:
        fw_states: state of every Firework, by fw_id.
        links: children of each parent, by fw_id (leaves may be absent or map to ``[]``).
        allow_fizzled: ``spec._allow_fizzled_parents`` of Fireworks that set it; only
            needed when some Firework is FIZZLED.

    Returns:
        One of the nine states.
    """
    states = list(fw_states.values())
    if not states:
        return READY
    children = {fw: list(links.get(fw, ())) for fw in fw_states}
    leaves = [fw for fw, ch in children.items() if not ch]
    if leaves and all(fw_states[fw] == COMPLETED for fw in leaves):
        return COMPLETED
    if all(s == ARCHIVED for s in states):
        return ARCHIVED
    if DEFUSED in states:
        return DEFUSED
    if PAUSED in states:
        return PAUSED
    fizzled = [fw for fw, s in fw_states.items() if s == FIZZLED]
    if fizzled:
        tolerant = allow_fizzled or {}
        for fw in fizzled:
            if not children[fw] or any(not tolerant.get(ch, False) for ch in children[fw]):
                return FIZZLED
        return RUNNING
    if COMPLETED in states or RUNNING in states:
        return RUNNING
    if RESERVED in states:
        return RESERVED
    return READY
