//! Running the real `palisade run` as a child process: start it, watch its
//! output, stop it with a signal the way an operator would, and never
//! leave it behind — the guard kills it on drop, so a failed assertion
//! still cleans up.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the appliance could not be started, watched or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplianceError {
    /// The binary could not be spawned or signalled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It exited while the test was waiting for it.
    #[error(
        "palisade exited ({status}) while waiting for {waiting_for}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    )]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// What the test was waiting for.
        waiting_for: String,
        /// Everything it printed.
        stdout: String,
        /// Everything it printed on stderr.
        stderr: String,
    },
    /// A bounded wait ran out.
    #[error(
        "timed out after {after:?} waiting for {waiting_for}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    )]
    Timeout {
        /// How long the test waited.
        after: Duration,
        /// What it waited for.
        waiting_for: String,
        /// Everything it printed so far.
        stdout: String,
        /// Everything it printed on stderr so far.
        stderr: String,
    },
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a
/// test that binds it a moment later).
pub fn free_local_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port on 127.0.0.1")
}

/// A child process whose stdout and stderr are collected as it runs,
/// killed (SIGKILL) and reaped on drop if still running.
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .expect("output buffer")
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

impl ChildGuard {
    /// Spawns `command` with piped output.
    pub fn spawn(name: &'static str, command: &mut Command) -> Result<Self, ApplianceError> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ApplianceError::Io {
                what: "spawn",
                source,
            })?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, Arc::clone(&stdout)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, Arc::clone(&stderr)));
        }
        Ok(ChildGuard {
            name,
            child: Some(child),
            stdout,
            stderr,
            readers,
        })
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("output buffer").clone()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("output buffer").clone()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails if the child has exited.
    pub fn check_running(&mut self, waiting_for: &str) -> Result<(), ApplianceError> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait().map_err(|source| ApplianceError::Io {
                what: "try_wait",
                source,
            })?,
            None => None,
        };
        match exited {
            Some(status) => Err(ApplianceError::Exited {
                status,
                waiting_for: format!("{} {waiting_for}", self.name),
                stdout: self.stdout(),
                stderr: self.stderr(),
            }),
            None => Ok(()),
        }
    }

    /// Polls `ready` every 50 ms until it yields a value, the child exits,
    /// or `limit` passes.
    pub fn wait_for<T>(
        &mut self,
        waiting_for: &str,
        limit: Duration,
        mut ready: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, ApplianceError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = ready(self) {
                return Ok(value);
            }
            self.check_running(waiting_for)?;
            if Instant::now() >= deadline {
                return Err(ApplianceError::Timeout {
                    after: limit,
                    waiting_for: format!("{} {waiting_for}", self.name),
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (a `kill -s` name such as `TERM`) and waits up to
    /// `limit` for the exit; kills it if it does not go.
    pub fn stop(mut self, signal: &str, limit: Duration) -> Result<Finished, ApplianceError> {
        let pid = self.pid().map(|p| p.to_string()).unwrap_or_default();
        let sent = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .map_err(|source| ApplianceError::Io {
                what: "kill",
                source,
            })?;
        if !sent.success() {
            self.check_running("to take a signal")?;
        }
        let deadline = Instant::now() + limit;
        let mut child = self.child.take().expect("running child");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ApplianceError::Timeout {
                        after: limit,
                        waiting_for: format!("{} to exit on SIG{signal}", self.name),
                        stdout: self.stdout(),
                        stderr: self.stderr(),
                    });
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `palisade run --config CONFIG --metrics-listen METRICS` and waits
/// (up to `limit`) until it says it is forwarding.
pub fn start_palisade(
    config: &Path,
    metrics: SocketAddr,
    limit: Duration,
) -> Result<ChildGuard, ApplianceError> {
    let mut guard = ChildGuard::spawn(
        "palisade",
        Command::new(crate::palisade_bin())
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--metrics-listen")
            .arg(metrics.to_string()),
    )?;
    guard.wait_for("to start forwarding", limit, |g| {
        g.stdout().contains("palisade: forwarding").then_some(())
    })?;
    Ok(guard)
}
