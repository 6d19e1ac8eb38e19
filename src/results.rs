//! What a run did, node by node: statuses, timings, rows; written as dbt's
//! run_results.json (v6).

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// dbt's statuses: models end success / error / skipped; tests pass / fail / warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Fail,
    Warn,
    /// Nothing to do: an exposure in `build`.
    NoOp,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::NoOp => "no-op",
        }
    }

    /// True when the run should exit 1 because of this node.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Error | Status::Fail)
    }
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: String,
    pub status: Status,
    /// "SELECT 42", "CREATE VIEW", or the error message.
    pub message: String,
    /// The command tag of the statement that built the node ("SELECT", "CREATE VIEW", "COPY").
    pub code: String,
    pub rows_affected: Option<u64>,
    /// For tests: what `fail_calc` counted (failing rows, by default).
    pub failures: Option<u64>,
    pub started_at: SystemTime,
    pub completed_at: SystemTime,
    /// Seconds spent on the node, retries included.
    pub execution_time: f64,
    /// How many times the node was tried (1 when it was not retried).
    pub attempts: u32,
    /// Seconds of `execution_time` spent waiting on the database; the rest
    /// is weir's own time around the SQL.
    pub sql_time: f64,
    pub error: Option<Error>,
    pub compiled_code: String,
    pub relation_name: Option<String>,
}

impl NodeResult {
    /// One entry of run_results.json's `results`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(ResultOut::of(self)).expect("a node result serializes")
    }
}

/// One entry of run_results.json's `results`, borrowed from a [`NodeResult`]:
/// serialized straight to the file, with no JSON tree in between.
#[derive(Serialize)]
struct ResultOut<'a> {
    status: &'static str,
    timing: [Timing; 2],
    thread_id: &'static str,
    execution_time: f64,
    adapter_response: AdapterResponse<'a>,
    /// dbt: a passing test has no message, nor a skipped node (weir keeps
    /// the reason for its own output).
    message: Option<&'a str>,
    failures: Option<u64>,
    unique_id: &'a str,
    compiled: bool,
    compiled_code: &'a str,
    relation_name: Option<&'a str>,
    batch_results: Option<()>,
}

#[derive(Serialize)]
struct Timing {
    name: &'static str,
    started_at: String,
    completed_at: String,
}

/// adapter_response is the one free-form mapping of a v6 result: weir's own
/// figures go there too.
#[derive(Serialize)]
struct AdapterResponse<'a> {
    #[serde(rename = "_message", skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows_affected: Option<i64>,
    weir: WeirFigures,
}

#[derive(Serialize)]
struct WeirFigures {
    attempts: u32,
    transient: bool,
    sql_time: f64,
}

impl<'a> ResultOut<'a> {
    fn of(result: &'a NodeResult) -> ResultOut<'a> {
        let started_at = crate::base::clock::rfc3339(result.started_at);
        // As dbt-postgres: DDL (a view) reports rows_affected -1; a failed node nothing.
        let reported = !result.code.is_empty();
        ResultOut {
            status: result.status.as_str(),
            timing: [
                Timing {
                    name: "compile",
                    started_at: started_at.clone(),
                    completed_at: started_at.clone(),
                },
                Timing {
                    name: "execute",
                    started_at,
                    completed_at: crate::base::clock::rfc3339(result.completed_at),
                },
            ],
            thread_id: "Thread-1",
            execution_time: result.execution_time,
            adapter_response: AdapterResponse {
                message: reported.then_some(result.message.as_str()),
                code: reported.then_some(result.code.as_str()),
                rows_affected: reported.then(|| {
                    result
                        .rows_affected
                        .map_or(-1, |rows| i64::try_from(rows).unwrap_or(i64::MAX))
                }),
                weir: WeirFigures {
                    attempts: result.attempts,
                    transient: result.error.as_ref().is_some_and(Error::is_transient),
                    sql_time: result.sql_time,
                },
            },
            message: match result.status {
                Status::Pass => None,
                // Skipped below a failure: no message; skipped for its own
                // reason (an ephemeral parent that failed to compile): its error.
                Status::Skipped if result.error.is_none() => None,
                _ => Some(&result.message),
            },
            failures: result.failures,
            unique_id: &result.unique_id,
            compiled: true,
            compiled_code: &result.compiled_code,
            relation_name: result.relation_name.as_deref(),
            batch_results: None,
        }
    }
}

/// The results of one invocation.
#[derive(Debug, Clone)]
pub struct RunResults {
    pub invocation_id: String,
    pub generated_at: String,
    pub elapsed_time: f64,
    /// The command line as dbt records it in `args` (which, select, target...).
    pub args: Value,
    pub results: Vec<NodeResult>,
}

impl RunResults {
    pub fn has_failures(&self) -> bool {
        // As dbt: a skipped node (but an exposure) fails the run too; it is
        // skipped below a failure, or for its own (its ephemeral parent's) error.
        self.results.iter().any(|r| {
            r.status.is_failure()
                || (r.status == Status::Skipped && !r.unique_id.starts_with("exposure."))
        })
    }

