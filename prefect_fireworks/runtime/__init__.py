"""Running one Firework: the Rocket (launch directory, Firetasks in order, checkpoints, FWAction
merge, failure capture) and the Firetasks with their registry.

Imports ``core`` and ``store``; never Prefect, typer or rich.
"""
