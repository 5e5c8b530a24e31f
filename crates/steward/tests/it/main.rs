//! Tests of the `steward` binary as users run it: exit codes, offline commands, and the
//! crash-consistency loop that kills a real server during mutations.

mod cli;
mod kill;
mod vault_sign;
mod witness;
mod workflow;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

pub fn steward() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
}

/// Initialises a data directory (on SQLite unless a database URL is given) and returns
/// the admin token it wrote.
pub fn init(data_dir: &Path, database_url: Option<&str>) -> String {
    let mut command = steward();
    command.args(["init", "--data-dir"]).arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A running server; dropping it kills it and reaps the process.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server and returns it with its base URL (read from its first line).
pub fn start(data_dir: &Path) -> (Server, String) {
    let mut server = Server(
        steward()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("STEWARD_LOG", "error")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut reader = BufReader::new(server.0.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(url) = line.trim().strip_prefix("Steward is serving on ") {
            let url = url.to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (server, url);
        }
    }
}
