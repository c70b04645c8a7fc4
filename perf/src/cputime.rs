//! CPU time of threads, from `/proc`: on a shared machine a busy-polling
//! thread is preempted now and then, and packets per CPU second of the
//! forwarding thread compares forwarders more fairly than packets per wall
//! second. (`fwd.rs` keeps its own copy of the parser for its own thread.)

use std::time::Duration;

/// The calling thread's user + system CPU time.
pub fn own_thread() -> Option<Duration> {
    read_stat("/proc/thread-self/stat")
}

/// A thread of another process, found by its name (`comm`), e.g. the
/// appliance's worker `palisade-w0` or testpmd's `rte-worker-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerThread {
    /// The stat file of the thread.
    stat_path: String,
}

impl PeerThread {
    /// Finds thread `name` of process `pid`; `None` if the process or no
    /// thread of that name exists.
    pub fn find(pid: u32, name: &str) -> Option<PeerThread> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            if comm.trim_end() == name {
                return Some(PeerThread {
                    stat_path: task.path().join("stat").to_string_lossy().into_owned(),
                });
            }
        }
        None
    }

    /// The thread's user + system CPU time so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        read_stat(&self.stat_path)
    }
}

/// utime + stime of a stat file, in clock ticks of 1/100 s (Linux's
/// USER_HZ on every mainstream architecture).
fn read_stat(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 10))
}

/// utime + stime from a `/proc/.../stat` line. The command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted after the
/// last `)`: there the state is field 3, utime field 14, stime field 15.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_thread_names() {
        let stat = "4242 (palisade w0) x) R 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 17 0 0 20 0 2 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(267));
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
        assert_eq!(parse_cpu_ticks("1 (x) R 1 2"), None);
    }

    #[test]
    fn a_named_thread_of_this_process_is_found_and_timed() {
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("cputime-probe".into())
            .spawn(move || {
                found_tx.send(()).unwrap();
                stop_rx.recv().unwrap();
            })
            .unwrap();
        found_rx.recv().unwrap();
        let peer = PeerThread::find(std::process::id(), "cputime-probe");
        let missing = PeerThread::find(std::process::id(), "no-such-thread");
        stop_tx.send(()).unwrap();
        handle.join().unwrap();
        assert!(peer.is_some());
        assert_eq!(missing, None);
        assert!(own_thread().is_some());
    }
}
