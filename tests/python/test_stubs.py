"""weir/_core.pyi says exactly what the built extension has: mypy's stubtest
compares the two, and a typed program using weir's API checks under
`mypy --strict` (and one misusing it does not)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Every public call of weir._core, typed as a user would type it.
TYPED_USE = """
from __future__ import annotations

from pathlib import Path

import weir
from weir._core import NodeResult, deploy_prepare, side_effect_notes


def build(project_dir: Path) -> list[str]:
    project = weir.Project(project_dir, target="dev", vars={"days": 3}, shadow=False)
    names: list[str] = [node.name for node in project.nodes]
    tasks: list[weir.Task] = project.tasks(select=["+orders"], retries=2)
    upstream: list[str] = [up for task in tasks for up in task.upstream]
    result: NodeResult = project.run_node(project.node("orders").unique_id)
    rows: list[list[str | None]] = project.query("select 1")
    retries: int | None = project.node("orders").retries
    selected: list[str] = project.select("tag:marts", exclude=None, selector=None)
    return [*names, *upstream, result["status"], *map(str, rows), str(retries), *selected]


def operate(project_dir: str) -> tuple[list[str], list[str], bool]:
    return deploy_prepare(project_dir, target="prod"), side_effect_notes(), (
        weir.local_cluster_stop(project_dir)
    )
"""

# A call the stub must refuse: query takes SQL text, not a number.
MISUSE = """
import weir

weir.Project("dags/dbt/shop").query(1)
"""


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_stub_matches_the_extension() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "weir._core"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_code_checks_under_strict_mypy(tmp_path: Path) -> None:
    use = tmp_path / "use_weir.py"
    use.write_text(textwrap.dedent(TYPED_USE))
    misuse = tmp_path / "misuse_weir.py"
    misuse.write_text(textwrap.dedent(MISUSE))
    cache = ["--cache-dir", str(tmp_path / "mypy_cache")]

    result = mypy("--strict", *cache, str(use))
    assert result.returncode == 0, result.stdout + result.stderr

    result = mypy("--strict", *cache, str(misuse))
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Argument 1 to "query" of "Project" has incompatible type "int"' in result.stdout
