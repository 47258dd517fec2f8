//! Shared helpers of the CLI integration tests: a real `palisade serve` process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `palisade serve`, killed on drop if still running.
pub struct ServerProcess {
    child: Child,
    pub url: String,
    /// The lines `serve` printed on stdout before it listened (the bootstrap lines, if any).
    pub stdout_lines: Vec<String>,
}

impl ServerProcess {
    /// Starts `palisade serve` on a free port over `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_args(data_dir, &[])
    }

    /// Like [`ServerProcess::start`], with more `serve` flags (e.g. `--allow-insecure-webhooks`).
    pub fn start_with_args(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_listening(data_dir, "127.0.0.1:0", extra_args)
    }

    /// Starts `palisade serve` on a given address (a restart on the port of a killed server).
    pub fn start_listening(data_dir: &Path, listen: &str, extra_args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn palisade serve");
        let (sender, receiver) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(start) = line.find("listening on http://") {
                    let url = line[start + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = sender.send(url);
                }
            }
        });
        let url = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("serve listens within 60 s");
        // Whatever serve printed before listening is complete now; stdout is closed only at exit,
        // so read lines while they are there without waiting for more.
        let stdout = child.stdout.take().expect("stdout");
        let (line_sender, line_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_sender.send(line);
            }
        });
        let mut stdout_lines = Vec::new();
        while let Ok(line) = line_receiver.recv_timeout(Duration::from_millis(500)) {
            stdout_lines.push(line);
        }
        Self {
            child,
            url,
            stdout_lines,
        }
    }

    /// Sends SIGTERM and returns whether the process exited successfully (graceful shutdown).
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        status.success()
    }
}

impl ServerProcess {
    /// Kills the process with SIGKILL — no shutdown, no flush, as a crash or the OOM killer
    /// would — and waits for it to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Returns the admin key and instance id the first start printed.
    pub fn bootstrap(&self) -> (String, String) {
        let value = |name: &str| {
            self.stdout_lines
                .iter()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no `{name}:` line in {:?}", self.stdout_lines))
                .to_owned()
        };
        (value("admin_key"), value("instance_id"))
    }
}
