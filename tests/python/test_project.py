"""The Python API without a database: nodes, selection, tasks, vars, manifest, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import weir
from weir.errors import ProjectError, UsageError, WeirError

SEEDS = ["raw_customers", "raw_orders", "raw_payments"]
MODELS = ["stg_customers", "stg_orders", "stg_payments", "orders", "customers"]
NO_TESTS = "resource_type:test"


def test_nodes_describe_models_and_seeds(shop: Path) -> None:
    project = weir.Project(shop, target="dev")
    assert project.name == "shop"
    assert project.target_name == "dev"
    nodes = {node.name: node for node in project.nodes}
    built = [name for name, node in nodes.items() if node.resource_type != "test"]
    assert sorted(built) == sorted(SEEDS + MODELS)

    orders = nodes["orders"]
    assert orders.unique_id == "model.shop.orders"
    assert orders.resource_type == "model"
    assert orders.materialization == "table"
    assert orders.depends_on == ["model.shop.stg_orders", "model.shop.stg_payments"]
    assert orders.relation_name == f'"postgres"."{project.target_schema}_marts"."orders"'
    assert orders.tags == ["marts"]
    assert orders.retries is None
    assert orders.original_file_path == "models/marts/orders.sql"
    assert "credit_card_amount" in orders.compiled_code

    seed = nodes["raw_orders"]
    assert (seed.resource_type, seed.materialization, seed.depends_on) == ("seed", "seed", [])
    assert nodes["stg_orders"].materialization == "view"

    # The data tests of models/*/schema.yml are nodes too.
    test = nodes["unique_orders_order_id"]
    assert (test.resource_type, test.materialization) == ("test", "test")
    assert test.depends_on == ["model.shop.orders"]
    assert test.relation_name is None
    assert sum(node.resource_type == "test" for node in project.nodes) == 12


def test_nodes_come_parents_first(shop: Path) -> None:
    project = weir.Project(shop)
    position = {node.unique_id: i for i, node in enumerate(project.nodes)}
    for node in project.nodes:
        for parent in node.depends_on:
            assert position[parent] < position[node.unique_id]


def test_node_by_name_or_id(shop: Path) -> None:
    project = weir.Project(shop)
    assert project.node("orders").unique_id == "model.shop.orders"
    assert project.node("model.shop.orders").name == "orders"
    with pytest.raises(UsageError, match="no node `ordrs`") as info:
        project.node("ordrs")
    assert info.value.hint == "did you mean `orders`?"


def test_select_uses_dbt_syntax(shop: Path) -> None:
    project = weir.Project(shop)

    def select(*args: object, **kwargs: object) -> list[str]:
        return [i for i in project.select(*args, **kwargs) if not i.startswith("test.")]

    assert select("+orders") == [
        "seed.shop.raw_orders",
        "model.shop.stg_orders",
        "seed.shop.raw_payments",
        "model.shop.stg_payments",
        "model.shop.orders",
    ]
    assert select("tag:marts") == ["model.shop.orders", "model.shop.customers"]
    assert select(["tag:marts"], exclude="customers") == ["model.shop.orders"]
    assert select("resource_type:seed") == [f"seed.shop.{name}" for name in SEEDS]
    assert select("stg_orders+ path:models/staging/stg_payments.sql") == [
        "model.shop.stg_orders",
        "model.shop.stg_payments",
        "model.shop.orders",
        "model.shop.customers",
    ]
    assert len(project.select(exclude=NO_TESTS)) == 8
    assert len(project.select()) == 8 + 12


def test_selecting_a_model_selects_its_tests(shop: Path) -> None:
    # dbt's eager indirect selection: a test comes along with anything it tests.
    selected = weir.Project(shop).select("orders")
    assert "model.shop.orders" in selected
    assert "test.shop.unique_orders_order_id.fed79b3a6e" in selected
    assert "test.shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2" in (
        selected
    )
    assert not any("stg_orders" in i for i in selected)


def test_selectors_yml_and_indirect_selection(shop: Path) -> None:
    (shop / "selectors.yml").write_text(
        "selectors:\n  - name: marts\n    definition:\n      method: tag\n      value: marts\n"
    )
    project = weir.Project(shop)
    by_selector = project.select(selector="marts", indirect_selection="empty")
    assert by_selector == ["model.shop.orders", "model.shop.customers"]
    assert [t.name for t in project.tasks(selector="marts", indirect_selection="empty")] == [
        "orders",
        "customers",
    ]
    cautious = project.select("orders", indirect_selection="cautious")
    assert "test.shop.unique_orders_order_id.fed79b3a6e" in cautious
    assert not any(i.startswith("test.shop.relationships") for i in cautious)
    with pytest.raises(UsageError, match="unknown indirect selection"):
        project.select("orders", indirect_selection="lazy")


def test_bad_selector_is_a_usage_error(shop: Path) -> None:
    with pytest.raises(UsageError, match="unknown selection method `colour`"):
        weir.Project(shop).select("colour:red")


def test_tasks_follow_the_model_dag(shop: Path) -> None:
    project = weir.Project(shop)
    tasks = {task.name: task for task in project.tasks(exclude=NO_TESTS)}
    assert sorted(tasks) == sorted(SEEDS + MODELS)
    assert tasks["customers"].upstream == ["model.shop.orders", "model.shop.stg_customers"]
    assert tasks["raw_orders"].upstream == []
    assert tasks["orders"].relation_name == project.node("orders").relation_name
    selected = project.tasks(select="orders+", exclude=NO_TESTS)
    assert [t.name for t in selected] == ["orders", "customers"]
    # Upstream tasks outside the selection are not waited for.
    assert selected[1].upstream == ["model.shop.orders"]


def test_tasks_wait_across_unselected_nodes_as_dbt_does(shop: Path) -> None:
    # dbt keeps the order of the whole DAG in a selection: customers is built
    # from raw_orders through stg_orders and orders, which are not selected.
    tasks = weir.Project(shop).tasks(select="raw_orders customers", exclude=NO_TESTS)
    assert {t.name: t.upstream for t in tasks} == {
        "raw_orders": [],
        "customers": ["seed.shop.raw_orders"],
    }
    # And the tests of a selected node above it still gate it.
    tasks = {t.name: t for t in weir.Project(shop).tasks(select="stg_orders customers")}
    tests_of_stg_orders = {
        t.unique_id for t in tasks.values() if t.upstream == ["model.shop.stg_orders"]
    }
    assert len(tests_of_stg_orders) == 3
    assert set(tasks["customers"].upstream) == {"model.shop.stg_orders", *tests_of_stg_orders}


def test_tasks_with_data_tests_run_them_as_dbt_build_does(shop: Path) -> None:
    tasks = {task.name: task for task in weir.Project(shop).tasks()}
    assert tasks["unique_orders_order_id"].upstream == ["model.shop.orders"]
    assert tasks["unique_orders_order_id"].relation_name is None
    # What is built on `orders` waits for the tests of `orders`.
    assert "test.shop.unique_orders_order_id.fed79b3a6e" in tasks["customers"].upstream


@pytest.mark.parametrize(("target", "retries"), [("dev", 0), ("staging", 1), ("prod", 3)])
def test_retries_follow_the_target_policy(shop: Path, target: str, retries: int) -> None:
    tasks = weir.Project(shop, target=target).tasks()
    assert {task.retries for task in tasks} == {retries}


def test_retries_override_and_node_config(shop: Path) -> None:
    (shop / "models" / "stubborn.sql").write_text(
        "{{ config(retries=7) }}\nselect * from {{ ref('orders') }}\n"
    )
    project = weir.Project(shop, target="prod")
    assert project.node("stubborn").retries == 7
    tasks = {task.name: task.retries for task in project.tasks(retries=1)}
    assert tasks["stubborn"] == 7
    assert tasks["orders"] == 1


def test_vars_as_dict_or_yaml(shop: Path) -> None:
    default = weir.Project(shop).node("stg_orders").compiled_code
    assert "- 3650" in default
    as_dict = weir.Project(shop, vars={"dev_lookback_days": 30}).node("stg_orders")
    assert "- 30" in as_dict.compiled_code
    as_yaml = weir.Project(shop, vars="{dev_lookback_days: 40}").node("stg_orders")
    assert "- 40" in as_yaml.compiled_code
    with pytest.raises(UsageError, match="vars must be a mapping"):
        weir.Project(shop, vars="[1, 2]")


def test_manifest_json_is_dbts_shape(shop: Path) -> None:
    manifest = json.loads(weir.Project(shop).manifest_json())
    assert manifest["metadata"]["project_name"] == "shop"
    assert manifest["parent_map"]["model.shop.orders"] == [
        "model.shop.stg_orders",
        "model.shop.stg_payments",
    ]
    assert set(manifest["nodes"]) == {node.unique_id for node in weir.Project(shop).nodes}
    assert len(manifest["nodes"]) == 20


def test_missing_ref_names_the_file_and_line(shop: Path) -> None:
    (shop / "models" / "staging" / "stg_orders.sql").write_text(
        "select *\nfrom {{ ref('raw_order') }}\n"
    )
    with pytest.raises(ProjectError) as info:
        weir.Project(shop)
    error = info.value
    assert "models/staging/stg_orders.sql" in str(error)
    assert "`raw_order` not found" in str(error)
    assert "did you mean `raw_orders`?" in str(error)
    assert error.file is not None and error.file.endswith("stg_orders.sql")
    assert error.line == 2


def test_cycle_prints_the_loop(shop: Path) -> None:
    (shop / "models" / "staging" / "stg_customers.sql").write_text(
        "select * from {{ ref('customers') }}\n"
    )
    with pytest.raises(ProjectError, match="cycle") as info:
        weir.Project(shop)
    assert info.value.kind == "cycle"
    assert "`customers`" in str(info.value) and "`stg_customers`" in str(info.value)


def test_template_error_names_the_file(shop: Path) -> None:
    (shop / "models" / "marts" / "orders.sql").write_text("select {{ 1 + }}\n")
    with pytest.raises(ProjectError) as info:
        weir.Project(shop)
    assert "models/marts/orders.sql" in str(info.value)
    assert info.value.kind == "template"


def test_bad_project_yaml_and_profile(shop: Path, tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"no dbt_project\.yml"):
        weir.Project(tmp_path / "nowhere")
    with pytest.raises(ProjectError, match="target `qa` not found") as info:
        weir.Project(shop, target="qa")
    assert info.value.file is not None and info.value.file.endswith("profiles.yml")
    (shop / "dbt_project.yml").write_text("name: [unclosed\n")
    with pytest.raises(ProjectError) as info:
        weir.Project(shop)
    assert "dbt_project.yml" in str(info.value)


def test_every_error_is_a_weir_error() -> None:
    for cls in (
        weir.ProjectError,
        weir.UsageError,
        weir.DatabaseError,
        weir.TransientError,
    ):
        assert issubclass(cls, WeirError)
    assert not issubclass(weir.TransientError, weir.DatabaseError)
    assert weir.errors.TransientError is weir.TransientError
