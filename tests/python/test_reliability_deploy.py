"""Two blue-green deploys of one target at once, each run as steps (as an
Airflow DAG run runs it: prepare, a task per node, swap). No connection
spans the steps; the deploy lease keeps the second deploy out of the first
one's shadow set, through the Python API and through an Airflow DAG run."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import weir
from conftest import copy_shop
from weir import _core


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop project with two tables holding `--vars {version: n}`."""
    monkeypatch.setenv("WEIR_ALLOW_PROTECTED", "true")
    project_dir = copy_shop(tmp_path / "shop")
    (project_dir / "models" / "marts" / "version_a.sql").write_text(
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v\n"
    )
    (project_dir / "models" / "staging" / "version_b.sql").write_text(
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v\n"
    )
    return project_dir


class Steps:
    """One deploy of `version` on prod, under `deploy_id`, a call per step."""

    def __init__(self, project_dir: Path, deploy_id: str, version: int) -> None:
        self.project_dir = project_dir
        self.deploy_id = deploy_id
        self.vars = {"version": version}
        self.shadow = weir.Project(project_dir, target="prod", vars=self.vars, shadow=True)

    def prepare(self) -> list[str]:
        return _core.deploy_prepare(
            self.project_dir, "prod", vars=self.vars, deploy_id=self.deploy_id
        )

    def node(self, name: str) -> None:
        self.shadow.run_node(self.shadow.node(name).unique_id, deploy_id=self.deploy_id)

    def build(self) -> None:
        done: set[str] = set()
        tasks = self.shadow.tasks()
        while len(done) < len(tasks):
            for task in tasks:
                if task.unique_id not in done and all(u in done for u in task.upstream):
                    self.shadow.run_node(task.unique_id, deploy_id=self.deploy_id)
                    done.add(task.unique_id)

    def swap(self) -> list[str]:
        return _core.deploy_swap(self.project_dir, "prod", vars=self.vars, deploy_id=self.deploy_id)


def live(project_dir: Path) -> tuple[str | None, ...]:
    [row] = weir.Project(project_dir, target="dev").query(
        "select (select v from analytics_marts.version_a), (select v from analytics.version_b)"
    )
    return tuple(row)


def lapse(project_dir: Path, deploy_id: str) -> None:
    weir.Project(project_dir, target="dev").query(
        "update weir_meta.deploy_leases set expires_at = now() - interval '1 second' "
        f"where deploy_id = '{deploy_id}'"
    )


def test_interleaved_deploys_through_the_python_api_swap_one_version(project_dir: Path) -> None:
    first, second = Steps(project_dir, "dag/run-1", 1), Steps(project_dir, "dag/run-2", 2)
    first.prepare()
    with pytest.raises(weir.TransientError, match="deploy `dag/run-1` of target `prod` holds"):
        second.prepare()
    first.node("version_a")
    refused = "deploy `dag/run-2` of target `prod` does not hold the deploy lease"
    with pytest.raises(weir.UsageError, match=refused):
        second.node("version_b")
    with pytest.raises(weir.UsageError, match=refused):
        second.swap()
    with pytest.raises(weir.UsageError, match="builds into `analytics__next`, a deploy's shadow"):
        first.shadow.run_node(first.shadow.node("version_b").unique_id)

    # The first stalls past its lease: the second takes over, the first is out.
    lapse(project_dir, "dag/run-1")
    second.prepare()
    with pytest.raises(weir.UsageError, match="deploy `dag/run-2` holds it"):
        first.node("version_b")
    with pytest.raises(weir.UsageError, match="deploy `dag/run-2` holds it"):
        first.swap()
    second.build()
    assert second.swap() == ["analytics", "analytics_marts"]
    assert live(project_dir) == ("2", "2")


BLUE_GREEN_DAG = """
from weir.airflow import WeirBlueGreenDag

dag = WeirBlueGreenDag(
    dag_id={dag_id!r}, project_dir={project!r}, target="prod", vars={{"version": 3}},
    schedule=None, retries=0, default_args={{"retries": 0}},
)
"""


def test_a_dag_run_deploying_while_another_deploy_holds_the_lease_builds_nothing(
    airflow_db: Path, project_dir: Path
) -> None:
    path = airflow_db / "shop_lease.py"
    path.write_text(BLUE_GREEN_DAG.format(dag_id="shop_lease", project=str(project_dir)))
    dag = runpy.run_path(str(path))["dag"]
    other = Steps(project_dir, "elsewhere/run-1", 9)
    other.prepare()
    other.node("version_a")

    dag_run = dag.test()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "failed"
    assert states["prepare"] == "failed", states
    assert states["swap"] == "upstream_failed", states
    # The other deploy's shadow set is untouched: its swap still goes through.
    other.build()
    other.swap()
    assert live(project_dir) == ("9", "9")

    # With no deploy in flight, the DAG run deploys: its node tasks and swap
    # hold the lease its prepare took (under `<dag_id>/<run_id>`).
    dag_run = dag.test()
    assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert live(project_dir) == ("3", "3")
    [[leases]] = weir.Project(project_dir, target="dev").query(
        "select count(*) from weir_meta.deploy_leases"
    )
    assert leases == "0"
