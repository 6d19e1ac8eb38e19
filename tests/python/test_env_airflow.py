"""Environments in Airflow: one DAG per environment, the prod DAG as a
blue-green deploy (build and test into ``<schema>__next``, then one swap
task), protected targets refused on a worker not allowed to run them, and
no secret in Airflow's logs, XComs or weir's Python exceptions."""

from __future__ import annotations

import os
import re
import runpy
import sqlite3
import textwrap
from pathlib import Path

import pytest

import weir
from conftest import AIRFLOW_HOME, copy_shop

BLUE_GREEN_DAG = """
from weir.airflow import WeirBlueGreenDag

dag = WeirBlueGreenDag(dag_id={dag_id!r}, project_dir={project!r}, target="prod", schedule=None)
"""


def write(dags_folder: Path, dag_id: str, source: str):
    path = dags_folder / f"{dag_id}.py"
    path.write_text(source)
    return runpy.run_path(str(path))["dag"]


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def schemas(project_dir: Path) -> list[str]:
    project = weir.Project(project_dir, target="dev")
    rows = project.query(
        "select nspname from pg_namespace where nspname like 'analytics%' order by 1"
    )
    return [row[0] for row in rows]


def test_one_dag_per_environment_with_its_policy(shop: Path) -> None:
    from weir.airflow import WeirEnvironmentDags

    dags = WeirEnvironmentDags(
        project_dir=shop,
        environments={
            "staging": {"schedule": "@hourly", "tags": ["staging"]},
            "prod": {"schedule": "@daily", "blue_green": True},
        },
    )
    assert set(dags) == {"shop__staging", "shop__prod"}
    staging, prod = dags["shop__staging"], dags["shop__prod"]
    assert {t.retries for t in staging.tasks} == {1}
    assert staging.tags == {"staging"} or list(staging.tags) == ["staging"]
    assert "swap" not in staging.task_ids

    swap, prepare = prod.get_task("swap"), prod.get_task("prepare")
    builds = [t for t in prod.tasks if t.task_id not in ("swap", "prepare")]
    assert len(builds) == 20, "5 models, 3 seeds, 12 data tests"
    assert {t.retries for t in builds} == {3}
    assert swap.trigger_rule == "all_success"
    # The swap waits for everything; everything waits for prepare.
    assert swap.get_flat_relative_ids(upstream=True) >= {t.task_id for t in builds}
    assert prepare.get_flat_relative_ids(upstream=False) >= {t.task_id for t in builds} | {"swap"}
    # The build tasks write into the shadow schemas.
    assert all(t.shadow for t in builds)


