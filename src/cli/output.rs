//! What the command line prints: dbt's log lines (text, or JSON with
//! `--log-format json`), a node's progress line, the end-of-run summary.

use serde_json::{Value as Json, json};

use weir::Event;
use weir::logs::emit as log;
use weir::secrets::{scrub, scrub_with};
use weir::workflow::plural;
use weir::{Materialization, ResourceType};
use weir::{Plan, Task};
use weir::{RunResults, Status};

/// dbt's NoNodesForSelectionCriteria warning.
pub fn unmatched_message(criterion: &str) -> String {
    format!("The selection criterion '{criterion}' does not match any enabled nodes")
}

/// What side effects this run skipped, as `[dev] would run: ...` lines.
pub fn print_skipped_side_effects() {
    let notes = weir::workflow::take_side_effect_notes();
    if notes.is_empty() {
        return;
    }
    println!("\nSide effects run only on protected targets; skipped here:");
    for note in notes {
        println!("  {note}");
    }
}

/// `sql table model`, `seed file`: how dbt names what a task builds.
fn task_description(task: &Task) -> String {
    match (task.resource_type, &task.materialization) {
        (ResourceType::Seed, _) => "seed file".to_string(),
        (ResourceType::Snapshot, _) => "snapshot".to_string(),
        (ResourceType::Test, _) | (_, Materialization::Test) => "test".to_string(),
        (_, m) => format!("sql {} model", m.as_str()),
    }
}

/// What a progress line names: `schema.relation`, or a test's name.
fn task_label(task: &Task) -> String {
    if task.resource_type == ResourceType::Test {
        task.name.clone()
    } else {
        format!("{}.{}", task.relation.schema, task.relation.identifier)
    }
}

/// A dbt progress line: text, dots, and a bracketed status at column 80.
fn progress_line(index: usize, total: usize, text: &str, status: &str) -> String {
    let head = format!("{index} of {total} {text} ");
    let dots = 80usize.saturating_sub(head.len() + status.len() + 1).max(3);
    format!("{head}{} {status}", ".".repeat(dots))
}

/// A node's line; `secrets` are masked in it (see [`weir::secrets::known`]).
pub fn print_event(event: &Event, secrets: &[String]) {
    let name = match event {
        Event::Start { .. } => "NodeStart",
        Event::Finish { .. } => "NodeFinished",
        Event::Hook { .. } => "HookFinished",
    };
    // Only the JSON log prints the data.
    let data = if weir::logs::is_json() {
        event_data(event, secrets)
    } else {
        Json::Null
    };
    let line = match event {
        // dbt prints an exposure's end only.
        Event::Start { task, .. } if task.resource_type == ResourceType::Exposure => return,
        Event::Finish {
            index,
            total,
            task,
            result,
        } if task.resource_type == ResourceType::Exposure => {
            let (word, status) = match result.status {
                Status::NoOp => ("NO-OP", format!("[NO-OP in {:.2}s]", result.execution_time)),
                _ => ("SKIP", "[SKIP]".to_string()),
            };
            progress_line(
                *index,
                *total,
                &format!("{word} exposure {}", task.name),
                &status,
            )
        }
        Event::Start { index, total, task } => {
            let text = format!("START {} {}", task_description(task), task_label(task));
            progress_line(*index, *total, &text, "[RUN]")
        }
        Event::Hook {
            name,
            index,
            total,
            result,
        } => {
            let took = result.execution_time;
            let (word, status) = match result.status {
                Status::Error => ("ERROR", format!("[ERROR in {took:.2}s]")),
                _ => ("OK", format!("[OK in {took:.2}s]")),
            };
            progress_line(*index, *total, &format!("{word} hook: {name}"), &status)
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } if task.resource_type == ResourceType::Test => {
            let took = result.execution_time;
            let failures = result.failures.unwrap_or(0);
            let (text, status) = match result.status {
                Status::Pass | Status::Success | Status::NoOp => (
                    format!("PASS {}", task.name),
                    format!("[PASS in {took:.2}s]"),
                ),
                Status::Warn => (
                    format!("WARN {failures} {}", task.name),
                    format!("[WARN {failures} in {took:.2}s]"),
                ),
                Status::Fail => (
                    format!("FAIL {failures} {}", task.name),
                    format!("[FAIL {failures} in {took:.2}s]"),
                ),
                Status::Error => (
                    format!("ERROR {}", task.name),
                    format!("[ERROR in {took:.2}s]"),
                ),
                Status::Skipped => (format!("SKIP test {}", task.name), "[SKIP]".to_string()),
            };
            progress_line(*index, *total, &text, &status)
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } => {
            let relation = format!("{}.{}", task.relation.schema, task.relation.identifier);
            let (word, status) = match result.status {
                Status::Success | Status::Pass | Status::NoOp => {
                    let word = match task.resource_type {
                        ResourceType::Seed => "OK loaded",
                        ResourceType::Snapshot => "OK snapshotted",
                        _ => "OK created",
                    };
                    (
                        word.to_string(),
                        format!("[{} in {:.2}s]", result.message, result.execution_time),
                    )
                }
                Status::Skipped => ("SKIP".to_string(), "[SKIP]".to_string()),
                Status::Warn => (
                    "WARN".to_string(),
                    format!("[WARN in {:.2}s]", result.execution_time),
                ),
                Status::Error | Status::Fail => (
                    "ERROR creating".to_string(),
                    format!("[ERROR in {:.2}s]", result.execution_time),
                ),
            };
            progress_line(
                *index,
                *total,
                &match (task.resource_type, result.status) {
                    // dbt: `OK snapshotted snapshots.orders_snapshot`.
                    (ResourceType::Snapshot, Status::Success) => format!("{word} {relation}"),
                    _ => format!("{word} {} {relation}", task_description(task)),
                },
                &status,
            )
        }
    };
    log(name, &scrub_with(&line, secrets), data);
}

