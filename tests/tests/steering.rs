//! How the real `palisade run` spreads two workers over two ports'
//! receive queues: with every port hashing symmetrically over one queue per
//! worker (net_null with two queues and the symmetric key), queue N goes to
//! worker N and no hand-off ring is built; with one port that cannot, every
//! port hands off in software. Start-up says which, one line per port, and
//! each worker reports the lcore it runs on.

use std::path::Path;
use std::time::Duration;

use palisade_e2e::appliance::{free_local_addr, start_palisade};
use palisade_e2e::{is_root, prom};

struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two net_null ports with `p1_queues` receive queues on the second; the
/// configuration asks for workers on both of the machine's cores.
fn write_world(dir: &Path, prefix: &str, p1_queues: u16) -> std::path::PathBuf {
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\n\
             [eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n[mempool]\nmbufs = 4095\ncache = 64\n\n\
             [[ports]]\nname = \"p0\"\nvdev = \"net_null0,size=64,copy=0\"\nrx_queues = 2\n\
             rx_descriptors = 256\ntx_descriptors = 256\n\n\
             [[ports]]\nname = \"p1\"\nvdev = \"net_null1,size=64,copy=0\"\nrx_queues = {p1_queues}\n\
             rx_descriptors = 256\ntx_descriptors = 256\n",
        ),
    )
    .expect("write the profile");
    let config = dir.join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[appliance]\nprofile = \"{}\"\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\nworkers = [0, 1]\n\n\
             [[vpc]]\nname = \"v\"\ncidr = \"10.0.0.0/16\"\n\n\
             [[subnet]]\nname = \"s\"\nvpc = \"v\"\ncidr = \"10.0.1.0/24\"\n\n\
             [[eni]]\nname = \"a\"\nsubnet = \"s\"\nport = \"p0\"\nmac = \"02:00:00:00:00:00\"\nips = [\"10.0.1.10\"]\n",
            profile.display(),
            dir.join("var").display()
        ),
    )
    .expect("write the config");
    config
}

/// Runs palisade until `busy_workers` processed frames; returns its stdout
/// and the workers' lcores from /metrics.
fn run(p1_queues: u16, busy_workers: &[&str]) -> (String, Vec<f64>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("pal-steer-{}-{p1_queues}", std::process::id());
    let _runtime = RuntimeDir(Path::new("/var/run/dpdk").join(&prefix));
    let config = write_world(dir.path(), &prefix, p1_queues);
    let metrics = free_local_addr();
    let mut palisade =
        start_palisade(&config, metrics, Duration::from_secs(30)).expect("palisade starts");
    let lcores = palisade
        .wait_for(
            "the workers to process frames",
            Duration::from_secs(20),
            |_| {
                let samples = prom::scrape(metrics).ok()?;
                // With the hand-off, net_null's frames (not IP) all belong
                // to worker 0; with RSS, each worker polls a queue of its own.
                let busy = busy_workers.iter().all(|w| {
                    prom::sum(&samples, "palisade_worker_packets_total", &[("worker", w)])
                        .is_some_and(|n| n > 0.0)
                });
                let lcores: Vec<f64> = ["0", "1"]
                    .iter()
                    .filter_map(|w| prom::sum(&samples, "palisade_worker_lcore", &[("worker", w)]))
                    .collect();
                (busy && lcores.len() == 2).then_some(lcores)
            },
        )
        .expect("both workers run");
    let finished = palisade
        .stop("TERM", Duration::from_secs(15))
        .expect("palisade stops");
    assert!(
        finished.status.success(),
        "a clean stop (every mbuf back in the pool): {}\n{}",
        finished.stdout,
        finished.stderr
    );
    (finished.stdout, lcores)
}

#[test]
fn symmetric_rss_replaces_the_hand_off_only_when_every_port_steers() {
    if !is_root() {
        eprintln!("skip: the steering test runs palisade's data plane, which needs root");
        return;
    }
    let (stdout, lcores) = run(2, &["0", "1"]);
    for port in ["p0", "p1"] {
        let line = format!(
            "palisade: port {port}: symmetric RSS over 2 queues, queue N to worker N: no hand-off"
        );
        assert!(stdout.contains(&line), "{line:?} in:\n{stdout}");
    }
    // Worker 1 on EAL lcore 1; worker 0's core is the main lcore's, so it
    // runs on a registered thread with an lcore id of its own.
    assert_eq!(lcores[1] as u32, 1, "{stdout}");
    assert!(lcores[0] >= 2.0, "{lcores:?}");
    assert!(
        stdout.contains("palisade: worker 1 on lcore 1 (core 1)"),
        "{stdout}"
    );

    let (stdout, _) = run(1, &["0"]);
    assert!(
        stdout.contains("palisade: port p1: software hand-off to the owning worker (of 2): 1 receive queue(s) for 2 workers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("palisade: port p0: software hand-off to the owning worker (of 2): it could steer by symmetric RSS, but p1 cannot"),
        "{stdout}"
    );
}
