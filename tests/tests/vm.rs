//! The VM appliance as users deploy it: the image `vagrant/build-image.sh`
//! builds from Debian packages (built here if its cache misses, with the
//! `palisade` binary these tests drive), booted from its own disk under
//! QEMU/KVM, palisade started by its systemd unit on two virtio NICs the
//! image hands to uio_pci_generic.
//!
//! The world: each virtio data NIC is backed by a host TAP device moved
//! into a network namespace of the test's own — `pvm-a` holds ENI a
//! (10.0.1.10), `pvm-b` ENI b (10.0.2.20) — so traffic between the
//! namespaces crosses the VM's DPDK data plane. The management NIC is
//! QEMU's user-mode network with host forwards to the EC2 API (8080) and
//! /metrics (9400). The test's configuration reaches the VM through QEMU
//! fw_cfg (`palisade-seed-config.service`), as a hypervisor would hand it.
//!
//! Checks: TCP 80 is allowed and TCP 22 (a server listens) times out; the
//! real AWS CLI authorizes TCP 22 through the API on the management NIC
//! and the next connection goes through; /metrics counts the forwarded
//! frames; an ACPI power-off stops palisade cleanly through systemd.
//!
//! Timing: a cold image build takes minutes (mostly mmdebstrap
//! downloading and installing Debian's packages; vagrant/README.md has
//! the figures) and is cached under `/var/cache/palisade-vm` (or
//! `$PALISADE_VM_CACHE`); a changed binary only rebuilds the last stage.
//! The boot and checks take about a minute under KVM.
//!
//! `PALISADE_VM_ACCEL=tcg` runs the VM (and the image build's installer
//! VM) under QEMU's emulator instead; so does a `/dev/kvm` that is not
//! hardware KVM (see [`accel`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_e2e::appliance::{ChildGuard, free_local_addr};
use palisade_e2e::aws::{AwsCli, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use palisade_e2e::netns::{Netns, Protocol, Scratch, metric_sum, run, scrape};
use palisade_e2e::{is_root, palisade_bin};

const A_IP: &str = "10.0.1.10";
const B_IP: &str = "10.0.2.20";
const A_MAC: &str = "02:00:00:00:76:0a";
const B_MAC: &str = "02:00:00:00:76:0b";

/// Boot to "palisade: forwarding": firmware, GRUB, the kernel, systemd,
/// EAL on uio_pci_generic; generous for a loaded 2-core host.
const BOOT: Duration = Duration::from_secs(300);
/// A connection attempt that palisade drops is called timed out after
/// this; an allowed one crosses the VM well within it.
const BLOCKED: Duration = Duration::from_secs(4);

/// The DPDK profile handed to the VM: the image's virtio profile with the
/// port names of this test and less memory.
const PROFILE: &str = r#"workers = [1]

[eal]
lcores = [0, 1]
main_lcore = 0
file_prefix = "palisade"
log_level = "notice"

[eal.memory]
mode = "hugepages"
socket_mem_mb = [256]
memory_mb = 256

[mempool]
mbufs = 8191
cache = 256

[[ports]]
name = "port-a"
pci = "0000:00:04.0"
rx_descriptors = 256
tx_descriptors = 256

[[ports]]
name = "port-b"
pci = "0000:00:05.0"
rx_descriptors = 256
tx_descriptors = 256
"#;

/// The appliance configuration: one VPC, two subnets, ENI a in group
/// "client" (no inbound rules), ENI b in group "web" (TCP 80 from
/// anywhere; TCP 22 not).
fn config() -> String {
    format!(
        r#"[appliance]
profile = "/etc/palisade/profile.toml"
state_dir = "/var/lib/palisade"
api_listen = "0.0.0.0:8080"
metrics_listen = "0.0.0.0:9400"
access_key_id = "{TEST_ACCESS_KEY_ID}"
secret_access_key = "{TEST_SECRET_ACCESS_KEY}"
max_flows_per_worker = 4096

[[vpc]]
name = "test"
cidr = "10.0.0.0/16"

[[subnet]]
name = "a"
vpc = "test"
cidr = "10.0.1.0/24"

[[subnet]]
name = "b"
vpc = "test"
cidr = "10.0.2.0/24"

[[security_group]]
name = "web"
vpc = "test"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "0.0.0.0/0"

[[security_group]]
name = "client"
vpc = "test"

[[eni]]
name = "a"
subnet = "a"
port = "port-a"
mac = "{A_MAC}"
ips = ["{A_IP}"]
groups = ["client"]

[[eni]]
name = "b"
subnet = "b"
port = "port-b"
mac = "{B_MAC}"
ips = ["{B_IP}"]
groups = ["web"]
"#
    )
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The image for the `palisade` under test: `vagrant/build-image.sh`'s
/// path, built now if the cache misses (its progress goes to stderr).
fn image(accel: &str) -> PathBuf {
    let started = Instant::now();
    let out = Command::new(repo_root().join("vagrant/build-image.sh"))
        .arg("--binary")
        .arg(palisade_bin())
        .env("PALISADE_VM_ACCEL", accel)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run vagrant/build-image.sh");
    assert!(
        out.status.success(),
        "vagrant/build-image.sh failed ({}); its output is above",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        path.is_file(),
        "build-image.sh printed no image: {stdout:?}"
    );
    eprintln!(
        "vm: image {} ready after {:.0?}",
        path.display(),
        started.elapsed()
    );
    path
}

/// The VM and its host side. Field order is drop order: QEMU first (its
/// TAP devices go with it), then the namespaces, then the files.
struct Vm {
    qemu: ChildGuard,
    a: Netns,
    b: Netns,
    servers: Vec<palisade_e2e::netns::Background>,
    api_port: u16,
    metrics_port: u16,
    scratch: Scratch,
}

impl Vm {
    fn console(&self) -> String {
        std::fs::read_to_string(self.scratch.path("console.log")).unwrap_or_default()
    }

    /// Waits until the console shows `needle`; panics with the console
    /// if QEMU exits or `limit` passes.
    fn wait_console(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.console().contains(needle) {
                return;
            }
            if let Err(e) = self
                .qemu
                .check_running(&format!("console to show {needle:?}"))
            {
                panic!("{e}\nconsole:\n{}", self.console());
            }
            assert!(
                Instant::now() < deadline,
                "the VM's console did not show {needle:?} within {limit:?}:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn aws(&self) -> AwsCli {
        AwsCli::new(
            &format!("http://127.0.0.1:{}", self.api_port),
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
        )
    }

    /// curl from a to `http://B_IP:port/`: its exit code (0 answered,
    /// 7 refused, 28 timed out).
    fn curl_a_to_b(&self, port: u16) -> Option<i32> {
        let url = format!("http://{B_IP}:{port}/");
        let max_time = BLOCKED.as_secs().to_string();
        let out = self.a.exec(
            BLOCKED + Duration::from_secs(5),
            &[
                "curl",
                "--noproxy",
                "*",
                "-s",
                "-o",
                "/dev/null",
                "-m",
                &max_time,
                &url,
            ],
        );
        out.status.code()
    }

    /// An HTTP server on b's address and `port`.
    fn serve_on_b(&mut self, port: u16) {
        let port_text = port.to_string();
        let server = self.b.spawn(&[
            "python3",
            "-m",
            "http.server",
            "--bind",
            B_IP,
            "--directory",
            "/",
            &port_text,
        ]);
        self.b
            .wait_listening(B_IP, port, Protocol::Tcp, Duration::from_secs(15));
        self.servers.push(server);
    }

    /// Sends `command` to QEMU's monitor.
    fn monitor(&self, command: &str) {
        let mut socket = std::os::unix::net::UnixStream::connect(self.scratch.path("monitor.sock"))
            .expect("connect to QEMU's monitor");
        writeln!(socket, "{command}").expect("write to QEMU's monitor");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How QEMU runs the VM: `$PALISADE_VM_ACCEL` if set (`kvm` or `tcg`);
/// else `kvm` when `/dev/kvm` is hardware KVM (the kvm_intel or kvm_amd
/// module); else `tcg` when `/dev/kvm` is something else, such as
/// kvm_pvm, which boots only PVM guest kernels (Debian's stalls in its
/// decompressor); `None` without `/dev/kvm`.
fn accel() -> Option<&'static str> {
    match std::env::var("PALISADE_VM_ACCEL").as_deref() {
        Ok("tcg") => return Some("tcg"),
        Ok("kvm") => return Some("kvm"),
        _ => {}
    }
    if !Path::new("/dev/kvm").exists() {
        return None;
    }
    if ["/sys/module/kvm_intel", "/sys/module/kvm_amd"]
        .iter()
        .any(|m| Path::new(m).exists())
    {
        Some("kvm")
    } else {
        eprintln!(
            "vm: /dev/kvm is not hardware KVM (no kvm_intel or kvm_amd module; kvm_pvm boots only PVM guest kernels): emulating with TCG, slower"
        );
        Some("tcg")
    }
}

/// Waits until `iface` exists in the host's namespace (QEMU made it).
fn wait_link(iface: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !run("ip", &["link", "show", "dev", iface]).status.success() {
        assert!(
            Instant::now() < deadline,
            "QEMU made no {iface} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Boots the image with `config` and the test profile; `None` (and a skip
/// line) without root or KVM.
fn boot() -> Option<Vm> {
    if !is_root() {
        eprintln!("skipped: the VM test needs root (TAP devices, namespaces, the image build)");
        return None;
    }
    let Some(accel) = accel() else {
        eprintln!(
            "skipped: /dev/kvm is absent: the VM test boots the appliance under QEMU/KVM (enable nested virtualization, run on a host with KVM, or set PALISADE_VM_ACCEL=tcg to emulate: slow)"
        );
        return None;
    };
    let tcg = accel == "tcg";
    let image = image(accel);
    let scratch = Scratch::new();
    let overlay = scratch.path("disk.qcow2");
    let created = run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            &image.display().to_string(),
            &overlay.display().to_string(),
        ],
    );
    assert!(
        created.status.success(),
        "qemu-img create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let config = scratch.write("palisade.toml", &config());
    let profile = scratch.write("profile.toml", PROFILE);
    let api_port = free_local_addr().port();
    let metrics_port = free_local_addr().port();
    for stale in ["pvm-a", "pvm-b"] {
        let _ = run("ip", &["link", "del", stale]);
    }
    let a = Netns::new("pvm-a");
    let b = Netns::new("pvm-b");
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-m", "2048", "-smp", "2"])
        // QEMU's "host" CPU minus arch-capabilities: some nested KVM hosts
        // refuse that MSR and QEMU aborts; DPDK needs none of it. TCG's
        // "max" CPU has the SSE4.2 palisade is built for.
        .args(if tcg {
            ["-accel", "tcg", "-cpu", "max"]
        } else {
            ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
        })
        .args(["-nodefaults", "-display", "none"])
        .arg("-drive")
        .arg(format!("file={},format=qcow2,if=none,id=disk", overlay.display()))
        .args(["-device", "virtio-blk-pci,drive=disk,addr=0x2"])
        // The management NIC, the kernel's (DHCP from QEMU).
        .arg("-netdev")
        .arg(format!(
            "user,id=mgmt,net=192.168.76.0/24,hostfwd=tcp:127.0.0.1:{api_port}-:8080,hostfwd=tcp:127.0.0.1:{metrics_port}-:9400"
        ))
        .args(["-device", "virtio-net-pci,netdev=mgmt,addr=0x3,romfile="])
        // The data NICs at the profile's PCI addresses, on host TAPs.
        .args(["-netdev", "tap,id=a,ifname=pvm-a,script=no,downscript=no"])
        .args(["-device", "virtio-net-pci,netdev=a,addr=0x4,mac=52:54:00:76:00:0a,romfile="])
        .args(["-netdev", "tap,id=b,ifname=pvm-b,script=no,downscript=no"])
        .args(["-device", "virtio-net-pci,netdev=b,addr=0x5,mac=52:54:00:76:00:0b,romfile="])
        .arg("-fw_cfg")
        .arg(format!("name=opt/palisade/palisade.toml,file={}", config.display()))
        .arg("-fw_cfg")
        .arg(format!("name=opt/palisade/profile.toml,file={}", profile.display()))
        .arg("-serial")
        .arg(format!("file:{}", scratch.path("console.log").display()))
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            scratch.path("monitor.sock").display()
        ));
    let qemu = ChildGuard::spawn("qemu", &mut command).expect("start qemu-system-x86_64");
    let started = Instant::now();
    wait_link("pvm-a", Duration::from_secs(30));
    wait_link("pvm-b", Duration::from_secs(30));
    a.adopt("pvm-a", A_MAC, &format!("{A_IP}/24"), "10.0.1.1");
    b.adopt("pvm-b", B_MAC, &format!("{B_IP}/24"), "10.0.2.1");
    let mut vm = Vm {
        qemu,
        a,
        b,
        servers: Vec::new(),
        api_port,
        metrics_port,
        scratch,
    };
    vm.wait_console("palisade: forwarding", BOOT);
    eprintln!(
        "vm: palisade forwarding {:.0?} after QEMU started",
        started.elapsed()
    );
    Some(vm)
}

#[test]
fn vm_appliance_boots_enforces_groups_and_takes_api_changes() {
    let Some(mut vm) = boot() else {
        return;
    };
    let console = vm.console();
    assert!(
        console.contains("palisade-seed-config: palisade.toml")
            || vm.console().contains("Seed /etc/palisade"),
        "the fw_cfg configuration was not seeded:\n{console}"
    );
    vm.serve_on_b(80);
    vm.serve_on_b(22);
    // "web" admits TCP 80; the reply reaches a on the flow's state.
    assert_eq!(vm.curl_a_to_b(80), Some(0), "a → b:80 should be answered");
    // TCP 22 is not admitted: a server listens, yet the SYN never arrives.
    assert_eq!(vm.curl_a_to_b(22), Some(28), "a → b:22 should time out");

    // The EC2 API on the management NIC, from the host, with the real CLI.
    let aws = vm.aws();
    let web = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web",
        "--query",
        "SecurityGroups[0].GroupId",
    ]);
    assert!(web.starts_with("sg-"), "no group web: {web:?}");
    let authorized = aws.text(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "22",
        "--cidr",
        "10.0.1.0/24",
    ]);
    assert!(
        authorized.contains("True"),
        "authorize answered {authorized:?}"
    );
    assert_eq!(
        vm.curl_a_to_b(22),
        Some(0),
        "a → b:22 should be answered once TCP 22 is authorized"
    );

    // /metrics, through the management NIC: the frames the VM forwarded.
    let metrics = scrape(vm.metrics_port);
    let forwarded = metric_sum(&metrics, "palisade_worker_forwarded_total", &[]);
    assert!(
        forwarded >= 10.0,
        "palisade_worker_forwarded_total is {forwarded} after three HTTP exchanges:\n{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="ingress_denied""#]
        ) > 0.0,
        "no ingress_denied drops counted:\n{metrics}"
    );

    // An ACPI power-off: systemd stops palisade with SIGINT, which must
    // end cleanly (its summary line) well before TimeoutStopSec.
    vm.servers.clear();
    vm.monitor("system_powerdown");
    vm.wait_console("palisade: stopped.", Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(120);
    while vm.qemu.check_running("to power off").is_ok() {
        assert!(
            Instant::now() < deadline,
            "the VM did not power off:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let console = vm.console();
    assert!(
        !console.contains("palisade.service: State 'stop-sigterm' timed out"),
        "systemd had to kill palisade:\n{console}"
    );
}
