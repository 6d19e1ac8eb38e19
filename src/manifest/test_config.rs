//! What a node's build writes: a data test's configs read with dbt's
//! defaults, and the one rule for whether a build creates a relation.

use serde_json::Value as Json;

use super::{Node, ResourceType};
use crate::error::{Error, ErrorKind, Result};

/// How a test keeps its failing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailuresAs {
    Table,
    View,
}

/// A test's configs, with dbt's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConfig {
    /// `severity: error` (the default) fails; `warn` only warns.
    pub error_severity: bool,
    pub fail_calc: String,
    pub warn_if: String,
    pub error_if: String,
    pub limit: Option<u64>,
    /// Where failing rows are stored: None, a table or a view.
    pub store_as: Option<StoreFailuresAs>,
}

impl TestConfig {
    /// `store_failures_flag`: --store-failures, for tests whose config does not say.
    pub fn of(node: &Node, store_failures_flag: bool) -> Result<TestConfig> {
        let text = |key: &str, default: &str| -> String {
            node.config
                .get(key)
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .to_string()
        };
        let invalid = |key: &str, expected: &str, got: &Json| {
            Error::new(
                ErrorKind::Project,
                format!(
                    "`{key}` of test `{}` must be {expected}, got `{got}`",
                    node.name
                ),
            )
        };
        let error_severity = match text("severity", "error").to_ascii_lowercase().as_str() {
            "error" => true,
            "warn" => false,
            _ => {
                return Err(invalid(
                    "severity",
                    "`error` or `warn`",
                    &node.config["severity"],
                ));
            }
        };
        let limit = match node.config.get("limit") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => return Err(invalid("limit", "a whole number", other)),
        };
        let store_failures = match node.config.get("store_failures") {
            None | Some(Json::Null) => store_failures_flag.then_some(true),
            Some(Json::Bool(store)) => Some(*store),
            Some(other) => return Err(invalid("store_failures", "true or false", other)),
        };
        // dbt: `store_failures_as` alone turns storing on; `ephemeral` turns it off.
        let store_as = match node.config.get("store_failures_as").and_then(Json::as_str) {
            Some("ephemeral") => None,
            Some("view") if store_failures != Some(false) => Some(StoreFailuresAs::View),
            Some("table") if store_failures != Some(false) => Some(StoreFailuresAs::Table),
            None if store_failures == Some(true) => Some(StoreFailuresAs::Table),
            None | Some("view" | "table") => None,
            Some(other) => {
                return Err(invalid(
                    "store_failures_as",
                    "`table`, `view` or `ephemeral`",
                    &Json::String(other.to_string()),
                ));
            }
        };
        Ok(TestConfig {
            error_severity,
            fail_calc: text("fail_calc", "count(*)"),
            warn_if: text("warn_if", "!= 0"),
            error_if: text("error_if", "!= 0"),
            limit,
            store_as,
        })
    }
}

/// Whether building `node` creates or replaces its relation: a test only
/// when it stores its failing rows, by its own config or by --store-failures
/// (`store_failures_flag`). A test config that [`TestConfig::of`] rejects
/// stores nothing: the test fails first.
///
/// The one rule for what a run writes: the advisory lock, the protected
/// schemas check, the CI schemas recorded for `weir clean`, the schemas a
/// deploy swaps and the grants all ask it.
pub fn builds_relation(node: &Node, store_failures_flag: bool) -> bool {
    if node.resource_type == ResourceType::Test {
        return TestConfig::of(node, store_failures_flag)
            .is_ok_and(|config| config.store_as.is_some());
    }
    node.is_relational()
}
