"""flows/prefect.yaml describes exactly the deployments of `deployment_specs` (what `lpad deploy`
creates): same names in the same order, the same flow behind each entrypoint, the same
description, default parameters, schedule and tags. Fails as soon as either side drifts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from prefect_fireworks.prefect.deployments import deployment_specs

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _yaml_deployments() -> list[dict[str, Any]]:
    doc = yaml.safe_load((FLOWS / "prefect.yaml").read_text())
    return list(doc["deployments"])


def _entrypoint_flow(entrypoint: str) -> Any:
    file, _, attr = entrypoint.partition(":")
    spec = importlib.util.spec_from_file_location(f"_flows_{Path(file).stem}", FLOWS / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def test_prefect_yaml_matches_the_deployment_specs() -> None:
    specs = deployment_specs()
    deployments = _yaml_deployments()
    assert [d["name"] for d in deployments] == [s.name for s in specs]
    for dep, spec in zip(deployments, specs, strict=True):
        assert _entrypoint_flow(dep["entrypoint"]) is spec.load_flow(), dep["name"]
        assert dep["description"] == spec.description, dep["name"]
        assert (dep.get("parameters") or {}) == spec.parameters, dep["name"]
        crons = [s["cron"] for s in dep.get("schedules") or []]
        assert crons == ([spec.cron] if spec.cron else []), dep["name"]
        assert dep["tags"] == ["fireworks"], dep["name"]
        assert dep["work_pool"]["name"] == "fireworks", dep["name"]
