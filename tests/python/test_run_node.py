"""run_node on weir's embedded PostgreSQL: results, and database errors as
the right exception classes."""

from __future__ import annotations

from pathlib import Path

import pytest

import weir
from weir.errors import DatabaseError, TransientError, UsageError


def test_run_node_builds_seeds_and_models(db_shop: Path) -> None:
    project = weir.Project(db_shop, target="dev")
    for unique_id in project.select("+customers", exclude="resource_type:test"):
        result = project.run_node(unique_id)
        assert result["status"] == "success", result
        assert result["unique_id"] == unique_id
        assert result["relation_name"] == project.node(unique_id).relation_name
        assert result["execution_time"] >= 0
    seed = project.run_node("seed.shop.raw_payments")
    assert (seed["code"], seed["rows_affected"]) == ("COPY", 38)
    schema = project.target_schema
    [[count]] = project.query(f'select count(*) from "{schema}_marts"."customers"')
    assert count == "10"


def test_data_tests_pass_or_fail_without_raising(db_shop: Path) -> None:
    project = weir.Project(db_shop, target="dev")
    for unique_id in project.select("+stg_customers", exclude="resource_type:test"):
        project.run_node(unique_id)
    passed = project.run_node("test.shop.unique_stg_customers_customer_id.c7614daada")
    assert (passed["status"], passed["failures"]) == ("pass", 0)
    schema = project.target_schema
    project.query(f"insert into \"{schema}\".\"raw_customers\" values (1, 'Dup', 'D.')")
    try:
        failed = project.run_node("test.shop.unique_stg_customers_customer_id.c7614daada")
        assert (failed["status"], failed["failures"]) == ("fail", 1)
    finally:
        project.run_node("seed.shop.raw_customers")


def test_sql_error_is_a_database_error_naming_the_node(db_shop: Path) -> None:
    project = weir.Project(db_shop, target="dev")
    project.run_node("seed.shop.raw_orders")
    project.run_node("model.shop.stg_orders")
    with pytest.raises(DatabaseError, match="no_such_column") as info:
        project.run_node("model.shop.broken")
    assert info.value.kind == "database"
    assert "42703" in str(info.value)


def test_serialization_failure_is_transient(db_shop: Path) -> None:
    project = weir.Project(db_shop, target="dev")
    project.query("create sequence if not exists public.weir_tests_once")
    project.query(
        "create or replace function public.weir_tests_fail_once() returns int"
        " language plpgsql as $$ begin if nextval('public.weir_tests_once') = 1 then"
        " raise exception 'try again' using errcode = '40001'; end if; return 1; end $$"
    )
    with pytest.raises(TransientError, match="try again") as info:
        project.query("select public.weir_tests_fail_once()")
    assert info.value.kind == "transient"
    assert project.query("select public.weir_tests_fail_once()") == [["1"]]


def test_unknown_node_is_a_usage_error(db_shop: Path) -> None:
    with pytest.raises(UsageError, match=r"no node `model\.shop\.nope`"):
        weir.Project(db_shop).run_node("model.shop.nope")