def test_the_prod_dag_deploys_blue_green(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = copy_shop(tmp_path / "shop")
    monkeypatch.setenv("WEIR_ALLOW_PROTECTED", "true")
    dag = write(
        airflow_db,
        "shop_blue_green",
        BLUE_GREEN_DAG.format(dag_id="shop_blue_green", project=str(project_dir)),
    )
    dag_run = dag.test()
    assert dag_run.state == "success", states(dag_run)
    assert schemas(project_dir) == ["analytics", "analytics_marts"]
    project = weir.Project(project_dir, target="dev")
    [[count]] = project.query("select count(*) from analytics_marts.customers")
    assert int(count) == 10

    dag_run = dag.test()
    assert dag_run.state == "success", states(dag_run)
    assert schemas(project_dir) == [
        "analytics",
        "analytics__prev",
        "analytics_marts",
        "analytics_marts__prev",
    ]


def test_a_failing_test_stops_the_swap(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = copy_shop(tmp_path / "shop")
    monkeypatch.setenv("WEIR_ALLOW_PROTECTED", "true")
    (project_dir / "models" / "marts" / "checked.sql").write_text("select 2 as v\n")
    (project_dir / "models" / "marts" / "checked.yml").write_text(
        textwrap.dedent(
            """
            version: 2
            models:
              - name: checked
                columns:
                  - name: v
                    data_tests:
                      - accepted_values:
                          arguments:
                            values: [1]
                            quote: false
            """
        )
    )
    dag = write(
        airflow_db,
        "shop_blue_green_failing",
        BLUE_GREEN_DAG.format(dag_id="shop_blue_green_failing", project=str(project_dir)),
    )
    dag_run = dag.test()
    result = states(dag_run)
    assert dag_run.state == "failed"
    assert result["swap"] == "upstream_failed", result
    # Nothing live: only the shadow set was built.
    assert "analytics_marts" not in schemas(project_dir)
    assert "analytics_marts__next" in schemas(project_dir)


def test_protected_tasks_refuse_where_not_allowed(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = copy_shop(tmp_path / "shop")
    monkeypatch.delenv("WEIR_ALLOW_PROTECTED", raising=False)
    monkeypatch.delenv("CI", raising=False)
    dag = write(
        airflow_db,
        "shop_refused",
        BLUE_GREEN_DAG.format(dag_id="shop_refused", project=str(project_dir)),
    )
    dag_run = dag.test()
    result = states(dag_run)
    assert dag_run.state == "failed"
    assert result["prepare"] == "failed", result
    with pytest.raises(weir.UsageError, match="target `prod` is protected"):
        weir.Project(project_dir, target="prod").run_node("seed.shop.raw_orders")
    assert schemas(project_dir) == []


def _profiles_where_dev_names_prods_schema() -> str:
    """Every target builds into `analytics`, so dev would write where prod lives."""
    outputs = "".join(
        f"    {name}:\n      type: postgres\n      user: postgres\n      dbname: postgres\n"
        "      schema: analytics\n      threads: 4\n"
        for name in ("dev", "prod")
    )
    return f"shop:\n  target: dev\n  outputs:\n{outputs}"


def test_a_dev_task_writing_into_a_protected_schema_is_refused_before_any_sql(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = copy_shop(tmp_path / "shop")
    (project_dir / "profiles.yml").write_text(_profiles_where_dev_names_prods_schema())
    monkeypatch.delenv("WEIR_ALLOW_PROTECTED", raising=False)
    monkeypatch.delenv("CI", raising=False)
    # The error `weir run` gives, word for word, from Python...
    expected = (
        '`stg_orders` would write "postgres"."analytics"."stg_orders", but schema '
        "`analytics` belongs to protected target `prod`"
    )
    project = weir.Project(project_dir, target="dev")
    with pytest.raises(weir.UsageError, match=re.escape(expected)) as refused:
        project.run_node("model.shop.stg_orders")
    assert "Nothing was sent to the database" in str(refused.value)
    assert refused.value.file.endswith("models/staging/stg_orders.sql")
    # ...and from every task of an Airflow DAG run, before any SQL.
    dag = write(
        airflow_db,
        "shop_dev_into_prod",
        textwrap.dedent(
            f"""
            from weir.airflow import WeirDag

            dag = WeirDag(dag_id="shop_dev_into_prod", project_dir={str(project_dir)!r},
                          target="dev", schedule=None, select="stg_orders")
            """
        ),
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    assert states(dag_run) == {"stg_orders": "failed"}
    assert schemas(project_dir) == []


PASSWORD = "pw-Airfl0w-Hunter2"
TOKEN = "tok-Airfl0w-Sw0rdf1sh"


def test_no_secret_in_airflow_logs_xcoms_or_exceptions(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    project_dir = copy_shop(tmp_path / "shop")
    # The embedded cluster's Unix socket: it admits only its owner, and asks no password.
    [[host, port]] = weir.Project(project_dir, target="dev").query(
        "select current_setting('unix_socket_directories'), current_setting('port')"
    )
    monkeypatch.setenv("DBT_ENV_SECRET_PG_PASSWORD", PASSWORD)
    monkeypatch.setenv("DBT_ENV_SECRET_API_TOKEN", TOKEN)
    profiles = (project_dir / "profiles.yml").read_text()
    profiles += textwrap.indent(
        textwrap.dedent(
            f"""
            secret:
              type: postgres
              host: {host}
              port: {port}
              user: postgres
              password: "{{{{ env_var('DBT_ENV_SECRET_PG_PASSWORD') }}}}"
              dbname: postgres
              schema: secret
              threads: 2
              api_token: "{{{{ env_var('DBT_ENV_SECRET_API_TOKEN') }}}}"
            """
        ),
        "    ",
    )
    (project_dir / "profiles.yml").write_text(profiles)
    # As in dbt, a model may not read a secret, nor a profile key made of one.
    (project_dir / "models" / "uses_token.sql").write_text(
        "select '{{ target.api_token | reverse }}' as token\n"
    )
    refused = r"`target\.api_token` is read from a secret"
    with pytest.raises(weir.ProjectError, match=refused) as bad:
        weir.Project(project_dir, target="secret")
    assert bad.value.file.endswith("uses_token.sql") and TOKEN[::-1] not in str(bad.value)
    (project_dir / "models" / "uses_token.sql").unlink()
    # A secret's value in a model's SQL reaches the database's error message.
    (project_dir / "models" / "fails_with_token.sql").write_text(
        f"select '{PASSWORD}'::integer as token\n"
    )
    dag = write(
        airflow_db,
        "shop_secrets",
        "from weir.airflow import WeirDag\n\n"
        f"dag = WeirDag(dag_id='shop_secrets', project_dir={str(project_dir)!r}, "
        "target='secret', schedule=None)\n",
    )
    dag_run = dag.test()
    result = states(dag_run)
    assert result["orders"] == "success", result
    assert result["fails_with_token"] == "failed", result

    project = weir.Project(project_dir, target="secret")
    with pytest.raises(weir.DatabaseError) as raised:
        project.run_node("model.shop.fails_with_token")
    assert "*****" in str(raised.value)

    texts = {"stdout/stderr": "".join(capfd.readouterr()), "exception": str(raised.value)}
    for path in Path(AIRFLOW_HOME).rglob("*"):
        if path.is_file() and path.suffix != ".db":
            texts[str(path)] = path.read_bytes().decode(errors="replace")
    with sqlite3.connect(Path(AIRFLOW_HOME) / "airflow.db") as db:
        texts["airflow.db (XComs, task instances, logs)"] = "\n".join(db.iterdump())
    assert any("fails_with_token" in text for text in texts.values())
    for where, text in texts.items():
        for secret in (PASSWORD, TOKEN):
            assert secret not in text, f"{where} holds a secret"
    assert os.environ["DBT_ENV_SECRET_API_TOKEN"] == TOKEN
