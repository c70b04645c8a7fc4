//! `palisade explain` and `palisade replay` through the real binary, as a
//! user runs them: offline against the demo configuration, and `GET
//! /explain` on the metrics listener of a running appliance (control side
//! only: the endpoint reads the published policy, not the ports). The
//! demo (appliance/demo.toml): eni-a (10.0.1.10, default group) may reach
//! eni-b (10.0.2.20, groups web + ssh) on TCP 80, not on 22 (SSH only from
//! an admin address).

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
