//! Stopping cleanly whatever happens around palisade: the real built-in
//! demo (`palisade run` without `--config`: three TAP ports, namespaces
//! `eni-a`, `eni-b`, `eni-c`, a web server in `eni-b`) stopped
//!
//! - after the reader of its output pipe has gone (`palisade run | tee`,
//!   Ctrl-C: every later line meets `EPIPE`),
//! - by SIGTERM or Ctrl-C (SIGINT to the whole process group, as a
//!   terminal sends it) at several points of its start-up,
//! - after one of its TAP devices was deleted under it,
//!
//! and started while another demo runs, or after one was killed with
//! `kill -9`. Every stop must exit 0 and leave no namespace, no TAP
//! interface and no web server behind; a stop signal during start-up must
//! stop the start-up (nothing is forwarded).
//!
//! To hit a start-up point every time, the demo's `ip` commands run
//! through a gate: a shell script first on palisade's `PATH` that holds one
//! chosen command (palisade runs the real `ip` as an operator would) until
//! the test has sent its signal. The demo's names are fixed, so these tests
//! run one at a time (the `e2e` test group) and clear any leftover of an
//! earlier failed run first.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palisade_e2e::appliance::free_local_addr;
use palisade_e2e::netns::{Scratch, run};
use palisade_e2e::{is_root, palisade_bin};

/// The demo's namespaces (its ENI names) and TAP interfaces.
const NAMESPACES: [&str; 3] = ["eni-a", "eni-b", "eni-c"];
const TAPS: [&str; 3] = ["pal-a", "pal-b", "pal-c"];
/// The web server's address in `eni-b`.
const WEB: &str = "http://10.0.2.20:80/";

/// Upper bound for the demo's start-up (EAL, TAP ports, python) on a
/// loaded machine, and for its stop.
const START: Duration = Duration::from_secs(60);
const STOP: Duration = Duration::from_secs(30);

fn skip() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: the demo needs root (namespaces, TAP devices); CI runs it as root");
    true
}

/// Deletes whatever an earlier failed test left of the demo, so each test
/// starts from a clean host.
fn clear_leftovers() {
    for ns in NAMESPACES {
        if Path::new("/run/netns").join(ns).exists() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// What of the demo is still on the host: namespaces, TAP interfaces.
fn leftovers() -> Vec<String> {
    let namespaces = String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout).into_owned();
    let mut left: Vec<String> = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| NAMESPACES.contains(ns))
        .map(|ns| format!("namespace {ns}"))
        .collect();
    left.extend(
        TAPS.iter()
            .filter(|tap| Path::new("/sys/class/net").join(tap).exists())
            .map(|tap| format!("interface {tap}")),
    );
    left
}

/// The real `ip`, for the gate script to hand over to.
fn real_ip() -> String {
    let out = run("sh", &["-c", "command -v ip"]);
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!path.is_empty(), "no `ip` on PATH");
    path
}

/// A gate on one `ip` command line (see the module doc): holds the first
/// call whose arguments are exactly `args` until [`Gate::release`].
struct Gate {
    dir: PathBuf,
}

impl Gate {
    fn new(scratch: &Scratch, args: &str) -> Gate {
        let dir = scratch.path("gate");
        std::fs::create_dir_all(dir.join("bin")).expect("create the gate's directory");
        let d = dir.display();
        let script = format!(
            "#!/bin/sh\n\
             if [ \"$*\" = \"{args}\" ] && [ ! -e {d}/passed ]; then\n\
             \x20 touch {d}/reached\n\
             \x20 while [ ! -e {d}/release ]; do sleep 0.05; done\n\
             \x20 touch {d}/passed\n\
             fi\n\
             exec {} \"$@\"\n",
            real_ip()
        );
        let path = dir.join("bin/ip");
        std::fs::write(&path, script).expect("write the gate script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the gate script executable");
        Gate { dir }
    }

    /// `PATH` with the gate first.
    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn reached(&self) -> bool {
        self.dir.join("reached").exists()
    }

    fn release(&self) {
        std::fs::write(self.dir.join("release"), "").expect("release the gate");
    }
}

/// The demo as a child process in a process group of its own (so a test
/// can send "Ctrl-C" to the group), its output collected as it runs;
/// killed on drop if still running.
struct DemoRun {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a run ended.
#[derive(Debug)]
struct Ended {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ended {
    fn describe(&self) -> String {
        format!(
            "{} (signal {:?})\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.status.signal(),
            self.stdout,
            self.stderr
        )
    }

    /// Exit status 0, and no panic message (a panicking worker thread
    /// would not change the status).
    fn assert_clean(&self) {
        assert_eq!(self.status.code(), Some(0), "{}", self.describe());
        assert!(!self.stderr.contains("panicked"), "{}", self.describe());
    }
}

fn collect(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().expect("output buffer");
            text.push_str(&line);
            text.push('\n');
        }
    })
}

