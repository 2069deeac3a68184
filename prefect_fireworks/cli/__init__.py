"""The ``lpad`` command line (typer)."""

from __future__ import annotations

from prefect_fireworks.cli.app import app, main

__all__ = ["app", "main"]
