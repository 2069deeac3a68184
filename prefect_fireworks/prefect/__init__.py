"""The Prefect layer: tasks and flows, the LaunchPad block, artifacts, automations, deployments."""