/// `palisade run` (the demo) with its own state directory and free API
/// and metrics ports; `path` overrides `PATH` (the gate).
fn demo_command(scratch: &Scratch, state: &str, path: Option<String>) -> Command {
    let mut command = Command::new(palisade_bin());
    command
        .arg("run")
        .arg("--state-dir")
        .arg(scratch.path(state))
        .arg("--api-listen")
        .arg(free_local_addr().to_string())
        .arg("--metrics-listen")
        .arg(free_local_addr().to_string())
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command
}

impl DemoRun {
    fn start(mut command: Command) -> DemoRun {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start palisade");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("piped"), Arc::clone(&stderr)),
        ];
        DemoRun {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("output buffer").clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("output buffer").clone()
    }

    /// Polls `ready` until it holds; panics with the output if palisade
    /// exits first or `limit` passes.
    fn wait_until(&mut self, what: &str, limit: Duration, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if ready(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().expect("running").try_wait() {
                panic!(
                    "palisade exited ({status}) while the test waited for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_forwarding(&mut self) {
        self.wait_until("`palisade: forwarding`", START, |r| {
            r.stdout().contains("palisade: forwarding")
        });
    }

    /// `kill -s SIGNAL` to palisade alone.
    fn signal(&self, signal: &str) {
        let out = run("kill", &["-s", signal, &self.pid().to_string()]);
        assert!(out.status.success(), "kill -s {signal} failed");
    }

    /// SIGINT to palisade's whole process group, as Ctrl-C at a terminal.
    fn ctrl_c(&self) {
        let group = format!("-{}", self.pid());
        let out = run("kill", &["-s", "INT", "--", &group]);
        assert!(out.status.success(), "kill -s INT -- {group} failed");
    }

    /// Waits for the exit (killing it after `limit`).
    fn wait(mut self, limit: Duration) -> Ended {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "palisade did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ended {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for DemoRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `curl` the web server from `eni-a`, through palisade.
fn web_answers() -> bool {
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            "eni-a",
            "curl",
            "--noproxy",
            "*",
            "-s",
            "-m",
            "5",
            WEB,
        ],
    );
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello from eni-b")
}

fn assert_nothing_left(ended: &Ended) {
    let left = leftovers();
    assert!(
        left.is_empty(),
        "left behind: {left:?}\n{}",
        ended.describe()
    );
}

/// A stop signal during start-up: `send` fires when `point` holds (with
/// the gate on `gated` holding the demo's set-up until then); palisade must
/// stop without forwarding, exit 0 and leave nothing.
fn interrupted_start_up(
    gated: &str,
    point: &str,
    at: impl FnMut(&DemoRun, &Gate) -> bool,
    send: impl FnOnce(&DemoRun),
) {
    if skip() {
        return;
    }
    clear_leftovers();
    let scratch = Scratch::new();
    let gate = Gate::new(&scratch, gated);
    let mut demo = DemoRun::start(demo_command(&scratch, "var", Some(gate.path_env())));
    let mut at = at;
    demo.wait_until(point, START, |r| at(r, &gate));
    send(&demo);
    // The signal is on its way; let the set-up go on to where it notices.
    std::thread::sleep(Duration::from_millis(200));
    gate.release();
    let ended = demo.wait(STOP);
    ended.assert_clean();
    assert!(
        !ended.stdout.contains("palisade: forwarding"),
        "a stop signal during start-up must stop the start-up\n{}",
        ended.describe()
    );
    assert!(
        ended.stderr.contains("stopped before forwarding"),
        "the stop is reported\n{}",
        ended.describe()
    );
    assert_nothing_left(&ended);
}

#[test]
fn closed_stdout_and_stderr_pipe_then_ctrl_c_stops_cleanly() {
    if skip() {
        return;
    }
    clear_leftovers();
    let scratch = Scratch::new();
    // Both streams into one pipe whose reader exits: `2>&1 | tee`.
    let bin = palisade_bin();
    let command = demo_command(&scratch, "var", None);
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(&bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    drop(command);
    let mut child = shell.spawn().expect("start palisade");
    let stdout = child.stdout.take().expect("piped");
    // The reader: reads until palisade forwards, then exits (closing the
    // pipe), as `tee` killed by the same Ctrl-C would.
    let (tx, rx) = channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("palisade: forwarding") {
                let _ = tx.send(Ok(()));
                return;
            }
        }
        let _ = tx.send(Err(seen));
    });
    let guard = DemoRun {
        child: Some(child),
        stdout: Arc::default(),
        stderr: Arc::default(),
        readers: Vec::new(),
    };
    match rx.recv_timeout(START) {
        Ok(Ok(())) => {}
        Ok(Err(seen)) => panic!("palisade stopped before forwarding:\n{seen}"),
        Err(e) => panic!("no `palisade: forwarding` within {START:?}: {e}"),
    }
    reader.join().expect("the reader thread");
    assert!(web_answers(), "the demo forwards with its output gone");
    guard.ctrl_c();
    let ended = guard.wait(STOP);
    ended.assert_clean();
    assert_nothing_left(&ended);
}

#[test]
fn sigterm_while_dpdk_starts_stops_the_start_up() {
    // SIGTERM once the TAP interfaces exist (EAL is creating its ports).
    interrupted_start_up(
        "netns add eni-a",
        "TAP interface pal-a",
        |_, _| Path::new("/sys/class/net/pal-a").exists(),
        |demo| demo.signal("TERM"),
    );
}

#[test]
fn ctrl_c_while_the_store_opens_stops_the_start_up() {
    interrupted_start_up(
        "netns add eni-a",
        "`palisade: state in`",
        |demo, _| demo.stdout().contains("palisade: state in"),
        DemoRun::ctrl_c,
    );
}

#[test]
fn ctrl_c_during_the_namespace_set_up_stops_the_start_up() {
    // eni-a is set up, eni-b is about to be.
    interrupted_start_up(
        "netns add eni-b",
        "the set-up of eni-b",
        |_, gate| gate.reached(),
        DemoRun::ctrl_c,
    );
}

#[test]
fn ctrl_c_while_the_web_server_starts_stops_the_start_up() {
    // The first look for the web server's socket.
    interrupted_start_up(
        "netns exec eni-b ss -Hltn",
        "the wait for the web server",
        |_, gate| gate.reached(),
        DemoRun::ctrl_c,
    );
}

#[test]
fn a_second_demo_is_refused_and_leaves_the_first_alone() {
    if skip() {
        return;
    }
    clear_leftovers();
    let scratch = Scratch::new();
    let mut first = DemoRun::start(demo_command(&scratch, "var", None));
    first.wait_forwarding();
    assert!(web_answers(), "the first demo forwards");

    let second = DemoRun::start(demo_command(&scratch, "var2", None)).wait(START);
    assert_eq!(second.status.code(), Some(1), "{}", second.describe());
    assert!(
        second.stderr.contains("already running the demo")
            && second.stderr.contains(&first.pid().to_string()),
        "the error names the running demo\n{}",
        second.describe()
    );
    assert!(web_answers(), "the first demo still forwards");

    first.signal("INT");
    let ended = first.wait(STOP);
    ended.assert_clean();
    assert_nothing_left(&ended);
}

/// The web server's directory, from its command line (`--directory DIR`).
fn web_root() -> Option<PathBuf> {
    let pids = String::from_utf8_lossy(&run("ip", &["netns", "pids", "eni-b"]).stdout).into_owned();
    pids.split_whitespace().find_map(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let at = args.iter().position(|a| a == "--directory")?;
        args.get(at + 1).map(PathBuf::from)
    })
}

