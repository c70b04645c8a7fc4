//! A real Prometheus server scrapes the real `palisade run`, and the real
//! `promtool` lints its exposition: the metrics are usable by the tool
//! they are for, not only by our own parser.
//!
//! palisade runs on one `net_pcap` port whose input holds a few ARP
//! requests for the gateway (so `palisade_worker_packets_total` moves), with
//! its own DPDK file prefix and metrics port. Prometheus (Debian's package,
//! installed by `tools/setup.sh test`) runs as a child with its own config,
//! TSDB directory and listen port, so a system Prometheus — if one runs —
//! is neither used nor disturbed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use palisade_dataplane::testkit::{arp_request, eni_mac};
use palisade_e2e::appliance::{ChildGuard, free_local_addr, start_palisade};
use palisade_e2e::{is_root, pcap, prom};

const ARP_REQUESTS: usize = 5;

fn write_world(dir: &Path, prefix: &str) -> std::path::PathBuf {
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\n\
             [eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n[mempool]\nmbufs = 2047\ncache = 64\n\n\
             [[ports]]\nname = \"p0\"\nvdev = \"net_pcap0,rx_pcap={rx},tx_pcap={tx}\"\n\
             rx_descriptors = 256\ntx_descriptors = 256\n",
            rx = dir.join("in.pcap").display(),
            tx = dir.join("out.pcap").display(),
        ),
    )
    .expect("write the profile");
    let config = dir.join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[appliance]\nprofile = \"{}\"\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\n\
             [[vpc]]\nname = \"v\"\ncidr = \"10.0.0.0/16\"\n\n\
             [[subnet]]\nname = \"s\"\nvpc = \"v\"\ncidr = \"10.0.1.0/24\"\n\n\
             [[eni]]\nname = \"a\"\nsubnet = \"s\"\nport = \"p0\"\nmac = \"02:00:00:00:00:00\"\nips = [\"10.0.1.10\"]\n",
            profile.display(),
            dir.join("var").display()
        ),
    )
    .expect("write the config");
    let frames: Vec<Vec<u8>> = (0..ARP_REQUESTS)
        .map(|_| {
            arp_request(
                eni_mac(0),
                None,
                "10.0.1.10".parse().expect("address"),
                "10.0.1.1".parse().expect("address"),
            )
        })
        .collect();
    pcap::write(&dir.join("in.pcap"), &frames).expect("write the input");
    config
}

fn write_prometheus_config(dir: &Path, target: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: palisade\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    path
}

/// Runs a PromQL instant query; the sample values, empty while there are
/// none yet.
fn query(prometheus: SocketAddr, promql_urlencoded: &str) -> Vec<f64> {
    prom::http_get(
        prometheus,
        &format!("/api/v1/query?query={promql_urlencoded}"),
        Duration::from_secs(2),
    )
    .ok()
    .filter(|r| r.status == 200)
    .map(|r| prom::query_values(&r.body))
    .unwrap_or_default()
}

/// Removes DPDK's runtime directory for the test's file prefix.
struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn prometheus_scrapes_palisade_and_promtool_finds_no_problems() {
    if !is_root() {
        eprintln!("skip: the Prometheus test runs palisade's data plane, which needs root");
        return;
    }
    for tool in ["prometheus", "promtool"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing: run tools/setup.sh test");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("pal-prom-{}", std::process::id());
    let _runtime = RuntimeDir(Path::new("/var/run/dpdk").join(&prefix));
    let config = write_world(dir.path(), &prefix);
    let metrics = free_local_addr();
    let mut palisade =
        start_palisade(&config, metrics, Duration::from_secs(30)).expect("palisade starts");

    // Our own reading first: the input was processed.
    palisade
        .wait_for(
            "to answer the ARP requests",
            Duration::from_secs(15),
            |_| {
                let samples = prom::scrape(metrics).ok()?;
                let n = prom::sum(&samples, "palisade_worker_packets_total", &[])?;
                (n as usize == ARP_REQUESTS).then_some(())
            },
        )
        .expect("palisade processes its input");

    // The one worker (`workers = [1]`) runs on its EAL lcore, 1, says so at
    // start-up and in /metrics.
    let samples = prom::scrape(metrics).expect("scrape /metrics");
    assert_eq!(
        prom::sum(&samples, "palisade_worker_lcore", &[("worker", "0")]),
        Some(1.0),
        "the worker's lcore gauge"
    );
    assert!(
        palisade.stdout().contains("palisade: worker 0 on lcore 1"),
        "start-up names the worker's lcore:\n{}",
        palisade.stdout()
    );

    // promtool lints the exposition exactly as served.
    let exposition =
        prom::http_get(metrics, "/metrics", Duration::from_secs(2)).expect("scrape /metrics");
    assert_eq!(exposition.status, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use std::io::Write as _;
        let mut stdin = promtool.stdin.take().expect("promtool stdin");
        stdin
            .write_all(exposition.body.as_bytes())
            .expect("feed promtool");
    }
    let linted = promtool.wait_with_output().expect("promtool finishes");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr)
    );
    assert!(
        linted.status.success() && findings.trim().is_empty(),
        "promtool check metrics ({}):\n{findings}",
        linted.status
    );

    // A real Prometheus scraping every second.
    let web = free_local_addr();
    let prometheus_config = write_prometheus_config(dir.path(), metrics);
    let mut prometheus = ChildGuard::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn"),
    )
    .expect("start prometheus");
    prometheus
        .wait_for("to be ready", Duration::from_secs(30), |_| {
            prom::http_get(web, "/-/ready", Duration::from_secs(1))
                .ok()
                .filter(|r| r.status == 200)
        })
        .expect("prometheus becomes ready");
    let (packets, up) = prometheus
        .wait_for("to scrape palisade", Duration::from_secs(30), |_| {
            let packets = query(web, "palisade_worker_packets_total");
            let up = query(web, "up%7Bjob%3D%22palisade%22%7D");
            (packets.iter().any(|v| *v > 0.0) && up == [1.0]).then_some((packets, up))
        })
        .expect("prometheus scrapes palisade");
    assert_eq!(packets.iter().sum::<f64>() as usize, ARP_REQUESTS);
    assert_eq!(up, [1.0]);
    // Prometheus took every family: the drop reasons arrive as labels.
    let reasons = query(web, "count(palisade_drops_total%7Bjob%3D%22palisade%22%7D)");
    assert_eq!(
        reasons,
        [palisade_dataplane::DropReason::ALL.len() as f64],
        "one drops_total series per reason (one worker)"
    );

    let stopped = prometheus
        .stop("TERM", Duration::from_secs(15))
        .expect("prometheus stops");
    assert!(stopped.status.success(), "prometheus: {}", stopped.stderr);
    let finished = palisade
        .stop("TERM", Duration::from_secs(15))
        .expect("palisade stops");
    assert!(
        finished.status.success(),
        "palisade: {}\n{}",
        finished.stdout,
        finished.stderr
    );
}
