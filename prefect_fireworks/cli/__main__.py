"""``python -m prefect_fireworks.cli`` runs ``lpad``."""

from __future__ import annotations

from prefect_fireworks.cli.app import main

main()