#[test]
fn a_run_killed_with_sigkill_is_cleaned_up_by_the_next() {
    if skip() {
        return;
    }
    clear_leftovers();
    let scratch = Scratch::new();
    let mut killed = DemoRun::start(demo_command(&scratch, "var", None));
    killed.wait_forwarding();
    let root = web_root().expect("the demo's web server runs in eni-b");
    killed.signal("KILL");
    let gone = killed.wait(STOP);
    assert_eq!(gone.status.signal(), Some(9), "{}", gone.describe());
    // What kill -9 leaves: the namespaces (and the web page).
    assert!(
        NAMESPACES
            .iter()
            .all(|ns| Path::new("/run/netns").join(ns).exists()),
        "the killed run's namespaces stay (precondition): {:?}",
        leftovers()
    );

    let mut next = DemoRun::start(demo_command(&scratch, "var", None));
    next.wait_forwarding();
    assert!(
        next.stderr().contains("eni-a"),
        "the stale namespaces are reported\nstderr:\n{}",
        next.stderr()
    );
    assert!(web_answers(), "the next run forwards");
    next.ctrl_c();
    let ended = next.wait(STOP);
    ended.assert_clean();
    assert_nothing_left(&ended);
    assert!(
        !root.exists(),
        "the killed run's web page {} is left behind\n{}",
        root.display(),
        ended.describe()
    );
}

#[test]
fn a_tap_device_deleted_under_a_port_is_reported_and_the_rest_forwards() {
    if skip() {
        return;
    }
    clear_leftovers();
    let scratch = Scratch::new();
    let mut demo = DemoRun::start(demo_command(&scratch, "var", None));
    demo.wait_forwarding();
    let out = run("ip", &["-n", "eni-c", "link", "del", "pal-c"]);
    assert!(out.status.success(), "delete pal-c");
    // Frames for eni-c now meet a port without a device.
    let _ = run(
        "ip",
        &[
            "netns",
            "exec",
            "eni-a",
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.0.2.30",
        ],
    );
    demo.wait_until("a warning about port eni-c", Duration::from_secs(15), |r| {
        r.stderr().contains("port eni-c: device errors")
    });
    assert!(web_answers(), "eni-a and eni-b still talk through palisade");
    demo.ctrl_c();
    let ended = demo.wait(STOP);
    ended.assert_clean();
    let line = ended
        .stdout
        .lines()
        // The last: start-up prints a line per port too (its steering).
        .rev()
        .find(|l| l.contains("port eni-c:"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("device-errors") && !line.contains("tx-dropped 0"),
        "the final counters show eni-c's losses: {line:?}\n{}",
        ended.describe()
    );
    assert_nothing_left(&ended);
}