/// The event's `data` in dbt's JSON log: node_info as dbt gives it.
fn event_data(event: &Event, secrets: &[String]) -> Json {
    let node_info = |task: &Task, status: &str, result: Option<&weir::NodeResult>| {
        json!({
            "unique_id": task.unique_id,
            "node_name": task.name,
            "resource_type": task.resource_type.as_str(),
            "materialized": task.materialization.as_str(),
            "node_status": status,
            "node_relation": {
                "database": task.relation.database,
                "schema": task.relation.schema,
                "alias": task.relation.identifier,
                "relation_name": task.relation.to_string(),
            },
            "execution_time": result.map(|r| r.execution_time),
            "message": result.map(|r| scrub_with(&r.message, secrets)),
            "failures": result.and_then(|r| r.failures),
            "rows_affected": result.and_then(|r| r.rows_affected),
            "adapter_response": result.filter(|r| !r.code.is_empty()).map(|r| json!({"_message": r.message, "code": r.code, "rows_affected": r.rows_affected})),
        })
    };
    match event {
        Event::Start { index, total, task } => {
            json!({"index": index, "total": total, "node_info": node_info(task, "started", None)})
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } => {
            json!({"index": index, "total": total, "node_info": node_info(task, result.status.as_str(), Some(result))})
        }
        Event::Hook {
            name,
            index,
            total,
            result,
        } => {
            json!({"index": index, "total": total, "hook": name, "status": result.status.as_str(), "execution_time": result.execution_time})
        }
    }
}

pub fn print_summary(plan: &Plan, results: &RunResults) {
    // As dbt counts: nodes, not the on-run-start / on-run-end hooks.
    let count = |status: Status| {
        results
            .results
            .iter()
            .filter(|r| r.status == status && !r.unique_id.starts_with("operation."))
            .count()
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for task in &plan.tasks {
        let kind = match task.resource_type {
            ResourceType::Seed => "seed".to_string(),
            ResourceType::Snapshot => "snapshot".to_string(),
            ResourceType::Test => "data test".to_string(),
            ResourceType::Exposure => "exposure".to_string(),
            _ => format!("{} model", task.materialization.as_str()),
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| plural(*n, k)).collect();
    log("Blank", "", json!({}));
    log(
        "FinishedRunningStats",
        &format!(
            "Finished running {} in {:.2}s.",
            kinds.join(", "),
            results.elapsed_time
        ),
        json!({"elapsed_time": results.elapsed_time}),
    );
    // As dbt, a node skipped for its own error (an ephemeral parent that
    // failed to compile) is counted with the errors.
    let failures: Vec<_> = results
        .results
        .iter()
        .filter(|r| r.status.is_failure() || (r.status == Status::Skipped && r.error.is_some()))
        .collect();
    let warnings: Vec<_> = results
        .results
        .iter()
        .filter(|r| r.status == Status::Warn)
        .collect();
    let outcome = if failures.is_empty() && warnings.is_empty() {
        "Completed successfully".to_string()
    } else if failures.is_empty() {
        format!("Completed with {}:", plural(warnings.len(), "warning"))
    } else if warnings.is_empty() {
        format!("Completed with {}:", plural(failures.len(), "error"))
    } else {
        format!(
            "Completed with {} and {}:",
            plural(failures.len(), "error"),
            plural(warnings.len(), "warning")
        )
    };
    log("Blank", "", json!({}));
    log("EndOfRunSummary", &outcome, json!({}));
    for result in failures.iter().chain(&warnings) {
        let what = match result.status {
            Status::Fail => "Failure in",
            Status::Warn => "Warning in",
            _ => "Error in",
        };
        log("Blank", "", json!({}));
        log(
            "RunResultError",
            &format!("  {what} {}: {}", result.unique_id, scrub(&result.message)),
            json!({"unique_id": result.unique_id, "status": result.status.as_str()}),
        );
    }
    let (pass, warn, error, skip, noop) = (
        count(Status::Success) + count(Status::Pass),
        count(Status::Warn),
        count(Status::Error) + count(Status::Fail),
        count(Status::Skipped),
        count(Status::NoOp),
    );
    let total = plan.tasks.len();
    log("Blank", "", json!({}));
    log(
        "StatsLine",
        &format!(
            "Done. PASS={pass} WARN={warn} ERROR={error} SKIP={skip} NO-OP={noop} TOTAL={total}"
        ),
        json!({"stats": {"pass": pass, "warn": warn, "error": error, "skip": skip, "noop": noop, "total": total}}),
    );
}
