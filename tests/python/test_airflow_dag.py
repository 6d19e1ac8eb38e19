"""The DAGs and TaskGroups weir.airflow builds: one task per model and seed,
wired exactly as the model DAG, with retries from the target's policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

import weir
from conftest import copy_shop
from weir.airflow import WeirDag, WeirNodeOperator, WeirTaskGroup, cached_project

SHOP_EDGES = {
    ("raw_customers", "stg_customers"),
    ("raw_orders", "stg_orders"),
    ("raw_payments", "stg_payments"),
    ("stg_orders", "orders"),
    ("stg_payments", "orders"),
    ("orders", "customers"),
    ("stg_customers", "customers"),
}


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}


def reaches(graph: set[tuple[str, str]], start: str, end: str) -> bool:
    """Whether `end` waits for `start`, directly or through other tasks."""
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for up, down in graph:
            if up == node and down not in seen:
                seen.add(down)
                todo.append(down)
    return end in seen


def test_one_task_per_model_and_seed_wired_like_the_model_dag(shop: Path) -> None:
    project = weir.Project(shop, target="dev")
    dag = WeirDag(dag_id="shop_structure", project_dir=shop, target="dev", schedule=None)

    built = [node for node in project.nodes if node.resource_type in ("model", "seed")]
    assert sorted(dag.task_ids) == sorted(node.name for node in built)
    assert len(dag.tasks) == 8
    names = {node.unique_id: node.name for node in built}
    model_edges = {
        (names[parent], node.name)
        for node in built
        for parent in node.depends_on
        if parent in names
    }
    assert edges(dag) == model_edges == SHOP_EDGES

    for task in dag.tasks:
        assert isinstance(task, WeirNodeOperator)
        assert task.unique_id == project.node(task.task_id).unique_id
        assert task.target == "dev"
        assert task.project_dir == str(shop)
        assert task.retries == 0


def test_data_tests_as_tasks_gate_what_is_built_on_them(shop: Path) -> None:
    dag = WeirDag(dag_id="shop_build", project_dir=shop, tests=True, schedule=None)
    project = weir.Project(shop)
    assert sorted(dag.task_ids) == sorted(node.name for node in project.nodes)
    assert len(dag.tasks) == 8 + 12
    graph = edges(dag)
    # Every model still waits for its parents; an edge a test between them
    # implies (stg_orders -> its tests -> orders) is left out.
    assert all(reaches(graph, parent, child) for parent, child in SHOP_EDGES)
    assert ("stg_orders", "orders") not in graph
    assert ("orders", "unique_orders_order_id") in graph
    assert ("unique_orders_order_id", "customers") in graph
    assert dag.get_task("unique_orders_order_id").unique_id.startswith("test.shop.")


def test_selection_keeps_edges_inside_it(shop: Path) -> None:
    dag = WeirDag(
        dag_id="shop_marts", project_dir=shop, target="dev", select="tag:marts", schedule=None
    )
    assert sorted(dag.task_ids) == ["customers", "orders"]
    assert edges(dag) == {("orders", "customers")}
    dag = WeirDag(
        dag_id="shop_no_seeds",
        project_dir=shop,
        exclude=["resource_type:seed"],
        schedule=None,
    )
    assert "raw_orders" not in dag.task_ids
    assert len(dag.tasks) == 5


def test_a_selector_of_selectors_yml(shop: Path) -> None:
    (shop / "selectors.yml").write_text(
        "selectors:\n  - name: staging\n    definition: 'tag:staging'\n"
    )
    dag = WeirDag(dag_id="shop_selector", project_dir=shop, selector="staging", schedule=None)
    assert sorted(dag.task_ids) == ["stg_customers", "stg_orders", "stg_payments"]
    assert edges(dag) == set()


def test_retries_per_target_and_overrides(shop: Path) -> None:
    prod = WeirDag(dag_id="shop_prod_retries", project_dir=shop, target="prod", schedule=None)
    assert {task.retries for task in prod.tasks} == {3}
    staging = WeirDag(dag_id="shop_staging", project_dir=shop, target="staging", schedule=None)
    assert {task.retries for task in staging.tasks} == {1}
    by_target = WeirDag(
        dag_id="shop_by_target",
        project_dir=shop,
        target="prod",
        retries={"prod": 5, "dev": 0},
        schedule=None,
    )
    assert {task.retries for task in by_target.tasks} == {5}
    from_default_args = WeirDag(
        dag_id="shop_default_args",
        project_dir=shop,
        target="prod",
        default_args={"retries": 2, "retry_delay": timedelta(seconds=7)},
        schedule=None,
    )
    assert {task.retries for task in from_default_args.tasks} == {2}
    assert {task.retry_delay for task in from_default_args.tasks} == {timedelta(seconds=7)}


def test_node_retries_config_wins(shop: Path) -> None:
    (shop / "models" / "stubborn.sql").write_text(
        "{{ config(retries=6) }}\nselect * from {{ ref('orders') }}\n"
    )
    dag = WeirDag(dag_id="shop_stubborn", project_dir=shop, target="prod", retries=1, schedule=None)
    assert dag.get_task("stubborn").retries == 6
    assert dag.get_task("orders").retries == 1


def test_task_group_inside_a_users_dag(shop: Path) -> None:
    with DAG(dag_id="pipeline", schedule=None, default_args={"retries": 4}) as dag:
        extract = EmptyOperator(task_id="extract")
        group = WeirTaskGroup("shop", project_dir=shop, target="prod")
        report = EmptyOperator(task_id="report")
        extract >> group >> report

    weir_tasks = [task for task in dag.tasks if isinstance(task, WeirNodeOperator)]
    assert sorted(task.task_id for task in weir_tasks) == sorted(
        f"shop.{node.name}" for node in weir.Project(shop).nodes if node.resource_type != "test"
    )
    inner = {(a.removeprefix("shop."), b.removeprefix("shop.")) for a, b in edges(dag)}
    assert inner >= SHOP_EDGES
    roots = {"shop.raw_customers", "shop.raw_orders", "shop.raw_payments"}
    assert {t for t in dag.task_ids if "extract" in dag.get_task(t).upstream_task_ids} == roots
    assert dag.get_task("report").upstream_task_ids == {"shop.customers"}
    # The DAG's default_args retries override the prod policy, as in WeirDag.
    assert {task.retries for task in weir_tasks} == {4}


def test_a_process_compiles_a_project_once(shop: Path) -> None:
    first = cached_project(shop, "dev")
    assert cached_project(str(shop), "dev") is first
    assert cached_project(shop, "prod") is not first
    assert cached_project(shop, "dev", vars={"dev_lookback_days": 1}) is not first
    WeirDag(dag_id="shop_cached", project_dir=shop, target="dev", schedule=None)
    assert cached_project(shop, "dev") is first


def test_tasks_find_the_default_target_compiled_by_the_dag_file(tmp_path: Path) -> None:
    shop = copy_shop(tmp_path / "shop")
    dag = WeirDag(dag_id="shop_default_target", project_dir=shop, schedule=None)
    task = dag.get_task("orders")
    assert task.target == "dev"
    assert cached_project(task.project_dir, task.target) is cached_project(shop)
