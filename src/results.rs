//! What a run did, node by node: statuses, timings, rows; written as dbt's
//! run_results.json (v6).

use std::path::Path;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// dbt's statuses: models end success / error / skipped; tests pass / fail / warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Fail,
    Warn,
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
        // As dbt-postgres: DDL (a view) reports rows_affected -1; a failed node nothing.
        let mut adapter_response = match (self.rows_affected, self.code.is_empty()) {
            (_, true) => json!({}),
            (Some(rows), false) => {
                json!({"_message": self.message, "code": self.code, "rows_affected": rows})
            }
            (None, false) => {
                json!({"_message": self.message, "code": self.code, "rows_affected": -1})
            }
        };
        // adapter_response is the one free-form mapping of a v6 result:
        // weir's own figures (attempts, transient, time in SQL) go there.
        adapter_response["weir"] = json!({
            "attempts": self.attempts,
            "transient": self.error.as_ref().is_some_and(Error::is_transient),
            "sql_time": self.sql_time,
        });
        json!({
            "status": self.status.as_str(),
            "timing": [
                {"name": "compile", "started_at": crate::clock::rfc3339(self.started_at), "completed_at": crate::clock::rfc3339(self.started_at)},
                {"name": "execute", "started_at": crate::clock::rfc3339(self.started_at), "completed_at": crate::clock::rfc3339(self.completed_at)},
            ],
            "thread_id": "Thread-1",
            "execution_time": self.execution_time,
            "adapter_response": adapter_response,
            // dbt: a passing test has no message, nor a skipped node (weir
            // keeps the reason for its own output).
            "message": match self.status {
                Status::Pass | Status::Skipped => Value::Null,
                _ => json!(self.message),
            },
            "failures": self.failures,
            "unique_id": self.unique_id,
            "compiled": true,
            "compiled_code": self.compiled_code,
            "relation_name": self.relation_name,
            "batch_results": null,
        })
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
        self.results.iter().any(|r| r.status.is_failure())
    }

    /// run_results.json in dbt's v6 shape.
    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self.results.iter().map(NodeResult::to_json).collect();
        json!({
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                "dbt_version": "1.9.0",
                "generated_at": self.generated_at,
                "invocation_id": self.invocation_id,
                "env": {},
            },
            "results": results,
            "elapsed_time": self.elapsed_time,
            "args": self.args,
        })
    }

    /// Write `<target_dir>/run_results.json`.
    pub fn write(&self, target_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(target_dir).map_err(|e| Error::io(target_dir, e))?;
        let path = target_dir.join("run_results.json");
        let text = serde_json::to_string_pretty(&self.to_json()).expect("run results serialize");
        let text = crate::env::secrets::scrub(&text);
        std::fs::write(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
    }
}
