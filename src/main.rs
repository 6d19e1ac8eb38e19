//! The `weir` binary: the command line over the library workflow.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
