//! The `weir` command line: dbt's commands and flags, each a thin call into
//! the library workflow ([`weir::workflow`]). Exit status 0 on success, 1
//! when a node failed, 2 on a usage or project error.

mod args;
mod commands;
mod output;

use args::{Cli, Command};
use weir::ResourceType;

/// Parse the command line, run the command, and return the exit status.
pub fn main() -> i32 {
    weir::timing::phase("main");
    let cli = match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    match run_command(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", weir::secrets::scrub(&err.to_string()));
            err.exit_code()
        }
    }
}

fn run_command(command: Command) -> weir::Result<i32> {
    match command {
        Command::Compile(args) => commands::compile(&args),
        Command::Ls(args) => commands::ls(&args),
        Command::Seed(args) => commands::run(&args, Some(ResourceType::Seed)),
        Command::Run(args) => commands::run(&args, Some(ResourceType::Model)),
        Command::Test(args) => commands::run(&args, Some(ResourceType::Test)),
        Command::Build(args) => commands::run(&args, None),
        Command::Snapshot(args) => commands::run(&args, Some(ResourceType::Snapshot)),
        Command::Retry(args) => commands::retry(&args),
        Command::Debug(args) => commands::debug(&args),
        Command::Deps(args) => commands::deps(&args),
        Command::Clean(args) => commands::clean(&args),
        Command::Deploy(args) => commands::deploy(&args),
        Command::Rollback(args) => commands::rollback(&args),
        Command::Grants(args) => commands::grants(&args),
        Command::Local(args) => commands::local(&args),
    }
}
