"""The LaunchPad and the launch root a flow or task run uses.

`get_launchpad` resolves a block name, a ``my_launchpad.yaml`` path or nothing (the environment,
else the embedded server) to one connected LaunchPad per process and configuration;
`resolve_flow_launch_root` says where a flow run's launch directories go.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from prefect_fireworks.runtime.rocket import resolve_launch_root

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["get_launchpad", "resolve_flow_launch_root"]

_LP_CACHE: dict[tuple[Any, ...], LaunchPad] = {}
_LP_LOCK = threading.Lock()


def get_launchpad(block_name: str | None = None) -> LaunchPad:
    """The LaunchPad flows and tasks use, one per process and configuration.

    Args:
        block_name: name of a saved ``FireworksLaunchPad`` block (or the path of a FireWorks
            ``my_launchpad.yaml``, as ``lpad -l`` gives); ``None`` resolves like
            ``lpad`` (``..._MONGODB_URI``/``..._DATABASE``, ``..._LAUNCHPAD_FILE``, else the
            embedded server).

    Returns:
        A connected LaunchPad (cached: Dask workers and threads reuse one client).
    """
    from prefect_fireworks.core.settings import get_settings

    s = get_settings()
    key = (block_name, s.mongodb_uri, s.database, str(s.launchpad_file), str(s.home))
    with _LP_LOCK:
        lp = _LP_CACHE.get(key)
        if lp is None:
            if block_name and os.path.isfile(block_name):
                from prefect_fireworks.runtime.launchpad import LaunchPad

                lp = LaunchPad.from_file(block_name)
            else:
                from prefect_fireworks.prefect.blocks import load_launchpad

                lp = load_launchpad(block_name)
            lp.ensure_initialized()
            _LP_CACHE[key] = lp
        return lp


def resolve_flow_launch_root(launch_root: str | None, launchpad: str | None) -> str:
    """The launch root of a flow run, checked: where its launch directories go.

    In order: the ``launch_root`` argument, ``PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT`` (the
    environment of the machine, worker or job that runs the flow), the ``launch_root`` of the
    ``launchpad`` block, else the current directory. The root is created if missing.

    Raises:
        ValueError: the root cannot be used: not a directory, cannot be created, or inside
            the temporary folder Prefect deletes after a deployment's flow run (a worker's
            working directory), see `prefect_fireworks.runtime.rocket.resolve_launch_root`.
    """
    from prefect_fireworks.core.settings import get_settings

    no_root = launch_root is None and get_settings().launch_root is None
    if no_root and launchpad and not os.path.isfile(launchpad):
        from prefect_fireworks.prefect.blocks import block_launch_root

        launch_root = block_launch_root(launchpad)
    return os.fspath(resolve_launch_root(launch_root))
