//! Data tests as dbt runs them: the test's query wrapped to count its rows
//! with `fail_calc` and judge them with `warn_if` / `error_if` and `severity`;
//! with `store_failures`, the failing rows kept in the audit schema first.

use crate::adapter::{Adapter, RelationKind, in_transaction};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Node, StoreFailuresAs, TestConfig};
use crate::results::Status;

use super::model::sql_body;
use super::{Built, Verdict, ensure_schema, swap};

/// dbt's get_test_sql.
fn test_sql(config: &TestConfig, main_sql: &str) -> String {
    let limit = config
        .limit
        .map(|n| format!("\n  limit {n}"))
        .unwrap_or_default();
    let fail_calc = &config.fail_calc;
    format!(
        "select\n  {fail_calc} as failures,\n  {fail_calc} {} as should_warn,\n  {fail_calc} {} as should_error\nfrom (\n{main_sql}{limit}\n) dbt_internal_test",
        config.warn_if, config.error_if
    )
}

pub(super) fn run(adapter: &mut dyn Adapter, node: &Node, store_failures: bool) -> Result<Built> {
    let config = TestConfig::of(node, store_failures)?;
    let sql = sql_body(node, &node.compiled_code)?;
    let main_sql = match config.store_as {
        Some(stored) => {
            let kind = match stored {
                StoreFailuresAs::Table => RelationKind::Table,
                StoreFailuresAs::View => RelationKind::View,
            };
            ensure_schema(adapter, &node.relation.schema)?;
            in_transaction(adapter, |adapter| {
                swap::replace(adapter, &node.relation, kind, |adapter, tmp| {
                    let keyword = kind.sql_keyword();
                    adapter.execute(&format!("create {keyword} {tmp} as (\n{sql}\n)"))
                })
            })?;
            format!("select * from {}", node.relation)
        }
        None => sql.to_string(),
    };
    let rows = adapter.query_text(&test_sql(&config, &main_sql))?;
    let row = rows.first().ok_or_else(|| {
        Error::new(
            ErrorKind::Database,
            format!("the query of test `{}` returned no row", node.name),
        )
    })?;
    let value = |i: usize| row.get(i).cloned().flatten();
    // `fail_calc` may be any aggregate: `count(*)` gives 3, `sum(x)` 3.0 or NULL.
    let failures = value(0)
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |f| f.max(0.0).round() as u64);
    let should_warn = value(1).as_deref() == Some("t");
    let should_error = value(2).as_deref() == Some("t");
    let results = if failures == 1 {
        "1 result".to_string()
    } else {
        format!("{failures} results")
    };
    let (status, message) = if config.error_severity && should_error {
        (
            Status::Fail,
            format!("Got {results}, configured to fail if {}", config.error_if),
        )
    } else if should_warn {
        (
            Status::Warn,
            format!("Got {results}, configured to warn if {}", config.warn_if),
        )
    } else {
        (Status::Pass, String::new())
    };
    Ok(Built {
        code: "SELECT".into(),
        message,
        rows_affected: Some(1),
        compiled_code: None,
        verdict: Some(Verdict { status, failures }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::Recorder;
    use super::*;
    use serde_json::{Value as Json, json};

    fn test_node(config: Json) -> Node {
        super::super::testing::data_test("not_null_orders_id", "dev_dbt_test__audit", config)
    }

    fn outcome(config: Json, row: [&str; 3]) -> (Recorder, Result<Built>) {
        let mut db = Recorder {
            rows: vec![row.iter().map(|v| Some(v.to_string())).collect()],
            ..Default::default()
        };
        let built = super::super::tests::build(&mut db, &test_node(config));
        (db, built)
    }

    #[test]
    fn counts_failures_and_judges_them_as_dbt_does() {
        let (db, built) = outcome(json!({"severity": "ERROR"}), ["0", "f", "f"]);
        let built = built.unwrap();
        assert_eq!(
            built.verdict,
            Some(Verdict {
                status: Status::Pass,
                failures: 0
            })
        );
        insta::assert_snapshot!(db.script(), @r"
        select
          count(*) as failures,
          count(*) != 0 as should_warn,
          count(*) != 0 as should_error
        from (
        select * from orders where id is null
        ) dbt_internal_test;
        ");

        let (_, built) = outcome(json!({}), ["3", "t", "t"]);
        let built = built.unwrap();
        assert_eq!(built.message, "Got 3 results, configured to fail if != 0");
        assert_eq!(built.verdict.unwrap().status, Status::Fail);

        let (_, built) = outcome(json!({"severity": "warn"}), ["1", "t", "t"]);
        let built = built.unwrap();
        assert_eq!(built.message, "Got 1 result, configured to warn if != 0");
        assert_eq!(
            built.verdict,
            Some(Verdict {
                status: Status::Warn,
                failures: 1
            })
        );

        let config =
            json!({"warn_if": ">= 2", "error_if": "> 5", "fail_calc": "sum(n)", "limit": 10});
        let (db, built) = outcome(config, ["3.0", "t", "f"]);
        assert_eq!(
            built.unwrap().verdict,
            Some(Verdict {
                status: Status::Warn,
                failures: 3
            })
        );
        assert!(db.statements[0].contains("sum(n) >= 2 as should_warn"));
        assert!(db.statements[0].contains("\n  limit 10\n) dbt_internal_test"));
    }

    #[test]
    fn stored_failures_are_queried_from_the_audit_table() {
        let (db, built) = outcome(json!({"store_failures": true}), ["0", "f", "f"]);
        built.unwrap();
        insta::assert_snapshot!(db.script(), @r#"
        create schema if not exists "dev_dbt_test__audit";
        begin;
        create table "postgres"."dev_dbt_test__audit"."not_null_orders_id__weir_tmp" as (
        select * from orders where id is null
        );
        alter table "postgres"."dev_dbt_test__audit"."not_null_orders_id__weir_tmp" rename to "not_null_orders_id";
        commit;
        select
          count(*) as failures,
          count(*) != 0 as should_warn,
          count(*) != 0 as should_error
        from (
        select * from "postgres"."dev_dbt_test__audit"."not_null_orders_id"
        ) dbt_internal_test;
        "#);
    }

    #[test]
    fn a_test_builds_a_relation_when_its_config_or_the_flag_stores_failures() {
        let cases = [
            (json!({}), false, false),
            (json!({}), true, true),
            (json!({"store_failures": true}), false, true),
            (json!({"store_failures": false}), true, false),
            (json!({"store_failures_as": "view"}), false, true),
            (json!({"store_failures_as": "ephemeral"}), true, false),
            // The test fails on its config before it builds anything.
            (json!({"severity": "fatal"}), true, false),
        ];
        for (config, flag, builds) in cases {
            let node = test_node(config.clone());
            assert_eq!(
                crate::manifest::builds_relation(&node, flag),
                builds,
                "{config} with --store-failures {flag}"
            );
        }
    }

    #[test]
    fn bad_configs_name_the_file() {
        let (_, built) = outcome(json!({"severity": "fatal"}), ["0", "f", "f"]);
        assert_eq!(
            built.unwrap_err().to_string(),
            "models/schema.yml: `severity` of test `not_null_orders_id` must be `error` or `warn`, got `\"fatal\"`"
        );
    }
}
