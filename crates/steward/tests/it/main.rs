//! Tests of the `steward` binary as users run it: exit codes, offline commands, and the
//! crash-consistency loop that kills a real server during mutations.

mod cli;
mod kill;

pub fn steward() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
}
