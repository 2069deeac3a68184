"""The MongoDB store in FireWorks' own schema: the LaunchPad, its queries, locks and connections.

Imports only ``core`` (and pymongo); never Prefect, typer or rich.
"""
