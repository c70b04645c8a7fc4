//! Network namespaces, the real `palisade run` over TAP ports, and small
//! clients and servers inside the namespaces: the pieces of the TAP
//! end-to-end tests (`tests/tap_e2e.rs`), each a guard that cleans up in
//! `Drop` so a failing assertion leaves no namespace, process or TAP device
//! behind.
//!
//! Everything is driven through ordinary tools (`ip`, `kill`, `curl`,
//! `ping`, python3) as a user would, and every wait is bounded.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Runs `program args`, returning its output; panics only if it cannot be
/// started at all (a missing tool is a broken test host).
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"))
}

/// Runs `ip args` and panics, naming the command, if it fails.
pub fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace of the test's own, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` (deleting a stale one of a crashed run).
    pub fn new(name: &str) -> Netns {
        if Path::new("/run/netns").join(name).exists() {
            let _ = run("ip", &["netns", "del", name]);
        }
        ip(&["netns", "add", name]);
        ip(&["-n", name, "link", "set", "dev", "lo", "up"]);
        Netns {
            name: name.to_owned(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves `iface` into the namespace and gives it `mac`, `cidr` and a
    /// default route via `gateway`. (TX checksum offload stays on: the TAP
    /// device hands palisade complete checksums, as these tests show.)
    pub fn adopt(&self, iface: &str, mac: &str, cidr: &str, gateway: &str) {
        let ns = self.name.as_str();
        ip(&["link", "set", "dev", iface, "netns", ns]);
        ip(&["-n", ns, "link", "set", "dev", iface, "address", mac]);
        ip(&["-n", ns, "addr", "add", cidr, "dev", iface]);
        ip(&["-n", ns, "link", "set", "dev", iface, "up"]);
        ip(&[
            "-n", ns, "route", "add", "default", "via", gateway, "dev", iface,
        ]);
    }

    /// Resolves `address` on `iface` to `mac` for good (`nud permanent`),
    /// for a next hop that answers no ARP for it.
    pub fn static_neighbor(&self, iface: &str, address: &str, mac: &str) {
        let ns = self.name.as_str();
        ip(&[
            "-n",
            ns,
            "neigh",
            "replace",
            address,
            "lladdr",
            mac,
            "dev",
            iface,
            "nud",
            "permanent",
        ]);
    }

    /// Runs `args` in the namespace under `timeout(1)`, so it cannot hang
    /// the test.
    pub fn exec(&self, limit: Duration, args: &[&str]) -> Output {
        let secs = format!("{}", limit.as_secs().max(1));
        let mut full = vec!["netns", "exec", &self.name, "timeout", "-s", "KILL", &secs];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Starts `args` in the namespace in the background, stdin and stdout
    /// piped; killed when the returned guard drops.
    pub fn spawn(&self, args: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {}: {e}", self.name));
        Background::from_child(child)
    }

    /// Waits until something listens on TCP `address:port` in the namespace.
    pub fn wait_listening(&self, address: &str, port: u16, protocol: Protocol, limit: Duration) {
        let wanted = format!("{address}:{port}");
        let flag = match protocol {
            Protocol::Tcp => "-Hltn",
            Protocol::Udp => "-Hlun",
        };
        let deadline = Instant::now() + limit;
        loop {
            let out = run("ip", &["netns", "exec", &self.name, "ss", flag]);
            let text = String::from_utf8_lossy(&out.stdout);
            if text.split_whitespace().any(|f| f == wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {wanted} in {} after {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// A transport protocol, for [`Netns::wait_listening`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A background process whose stdout lines are collected by a thread;
/// killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    /// Collects `child`'s stdout (which must be piped) and owns it.
    pub fn from_child(mut child: Child) -> Background {
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to its stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to the child's stdin");
        stdin.flush().expect("flush the child's stdin");
    }

    /// The next stdout line, or `None` after `limit` (or at its end).
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads stdout lines until one contains `needle`; panics after `limit`
    /// with everything read so far.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!(
                    "no line containing {needle:?} within {limit:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` (a `kill -s` name) to the process.
    pub fn signal(&self, signal: &str) {
        let out = run("kill", &["-s", signal, &self.pid().to_string()]);
        assert!(out.status.success(), "kill -s {signal} failed");
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends SIGTERM and waits up to `limit` for a clean exit, returning
    /// the rest of its stdout; kills it if it does not exit in time.
    pub fn terminate(&mut self, limit: Duration) -> (bool, String) {
        self.signal("TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut rest = String::new();
                while let Some(line) = self.next_line(Duration::from_millis(200)) {
                    let _ = writeln!(rest, "{line}");
                }
                return (status.success(), rest);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (false, String::new())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = run("kill", &["-s", "TERM", &self.child.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET /metrics` from `127.0.0.1:port`, the body as text.
pub fn scrape(port: u16) -> String {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.to_owned())
}

/// The sum of every sample of `metric` whose labels contain all of
/// `labels` (`reason="ingress_denied"` …), from Prometheus text.
pub fn metric_sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let name = name_labels.split('{').next()?;
            (name == metric && labels.iter().all(|want| name_labels.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// A directory of the test's own under the system temp dir, removed on
/// drop.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A fresh directory.
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("create a temp dir"),
        }
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` inside it, returning the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
