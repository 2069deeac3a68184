"""Deployable entrypoint ``rapidfire.py:rapidfire``.

Run READY Fireworks of any workflow (rlaunch rapidfire).

The flow lives in the installed package (``prefect_fireworks.prefect.flows``);
this file only exposes it to ``prefect deploy`` (see ``prefect.yaml``).
``python rapidfire.py`` serves it as ``rapidfire``.
"""

from prefect_fireworks.prefect.flows import rapidfire

__all__ = ["rapidfire"]

if __name__ == "__main__":
    rapidfire.serve(name="rapidfire")
