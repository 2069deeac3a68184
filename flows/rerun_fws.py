"""Deployable entrypoint ``rerun_fws.py:rerun_fws``.

Rerun Fireworks (lpad rerun_fws) and get them run.

The flow lives in the installed package (``prefect_fireworks.prefect.rerun_flow``);
this file only exposes it to ``prefect deploy`` (see ``prefect.yaml``).
``python rerun_fws.py`` serves it as ``rerun-fws``.
"""

from prefect_fireworks.prefect.rerun_flow import rerun_fws

__all__ = ["rerun_fws"]

if __name__ == "__main__":
    rerun_fws.serve(name="rerun-fws")