    /// run_results.json in dbt's v6 shape.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.out()).expect("run results serialize")
    }

    fn out(&self) -> RunResultsOut<'_> {
        RunResultsOut {
            metadata: Metadata {
                dbt_schema_version: "https://schemas.getdbt.com/dbt/run-results/v6.json",
                dbt_version: crate::base::DBT_VERSION,
                generated_at: &self.generated_at,
                invocation_id: &self.invocation_id,
                env: Empty {},
            },
            results: self.results.iter().map(ResultOut::of).collect(),
            elapsed_time: self.elapsed_time,
            args: &self.args,
        }
    }

    /// Write the results as dbt's run-results v6 JSON to `writer`.
    pub fn to_writer(&self, writer: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(writer, &self.out())
    }
}

#[derive(Serialize)]
struct RunResultsOut<'a> {
    metadata: Metadata<'a>,
    results: Vec<ResultOut<'a>>,
    elapsed_time: f64,
    args: &'a Value,
}

#[derive(Serialize)]
struct Metadata<'a> {
    dbt_schema_version: &'static str,
    dbt_version: &'static str,
    generated_at: &'a str,
    invocation_id: &'a str,
    env: Empty,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn result(status: Status, code: &str, rows: Option<u64>) -> NodeResult {
        let started_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        NodeResult {
            unique_id: "model.shop.orders".into(),
            status,
            message: format!("{code} {}", rows.unwrap_or(0)).trim().to_string(),
            code: code.into(),
            rows_affected: rows,
            failures: None,
            started_at,
            completed_at: started_at + Duration::from_millis(500),
            execution_time: 0.5,
            attempts: 1,
            sql_time: 0.25,
            error: None,
            compiled_code: "select 1".into(),
            relation_name: Some(r#""db"."s"."orders""#.into()),
        }
    }

    #[test]
    fn a_result_has_dbt_v6_shape_with_weir_figures_in_adapter_response() {
        assert_eq!(
            result(Status::Success, "SELECT", Some(3)).to_json(),
            json!({
                "status": "success",
                "timing": [
                    {"name": "compile", "started_at": "2023-11-14T22:13:20.250000Z", "completed_at": "2023-11-14T22:13:20.250000Z"},
                    {"name": "execute", "started_at": "2023-11-14T22:13:20.250000Z", "completed_at": "2023-11-14T22:13:20.750000Z"},
                ],
                "thread_id": "Thread-1",
                "execution_time": 0.5,
                "adapter_response": {
                    "_message": "SELECT 3", "code": "SELECT", "rows_affected": 3,
                    "weir": {"attempts": 1, "transient": false, "sql_time": 0.25},
                },
                "message": "SELECT 3",
                "failures": null,
                "unique_id": "model.shop.orders",
                "compiled": true,
                "compiled_code": "select 1",
                "relation_name": "\"db\".\"s\".\"orders\"",
                "batch_results": null,
            })
        );
    }

    #[test]
    fn views_report_minus_one_rows_failures_no_response_and_passes_no_message() {
        let view = result(Status::Success, "CREATE VIEW", None).to_json();
        assert_eq!(view["adapter_response"]["rows_affected"], json!(-1));
        let mut failed = result(Status::Error, "", None);
        failed.error = Some(Error::new(ErrorKind::Transient, "lost the connection"));
        let failed = failed.to_json();
        assert_eq!(
            failed["adapter_response"],
            json!({"weir": {"attempts": 1, "transient": true, "sql_time": 0.25}})
        );
        assert_eq!(failed["message"], json!("0"));
        assert_eq!(
            result(Status::Pass, "SELECT", Some(0)).to_json()["message"],
            json!(null)
        );
        assert_eq!(
            result(Status::Skipped, "", None).to_json()["message"],
            json!(null)
        );
    }
}
