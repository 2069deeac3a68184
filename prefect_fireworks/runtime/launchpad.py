"""The LaunchPad with the Firetask registry: what ``prefect_fireworks.LaunchPad`` is.

The store (:mod:`prefect_fireworks.store`) knows no Firetasks; this subclass gives it the
registry's check, so ``add_wf`` rejects a Firework whose ``spec._tasks`` names an unknown
Firetask (nothing written) and ``checkout_fw`` fizzles a stored Firework that cannot be loaded
instead of handing it to a runner. Every front end (``lpad``, the flows, the blocks) connects
with this class.
"""

from __future__ import annotations

from prefect_fireworks.runtime.firetasks import validate_tasks
from prefect_fireworks.store import launchpad as store_launchpad
from prefect_fireworks.store.adding import TaskValidator

__all__ = ["LaunchPad"]


class LaunchPad(store_launchpad.LaunchPad):
    """FireWorks' LaunchPad; Firetasks are checked against the registry when adding and at
    checkout (see :class:`prefect_fireworks.store.launchpad.LaunchPad` for the methods).

    Example:
        ```python
        from prefect_fireworks import LaunchPad

        lp = LaunchPad.auto_load()
        lp.get_fw_ids({"state": "FIZZLED"})
        ```
    """

    @classmethod
    def default_task_validator(cls) -> TaskValidator | None:
        """The Firetask registry's check (``firetasks.validate_tasks``)."""
        return validate_tasks
