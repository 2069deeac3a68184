"""The operations layer: selection and every state operation (rerun first) as plan -> apply.

The one place options are validated; the CLI, the Prefect flows and the Python API all call it.
Imports ``core`` and ``store``; never Prefect, typer or rich.
"""
