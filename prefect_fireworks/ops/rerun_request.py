"""A rerun request, validated once: what to select, the rerun options and the automation
guards (``max_reruns``, ``stacktrace_regex``, ``only_fizzled``, ``signature``, ``roots_only``).

Every front end builds one with :meth:`RerunRequest.build` and hands it to
:func:`prefect_fireworks.ops.rerun.execute_rerun` (which re-exports it). No Prefect import here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.rerun_types import RerunOptions, make_options
from prefect_fireworks.ops.selection import SelectionError, Selector
from prefect_fireworks.ops.signatures import check_signature


def check_stacktrace_regex(pattern: str | None) -> str | None:
    """Validate a stack-trace regex (Python syntax, which MongoDB's ``$regex`` accepts).

    Raises:
        ValueError: The pattern does not compile.
    """
    if pattern is None or pattern == "":
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid stack-trace regex {pattern!r}: {exc}") from None
    return pattern


class RerunRequest(BaseModel):
    """A rerun, validated: what to select, the rerun options and the automation guards.

    Build it with :meth:`build` from raw option values (CLI options, flow parameters, Python
    arguments); every inconsistency is a ``ValueError`` there, before the database is touched.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    selector: Selector
    options: RerunOptions
    max_reruns: int | None = Field(default=None, ge=0)
    stacktrace_regex: str | None = None
    only_fizzled: bool = False
    signature: str | None = None
    roots_only: bool = False

    @classmethod
    def build(
        cls,
        selection: Selector | Sequence[int] | int | None = None,
        *,
        fw_ids: str | int | Sequence[int] | None = None,
        name: str | None = None,
        state: str | None = None,
        query: str | Mapping[str, Any] | None = None,
        launches_mode: bool = False,
        task_level: bool = False,
        launch_ids: Sequence[int] | None = None,
        recover_mode: str | None = None,
        copy_data: bool = False,
        previous_dir: bool = False,
        clear_recovery: bool = False,
        rerun_duplicates: bool = True,
        except_details: bool | None = None,
        max_reruns: int | None = None,
        stacktrace_regex: str | None = None,
        only_fizzled: bool = False,
        signature: str | None = None,
        roots_only: bool = False,
        require_selection: bool = False,
    ) -> RerunRequest:
        """Parse and check everything a rerun is given.

        Args:
            selection: a Selector or fw_ids (instead of the ``-i/-n/-s/-q/-lm`` values).
            fw_ids: ``-i`` (one id, a comma list or ids).
            name: ``-n``.
            state: ``-s``.
            query: ``-q`` (JSON text or a mapping).
            launches_mode: ``-lm``.
            task_level: see :func:`plan_rerun`.
            launch_ids: with ``task_level``, the launch per selected Firework.
            recover_mode: ``cp`` or ``prev_dir`` (or give ``copy_data``/``previous_dir``).
            copy_data: ``-cp``.
            previous_dir: ``-pd``.
            clear_recovery: see :func:`plan_rerun`.
            rerun_duplicates: see :func:`plan_rerun`.
            except_details: see :func:`plan_rerun` (None: from the environment).
            max_reruns: guard: refuse Fireworks already rerun this many times.
            stacktrace_regex: guard: rerun only Fireworks whose stack trace matches.
            only_fizzled: guard: leave Fireworks that are no longer FIZZLED alone.
            signature: keep the Fireworks whose latest failure has this error signature (an
                id or a prefix of 4+ digits, see ``lpad errors``); alone, it selects among
                FIZZLED Fireworks.
            roots_only: keep only FIZZLED Fireworks with no FIZZLED ancestor.
            require_selection: refuse an empty selection (which selects every Firework).

        Raises:
            ValueError: bad or contradictory options (nothing is read or written).
        """
        if isinstance(selection, Selector):
            sel = selection
        elif selection is not None:
            ids = [selection] if isinstance(selection, int) else [int(i) for i in selection]
            sel = Selector(fw_ids=ids)
        else:
            sel = Selector.from_options(fw_ids, name, state, query, launches_mode)
        signature = check_signature(signature)
        if signature and sel.is_empty:
            sel = Selector(state=st.FIZZLED)
        if require_selection and sel.is_empty:
            raise SelectionError("select Fireworks with fw_ids, name, state or query (none given)")
        if max_reruns is not None and max_reruns < 0:
            raise ValueError(f"max_reruns must be 0 or more, not {max_reruns}")
        opts = make_options(
            sel.fw_ids,
            task_level,
            launch_ids,
            recover_mode,
            clear_recovery,
            rerun_duplicates,
            except_details,
            copy_data,
            previous_dir,
        )
        return cls(
            selector=sel,
            options=opts,
            max_reruns=max_reruns,
            stacktrace_regex=check_stacktrace_regex(stacktrace_regex),
            only_fizzled=only_fizzled,
            signature=signature,
            roots_only=roots_only,
        )

    @property
    def has_guards(self) -> bool:
        """Whether any automation guard is set."""
        return self.max_reruns is not None or bool(self.stacktrace_regex) or self.only_fizzled
