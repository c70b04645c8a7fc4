//! `palisade explain` and `palisade replay` through the real binary, as a
//! user runs them: offline against the demo configuration, and `GET
//! /explain` on the metrics listener of a running appliance (control side
//! only: the endpoint reads the published policy, not the ports). The
//! demo (appliance/demo.toml): eni-a (10.0.1.10, default group) may reach
//! eni-b (10.0.2.20, groups web + ssh) on TCP 80, not on 22 (SSH only from
//! an admin address).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, arp_request, flags, frame};
use palisade_e2e::appliance::{ChildGuard, free_local_addr};
use palisade_e2e::{palisade_bin, pcap, prom};
use serde_json::Value;

const ENI_A_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0];
const ENI_B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 20));

fn demo_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../appliance/demo.toml")
}

fn palisade(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(palisade_bin())
        .args(args)
        .output()
        .expect("run palisade");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn explain_json(args: &[&str]) -> Value {
    let config = demo_config();
    let mut all = vec!["explain", "--config", config.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = palisade(&all);
    assert!(ok, "palisade explain {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn offline_explain_names_the_deciding_rules() {
    let web = explain_json(&["--from", "eni-a", "--to", "10.0.2.20", "--dst-port", "80"]);
    assert_eq!(web["verdict"], "allow", "{web}");
    assert_eq!(web["route"]["via"], "same-vpc");
    assert_eq!(web["generation"], 1);
    assert_eq!(web["nacl_egress"]["action"], "allow");
    assert_eq!(web["nacl_ingress"]["action"], "allow");
    assert!(
        web["sg_egress"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("sgr-")
    );
    assert!(
        web["sg_ingress"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("sgr-")
    );

    let ssh = explain_json(&[
        "--from",
        "10.0.1.10",
        "--to",
        "10.0.2.20",
        "--dst-port",
        "22",
    ]);
    assert_eq!(ssh["verdict"], "deny", "{ssh}");
    assert_eq!(ssh["drop_reason"], "ingress_denied");
    assert_eq!(ssh["sg_ingress"]["allowing"], Value::Array(vec![]));
    assert_eq!(ssh["sg_ingress"]["rule"], Value::Null);

    // Text for people, and a clear error for a sender nobody has.
    let config = demo_config();
    let (ok, text, _) = palisade(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "eni-a",
        "--to",
        "10.0.2.20",
        "--dst-port",
        "22",
    ]);
    assert!(ok);
    assert!(text.contains("=> DENY: no ingress rule"), "{text}");
    let (ok, _, err) = palisade(&["explain", "--from", "eni-nope", "--to", "10.0.2.20"]);
    assert!(!ok && err.contains("eni-nope"), "{err}");
}

#[test]
fn replay_judges_frames_statefully() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let tcp = |src_mac, src, dst, sp, dp, f| {
        frame(&FrameSpec::new(
            src_mac,
            ROUTER_MAC,
            src,
            dst,
            Payload::Tcp {
                src_port: sp,
                dst_port: dp,
                flags: f,
            },
        ))
    };
    let frames = vec![
        tcp(ENI_A_MAC, A, B, 40000, 80, flags::SYN),
        // The reply: no rule admits it from eni-b's side, the flow does.
        tcp(ENI_B_MAC, B, A, 80, 40000, flags::SYN_ACK),
        tcp(ENI_A_MAC, A, B, 40001, 22, flags::SYN),
        arp_request(
            ENI_A_MAC,
            None,
            Ipv4Addr::new(10, 0, 1, 10),
            Ipv4Addr::new(10, 0, 1, 1),
        ),
        // A "reply" to nothing: judged as a new flow, which eni-a's
        // default group does not admit from eni-b.
        tcp(ENI_B_MAC, B, A, 80, 40002, flags::ACK),
    ];
    pcap::write(&input, &frames).unwrap();
    let config = demo_config();
    let (ok, out, err) = palisade(&[
        "replay",
        input.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "replay failed: {err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    let got: Vec<(String, String, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap().to_owned(),
                l["drop_reason"].as_str().unwrap_or("").to_owned(),
                l["new_flow"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [
        ("forward", "", true),
        ("forward", "", false),
        ("drop", "ingress_denied", true),
        ("reply", "", false),
        ("drop", "ingress_denied", true),
    ];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2),
            w,
            "frame {}: {}",
            i + 1,
            lines[i]
        );
    }
    assert!(lines[0]["to"].as_str().unwrap().starts_with("eni-"));
    assert!(
        lines[0]["explanation"]["sg_ingress"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("sgr-")
    );
    // explain --pcap agrees with replay on a frame.
    let (ok, text, err) = palisade(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--pcap",
        input.to_str().unwrap(),
        "--frame",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(text.contains("=> DENY"), "{text}");
}

#[test]
fn running_appliance_explains_at_its_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_local_addr();
    let api = free_local_addr();
    let config = demo_config();
    let mut guard = ChildGuard::spawn(
        "palisade",
        Command::new(palisade_bin())
            .args(["run", "--dataplane", "off", "--config"])
            .arg(&config)
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .arg("--api-listen")
            .arg(api.to_string())
            .arg("--state-dir")
            .arg(dir.path()),
    )
    .unwrap();
    guard
        .wait_for("the policy", Duration::from_secs(20), |g| {
            g.stdout().contains("policy generation 1").then_some(())
        })
        .unwrap();
    let get = |path: &str| prom::http_get(metrics, path, Duration::from_secs(5)).unwrap();
    // The ENI's id as the offline explain names it.
    let offline = explain_json(&["--from", "eni-a", "--to", "10.0.2.20", "--dst-port", "80"]);
    let eni_a = offline["from"].as_str().unwrap().to_owned();
    let r = get(&format!(
        "/explain?from={eni_a}&to=10.0.2.20&protocol=tcp&dst-port=80"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let online: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(online, offline, "online and offline explanations differ");
    // Offline from the running appliance's state directory: the same
    // answer, and the store it holds is not written.
    let database = dir.path().join("palisade.sqlite3");
    let before = std::fs::read(&database).unwrap();
    let from_store = explain_json(&[
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--from",
        &eni_a,
        "--to",
        "10.0.2.20",
        "--dst-port",
        "80",
    ]);
    assert_eq!(from_store, offline, "the state directory's answer differs");
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "the store was written"
    );
    let (ok, _, err) = palisade(&[
        "explain",
        "--state-dir",
        "/nonexistent",
        "--from",
        "uplink",
        "--to",
        "10.0.2.20",
    ]);
    assert!(!ok && err.contains("no store"), "{err}");
    let r = get("/explain?from=10.0.1.10&to=10.0.2.20&protocol=tcp&dst-port=22");
    let denied: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(denied["drop_reason"], "ingress_denied");
    assert_eq!(get("/explain?from=10.0.1.10").status, 400);
    assert_eq!(
        get("/explain?from=eni-0&to=10.0.2.20&protocol=tcp").status,
        422
    );
    guard.stop("TERM", Duration::from_secs(10)).unwrap();
}

/// Removes DPDK's runtime directory of a test's file prefix.
struct RuntimeDir(PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo's ports as `net_pcap` ports reading `in-NAME.pcap`.
fn pcap_profile(dir: &std::path::Path, prefix: &str) -> PathBuf {
    let mut text = format!(
        "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\
         log_level = \"notice\"\n\n[eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n\
         [mempool]\nmbufs = 4095\ncache = 64\n"
    );
    for (i, name) in ["eni-a", "eni-b", "eni-c"].iter().enumerate() {
        let _ = write!(
            text,
            "\n[[ports]]\nname = \"{name}\"\nvdev = \"net_pcap{i},rx_pcap={rx},tx_pcap={tx}\"\n\
             rx_descriptors = 256\ntx_descriptors = 256\n",
            rx = dir.join(format!("in-{name}.pcap")).display(),
            tx = dir.join(format!("out-{name}.pcap")).display(),
        );
    }
    let path = dir.join("profile.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The real data plane (the demo world on `net_pcap` ports) drops exactly
/// what `palisade replay` says it drops, for the same reasons, and its
/// `GET /explain` is the offline answer.
#[test]
fn replay_and_explain_agree_with_the_running_data_plane() {
    if !palisade_e2e::is_root() {
        eprintln!("skip: the data plane needs root (DPDK's runtime directory)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("pal-explain-{}", std::process::id());
    let _runtime = RuntimeDir(std::path::Path::new("/var/run/dpdk").join(&prefix));
    let profile = pcap_profile(dir.path(), &prefix);
    let config_text = std::fs::read_to_string(demo_config())
        .unwrap()
        .replace(
            "profile = \"builtin:tap-demo\"",
            &format!("profile = \"{}\"", profile.display()),
        )
        .replace(
            "state_dir = \"./var\"",
            &format!("state_dir = \"{}/var\"", dir.path().display()),
        )
        .replace(
            "api_listen = \"127.0.0.1:8080\"",
            "api_listen = \"127.0.0.1:0\"",
        );
    let config = dir.path().join("demo.toml");
    std::fs::write(&config, &config_text).unwrap();
    let c = Ipv4Addr::new(10, 0, 2, 30);
    let syn = |dp| {
        frame(&FrameSpec::new(
            ENI_A_MAC,
            ROUTER_MAC,
            A,
            B,
            Payload::Tcp {
                src_port: 41000 + dp,
                dst_port: dp,
                flags: flags::SYN,
            },
        ))
    };
    let inputs = [
        ("eni-a", vec![syn(80), syn(22), syn(23)]),
        (
            "eni-b",
            vec![arp_request(
                ENI_B_MAC,
                None,
                Ipv4Addr::new(10, 0, 2, 20),
                Ipv4Addr::new(10, 0, 2, 1),
            )],
        ),
        (
            "eni-c",
            vec![frame(&FrameSpec::new(
                [2, 0, 0, 0, 0, 2],
                ROUTER_MAC,
                IpAddr::V4(c),
                B,
                Payload::Udp {
                    src_port: 5000,
                    dst_port: 53,
                },
            ))],
        ),
    ];
    // What replay says, file by file (each file's frames come in on its port).
    let mut replayed_drops: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for (name, frames) in &inputs {
        let path = dir.path().join(format!("in-{name}.pcap"));
        pcap::write(&path, frames).unwrap();
        total += frames.len();
        let (ok, out, err) = palisade(&[
            "replay",
            path.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--port",
            name,
            "--json",
        ]);
        assert!(ok, "replay {name}: {err}");
        for line in out.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(reason) = v["drop_reason"].as_str() {
                *replayed_drops.entry(reason.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(
        replayed_drops.values().sum::<u64>(),
        3,
        "{replayed_drops:?}"
    );

    let metrics = free_local_addr();
    let mut guard =
        palisade_e2e::appliance::start_palisade(&config, metrics, Duration::from_secs(30))
            .expect("palisade starts");
    let samples = guard
        .wait_for("every frame processed", Duration::from_secs(20), |_| {
            let samples = prom::scrape(metrics).ok()?;
            let n = prom::sum(&samples, "palisade_worker_packets_total", &[])?;
            (n as usize >= total).then_some(samples)
        })
        .unwrap();
    for reason in [
        "ingress_denied",
        "egress_denied",
        "nacl_denied",
        "spoofed",
        "no_route",
    ] {
        let counted = prom::sum(&samples, "palisade_drops_total", &[("reason", reason)])
            .unwrap_or(0.0) as u64;
        let replayed = replayed_drops.get(reason).copied().unwrap_or(0);
        assert_eq!(
            counted, replayed,
            "drops for {reason}: data plane {counted}, replay {replayed}"
        );
    }
    let offline = {
        let (ok, out, err) = palisade(&[
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--json",
            "--from",
            "eni-c",
            "--to",
            "10.0.2.20",
            "--protocol",
            "udp",
            "--dst-port",
            "53",
        ]);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let eni_c = offline["from"].as_str().unwrap();
    let r = prom::http_get(
        metrics,
        &format!("/explain?from={eni_c}&to=10.0.2.20&protocol=udp&dst-port=53"),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), offline);
    guard.stop("TERM", Duration::from_secs(20)).unwrap();
}
