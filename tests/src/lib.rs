//! Helpers shared by the end-to-end tests in `tests/tests/`: finding and
//! running the real `palisade` binary, as a user would.

use std::path::PathBuf;

/// The `palisade` binary these tests drive: `$PALISADE_BIN` if set, else
/// the one cargo built beside the test executable (`target/<profile>/`).
pub fn palisade_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PALISADE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/palisade
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = dir.join("palisade");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (`cargo build -p palisade`; ./test.sh does) or set PALISADE_BIN",
        bin.display()
    );
    bin
}

/// Whether this process may create namespaces, TAP devices and DPDK ports.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub mod appliance;
pub mod aws;
pub mod netns;
pub mod pcap;
pub mod prom;
