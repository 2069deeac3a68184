"""Deployable entrypoint ``detect_lostruns.py:detect_lostruns``.

Fizzle or rerun launches whose heartbeat stopped.

The flow lives in the installed package (``prefect_fireworks.prefect.lostruns_flow``);
this file only exposes it to ``prefect deploy`` (see ``prefect.yaml``).
``python detect_lostruns.py`` serves it as ``detect-lostruns``.
"""

from prefect_fireworks.prefect.lostruns_flow import detect_lostruns

__all__ = ["detect_lostruns"]

if __name__ == "__main__":
    detect_lostruns.serve(name="detect-lostruns")
