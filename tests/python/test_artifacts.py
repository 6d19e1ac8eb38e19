"""weir's artifacts load with the dbt-artifacts-parser package: manifest.json
as dbt's v12 schema, run_results.json as v6, so tools that read dbt's
artifacts read ours."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dbt_artifacts_parser.parser import parse_manifest_v12, parse_run_results_v6

REPO = Path(__file__).resolve().parents[2]
WEIR = Path(os.environ.get("WEIR_BIN", REPO / "target" / "debug" / "weir"))
PROJECTS = {
    "shop": REPO / "dags" / "dbt" / "shop",
    "features": REPO / "tests" / "fixtures" / "features",
    "packages": REPO / "tests" / "fixtures" / "packages",
    # Disabled nodes in the manifest's `disabled`.
    "loading": REPO / "tests" / "fixtures" / "loading",
}


def weir(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WEIR), *args], capture_output=True, text=True)


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_manifest_is_a_dbt_v12_manifest(name, tmp_path):
    project = tmp_path / name
    shutil.copytree(PROJECTS[name], project, ignore=shutil.ignore_patterns(".weir", "target"))
    result = weir("compile", "--project-dir", str(project))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = parse_manifest_v12(json.loads((project / "target" / "manifest.json").read_text()))
    assert manifest.metadata.project_name == name
    assert len(manifest.nodes) > 0
    if name == "loading":
        assert sorted(manifest.disabled) == [
            "model.loading.disabled_in_sql",
            "model.loading.only_in_ci",
            "test.loading.unique_stg_orders_id.beb6e97f2f",
        ]


def test_run_results_are_dbt_v6_run_results(tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(PROJECTS["shop"], project, ignore=shutil.ignore_patterns(".weir", "target"))
    try:
        result = weir("build", "--project-dir", str(project))
        assert result.returncode == 0, result.stdout + result.stderr
        text = (project / "target" / "run_results.json").read_text()
        run_results = parse_run_results_v6(json.loads(text))
        assert {r.status.value for r in run_results.results} == {"success", "pass"}
    finally:
        weir("local", "stop", "--project-dir", str(project))
