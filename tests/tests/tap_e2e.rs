//! End to end over TAP ports: the real `palisade run` with a test-made
//! configuration, its TAP interfaces moved into network namespaces of the
//! test's own, and real clients and servers (curl, ping, python sockets)
//! talking through it. Each test owns its names (namespaces and TAP
//! interfaces `ptN-a`…, DPDK file prefix `palisade-e2e-N`, metrics port
//! 19400+N), so it cannot collide with a running demo; everything is torn
//! down by guards even when an assertion fails.
//!
//! The world: one VPC 10.0.0.0/16, subnet a 10.0.1.0/24 with ENI a
//! (10.0.1.10), subnet b 10.0.2.0/24 with ENIs b (10.0.2.20) and c
//! (10.0.2.30); each test writes the security groups, ACLs and which ENI
//! has which groups. Behind the uplink (the internet gateway), namespace
//! "i" stands for the internet: 198.51.100.10, beyond the VPC, with its
//! default route through palisade. palisade answers ARP only for the
//! subnet gateways, on ENI ports, so "i" reaches the router the way an
//! upstream router would be set up: its next hop resolved statically to
//! the router's MAC.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use palisade_e2e::aws::{AwsCli, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use palisade_e2e::netns::{Background, Netns, Protocol, Scratch, metric_sum, scrape};
use palisade_e2e::{is_root, palisade_bin};

const A_IP: &str = "10.0.1.10";
const B_IP: &str = "10.0.2.20";
const C_IP: &str = "10.0.2.30";
/// The host behind the uplink, and its next hop (any address on its link:
/// only the MAC it resolves to, the router's, matters).
const INTERNET_IP: &str = "198.51.100.10";
const INTERNET_GATEWAY: &str = "198.51.100.1";
/// `[appliance] router_mac`'s default, which the test configurations keep.
const ROUTER_MAC: &str = "02:50:41:4c:00:01";

/// How long a connection attempt that palisade drops is given before the
/// test calls it timed out; long enough for a loaded machine to pass an
/// allowed one.
const BLOCKED: Duration = Duration::from_secs(3);
/// Upper bound for palisade's start-up (EAL, TAP ports) and for a reload.
const START: Duration = Duration::from_secs(40);

/// Small socket tools, run by python3 in the namespaces: servers that echo
/// and a TCP client that holds one connection open and sends a line per
/// stdin line, so a test can use the *same* connection before and after a
/// policy change.
const SOCKET_TOOL: &str = r#"
import socket, sys, threading
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def say(*words):
    print(*words, flush=True)

def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data.decode().strip()

if mode == "tcp-echo":
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(16)
    def serve(conn):
        with conn:
            try:
                while True:
                    line = read_line(conn)
                    conn.sendall(("echo " + line + "\n").encode())
            except (ConnectionError, OSError):
                pass
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
elif mode == "udp-echo":
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((addr, port))
    while True:
        data, peer = server.recvfrom(4096)
        server.sendto(b"echo " + data, peer)
elif mode == "udp-query":
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(float(sys.argv[5]))
    client.sendto(sys.argv[4].encode(), (addr, port))
    try:
        say("reply", client.recv(4096).decode())
    except socket.timeout:
        say("timeout")
elif mode == "tcp-client":
    client = socket.socket()
    client.settimeout(float(sys.argv[4]))
    try:
        client.connect((addr, port))
    except socket.timeout:
        say("connect-timeout")
        sys.exit(0)
    except OSError as e:
        say("connect-error", e.errno)
        sys.exit(0)
    say("connected")
    for line in sys.stdin:
        try:
            client.sendall((line.strip() + "\n").encode())
            say("reply", read_line(client))
        except socket.timeout:
            say("reply-timeout")
        except (ConnectionError, OSError) as e:
            say("reply-error", e)
"#;

/// One test's palisade and namespaces. Field order is drop order: the
/// processes in the namespaces first, then palisade (which removes the TAP
/// devices), then the namespaces, then the files.
struct World {
    servers: Vec<Background>,
    palisade: Background,
    a: Netns,
    b: Netns,
    c: Netns,
    internet: Netns,
    metrics_port: u16,
    config: PathBuf,
    generation: u64,
    index: u16,
    scratch: Scratch,
}

/// Which groups each ENI has (`None`: the VPC's default group) and the
/// groups and ACLs themselves, as `docs/CONFIG.md` TOML.
struct Policy<'a> {
    objects: &'a str,
    a_groups: Option<&'a str>,
    b_groups: Option<&'a str>,
    c_groups: Option<&'a str>,
}

impl World {
    /// Starts palisade on test `index`'s ports with `policy`, puts the TAP
    /// interfaces into namespaces and waits for "forwarding"; `None` (and
    /// a skip line) when not root.
    fn start(index: u16, policy: &Policy<'_>) -> Option<World> {
        if !is_root() {
            eprintln!("skipped: TAP end-to-end tests need root (CI runs them as root)");
            return None;
        }
        let scratch = Scratch::new();
        let metrics_port = 19400 + index;
        let profile = scratch.write("profile.toml", &profile_toml(index));
        let config = scratch.write(
            "palisade.toml",
            &config_toml(index, &profile, &scratch, metrics_port, policy),
        );
        scratch.write("socket_tool.py", SOCKET_TOOL);
        // Stale leftovers of a crashed run of this same test.
        for side in ["a", "b", "c", "i"] {
            let name = format!("pt{index}-{side}");
            let _ = palisade_e2e::netns::run("ip", &["link", "del", &name]);
        }
        let a = Netns::new(&format!("pt{index}-a"));
        let b = Netns::new(&format!("pt{index}-b"));
        let c = Netns::new(&format!("pt{index}-c"));
        let internet = Netns::new(&format!("pt{index}-i"));
        let child = std::process::Command::new(palisade_bin())
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", palisade_bin().display()));
        let mut palisade = Background::from_child(child);
        palisade.wait_for("palisade: forwarding", START);
        for (ns, side, ip, gateway) in [
            (&a, "a", A_IP, "10.0.1.1"),
            (&b, "b", B_IP, "10.0.2.1"),
            (&c, "c", C_IP, "10.0.2.1"),
        ] {
            ns.adopt(
                &format!("pt{index}-{side}"),
                &eni_mac(index, side),
                &format!("{ip}/24"),
                gateway,
            );
        }
        let uplink = format!("pt{index}-i");
        internet.adopt(
            &uplink,
            &eni_mac(index, "i"),
            &format!("{INTERNET_IP}/24"),
            INTERNET_GATEWAY,
        );
        internet.static_neighbor(&uplink, INTERNET_GATEWAY, ROUTER_MAC);
        Some(World {
            servers: Vec::new(),
            palisade,
            a,
            b,
            c,
            internet,
            metrics_port,
            config,
            generation: 1,
            index,
            scratch,
        })
    }

    fn tool(&self) -> String {
        self.scratch.path("socket_tool.py").display().to_string()
    }

    fn ns(&self, side: Side) -> &Netns {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
            Side::C => &self.c,
            Side::Internet => &self.internet,
        }
    }

    /// Starts a TCP echo server on `side`'s address and `port` and waits
    /// until it listens.
    fn tcp_echo(&mut self, side: Side, port: u16) {
        let port_text = port.to_string();
        let tool = self.tool();
        let ns = self.ns(side);
        let server = ns.spawn(&["python3", &tool, "tcp-echo", side.ip(), &port_text]);
        ns.wait_listening(side.ip(), port, Protocol::Tcp, Duration::from_secs(15));
        self.servers.push(server);
    }

    /// Starts a UDP echo server on `side`'s address and `port`.
    fn udp_echo(&mut self, side: Side, port: u16) {
        let port_text = port.to_string();
        let tool = self.tool();
        let ns = self.ns(side);
        let server = ns.spawn(&["python3", &tool, "udp-echo", side.ip(), &port_text]);
        ns.wait_listening(side.ip(), port, Protocol::Udp, Duration::from_secs(15));
        self.servers.push(server);
    }

    /// Opens a TCP connection from `from` to `to`'s `port` that the test
    /// keeps; the first line it printed says whether the connect worked.
    fn tcp_client(&self, from: Side, to: Side, port: u16) -> (Background, String) {
        let port_text = port.to_string();
        let timeout = BLOCKED.as_secs().to_string();
        let mut client = self.ns(from).spawn(&[
            "python3",
            &self.tool(),
            "tcp-client",
            to.ip(),
            &port_text,
            &timeout,
        ]);
        let first = client
            .next_line(BLOCKED + Duration::from_secs(10))
            .unwrap_or_else(|| "no output".into());
        (client, first)
    }

    /// A fresh TCP connection from `from` to `to`'s `port` and one line
    /// echoed over it. A refused connection comes back as
    /// [`Reach::Other`]: a RST would mean palisade let the SYN through.
    fn tcp_exchange(&self, from: Side, to: Side, port: u16) -> Reach {
        let (mut client, first) = self.tcp_client(from, to, port);
        match first.as_str() {
            "connected" => {
                client.send_line("hello");
                match client.next_line(BLOCKED + Duration::from_secs(5)) {
                    Some(line) if line == "reply echo hello" => Reach::Answered,
                    other => Reach::Other(format!("connected, then {other:?}")),
                }
            }
            "connect-timeout" => Reach::TimedOut,
            other => Reach::Other(other.to_owned()),
        }
    }

    /// One UDP datagram from `from` to `to`'s `port` and its echo.
    fn udp_exchange(&self, from: Side, to: Side, port: u16) -> Reach {
        let out = self.ns(from).exec(
            Duration::from_secs(10),
            &[
                "python3",
                &self.tool(),
                "udp-query",
                to.ip(),
                &port.to_string(),
                "hi",
                &BLOCKED.as_secs().to_string(),
            ],
        );
        match String::from_utf8_lossy(&out.stdout).trim() {
            "reply echo hi" => Reach::Answered,
            "timeout" => Reach::TimedOut,
            other => Reach::Other(other.to_owned()),
        }
    }

    /// Whether `ping` from `from` to `to` gets an answer (two tries).
    fn ping(&self, from: Side, to: Side) -> bool {
        let out = self.ns(from).exec(
            Duration::from_secs(10),
            &["ping", "-c", "2", "-i", "0.3", "-W", "2", "-q", to.ip()],
        );
        out.status.success()
    }

    /// curl from `from` to `http://to:port/`, bounded by [`BLOCKED`]; its
    /// exit code (0 answered, 7 refused, 28 timed out).
    fn curl(&self, from: Side, to: Side, port: u16) -> Option<i32> {
        let url = format!("http://{}:{port}/", to.ip());
        let max_time = BLOCKED.as_secs().to_string();
        let out = self.ns(from).exec(
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

    /// Rewrites the configuration with `policy`, sends SIGHUP and waits
    /// for palisade to report the next generation.
    fn reload(&mut self, policy: &Policy<'_>) {
        let profile = self.scratch.path("profile.toml");
        let text = config_toml(
            self.index,
            &profile,
            &self.scratch,
            self.metrics_port,
            policy,
        );
        std::fs::write(&self.config, text).expect("rewrite the configuration");
        self.palisade.signal("HUP");
        self.generation += 1;
        self.palisade.wait_for(
            &format!("reloaded: policy generation {}", self.generation),
            START,
        );
    }

    fn metrics(&self) -> String {
        scrape(self.metrics_port)
    }

    fn generation(&self) -> u64 {
        metric_sum(&self.metrics(), "palisade_policy_generation", &[]).round() as u64
    }

    /// The real AWS CLI pointed at this palisade's EC2 API.
    fn aws(&self) -> AwsCli {
        AwsCli::new(
            &format!("http://127.0.0.1:{}", api_port(self.index)),
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
        )
    }
}

/// One of the three ENIs, or the internet behind the uplink, by its
/// namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
    C,
    Internet,
}

impl Side {
    fn ip(self) -> &'static str {
        match self {
            Side::A => A_IP,
            Side::B => B_IP,
            Side::C => C_IP,
            Side::Internet => INTERNET_IP,
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.servers.clear();
        let (clean, rest) = self.palisade.terminate(Duration::from_secs(15));
        // DPDK's runtime files of this test's file prefix.
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/palisade-e2e-{}", self.index));
        assert!(
            clean || std::thread::panicking(),
            "palisade did not stop cleanly on SIGTERM; last output:\n{rest}"
        );
    }
}

/// What became of an exchange.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// The other side answered.
    Answered,
    /// Nothing came back: palisade dropped it.
    TimedOut,
    /// Anything else (refused, an error): the test prints it.
    Other(String),
}

fn eni_mac(index: u16, side: &str) -> String {
    let last = match side {
        "a" => 0x0a,
        "b" => 0x0b,
        "c" => 0x0c,
        // The uplink's next hop: the internet namespace.
        _ => 0xfe,
    };
    format!("02:00:00:00:{index:02x}:{last:02x}")
}

fn profile_toml(index: u16) -> String {
    let mut text = format!(
        r#"workers = [1]

[eal]
lcores = [0, 1]
main_lcore = 0
file_prefix = "palisade-e2e-{index}"
log_level = "notice"

[eal.memory]
mode = "hugepages"
socket_mem_mb = [128]
memory_mb = 128

[mempool]
mbufs = 4095
cache = 128
data_room = 2176
"#
    );
    for (n, side) in ["a", "b", "c", "i"].iter().enumerate() {
        let _ = write!(
            text,
            "\n[[ports]]\nname = \"port-{side}\"\nvdev = \"net_tap{n},iface=pt{index}-{side}\"\nrx_descriptors = 256\ntx_descriptors = 256\n"
        );
    }
    text
}

/// Test `index`'s EC2 API port.
fn api_port(index: u16) -> u16 {
    19500 + index
}

fn config_toml(
    index: u16,
    profile: &std::path::Path,
    scratch: &Scratch,
    metrics_port: u16,
    policy: &Policy<'_>,
) -> String {
    let groups = |g: Option<&str>| g.map_or(String::new(), |g| format!("groups = {g}\n"));
    format!(
        r#"[appliance]
profile = "{profile}"
state_dir = "{state}"
metrics_listen = "127.0.0.1:{metrics_port}"
api_listen = "127.0.0.1:{api_port}"
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

{objects}

[[eni]]
name = "a"
subnet = "a"
port = "port-a"
mac = "{mac_a}"
ips = ["{A_IP}"]
{groups_a}
[[eni]]
name = "b"
subnet = "b"
port = "port-b"
mac = "{mac_b}"
ips = ["{B_IP}"]
{groups_b}
[[eni]]
name = "c"
subnet = "b"
port = "port-c"
mac = "{mac_c}"
ips = ["{C_IP}"]
{groups_c}
[uplink]
port = "port-i"
mac = "{mac_i}"
"#,
        profile = profile.display(),
        state = scratch.path("var").display(),
        api_port = api_port(index),
        objects = policy.objects,
        mac_a = eni_mac(index, "a"),
        mac_b = eni_mac(index, "b"),
        mac_c = eni_mac(index, "c"),
        mac_i = eni_mac(index, "i"),
        groups_a = groups(policy.a_groups),
        groups_b = groups(policy.b_groups),
        groups_c = groups(policy.c_groups),
    )
}

/// "web" (on b): TCP 80 from anywhere, nothing else in. "client" (on a):
/// no inbound rules at all, so every reply a receives passes on state.
const WEB_AND_CLIENT: &str = r#"
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
"#;

#[test]
fn allowed_tcp_flows_both_ways_blocked_port_times_out_replies_pass_on_state() {
    let Some(mut world) = World::start(
        1,
        &Policy {
            objects: WEB_AND_CLIENT,
            a_groups: Some(r#"["client"]"#),
            b_groups: Some(r#"["web"]"#),
            c_groups: None,
        },
    ) else {
        return;
    };
    world.tcp_echo(Side::B, 80);
    world.tcp_echo(Side::A, 80);
    // a → b:80 is allowed; the echo coming back to a, whose group has no
    // inbound rule at all, passes only because it belongs to the flow.
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 80), Reach::Answered);
    // The reverse direction is a new flow into a group with no ingress.
    assert_eq!(world.tcp_exchange(Side::B, Side::A, 80), Reach::TimedOut);
    // Port 22 on b: nothing listens there, so if palisade let the SYN
    // through the kernel would answer RST and curl exit 7 (refused);
    // dropped, curl times out with 28.
    assert_eq!(world.curl(Side::A, Side::B, 22), Some(28));
    let metrics = world.metrics();
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="ingress_denied""#]
        ) > 0.0,
        "no ingress_denied drops counted:\n{metrics}"
    );
    assert!(
        metric_sum(&metrics, "palisade_new_flows_total", &[]) >= 1.0,
        "{metrics}"
    );
}

/// "locked" (on a): out only TCP 80 and UDP 5353 to subnet b, instead of
/// the default allow-all egress. "open" (on b): TCP 80 and 8080, UDP 5353
/// and 5354 in from anywhere.
const LOCKED_EGRESS: &str = r#"
[[security_group]]
name = "locked"
vpc = "test"

[[security_group.egress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "10.0.2.0/24"

[[security_group.egress]]
protocol = "udp"
from_port = 5353
to_port = 5353
cidr = "10.0.2.0/24"

[[security_group]]
name = "open"
vpc = "test"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "0.0.0.0/0"

[[security_group.ingress]]
protocol = "tcp"
from_port = 8080
to_port = 8080
cidr = "0.0.0.0/0"

[[security_group.ingress]]
protocol = "udp"
from_port = 5353
to_port = 5354
cidr = "0.0.0.0/0"
"#;

#[test]
fn egress_rules_restrict_what_leaves_and_udp_is_answered_on_state() {
    let Some(mut world) = World::start(
        2,
        &Policy {
            objects: LOCKED_EGRESS,
            a_groups: Some(r#"["locked"]"#),
            b_groups: Some(r#"["open"]"#),
            c_groups: None,
        },
    ) else {
        return;
    };
    world.tcp_echo(Side::B, 80);
    world.tcp_echo(Side::B, 8080);
    world.udp_echo(Side::B, 5353);
    world.udp_echo(Side::B, 5354);
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 80), Reach::Answered);
    // b admits 8080, but a's group does not let it out.
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 8080), Reach::TimedOut);
    // UDP: the echo returns to a (no inbound rules) on the flow's state.
    assert_eq!(world.udp_exchange(Side::A, Side::B, 5353), Reach::Answered);
    assert_eq!(world.udp_exchange(Side::A, Side::B, 5354), Reach::TimedOut);
    let metrics = world.metrics();
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="egress_denied""#]
        ) > 0.0,
        "no egress_denied drops counted:\n{metrics}"
    );
}

/// "db" (on b): TCP 5432 from members of "app" only, and TCP 6000 from
/// subnet b (to show c's own traffic to b gets through where allowed). a
/// has "app" and the default group; c only the default group.
const PEER_GROUPS: &str = r#"
[[security_group]]
name = "app"
vpc = "test"

[[security_group]]
name = "db"
vpc = "test"

[[security_group.ingress]]
protocol = "tcp"
from_port = 6000
to_port = 6000
cidr = "10.0.2.0/24"

[[security_group.ingress]]
protocol = "tcp"
from_port = 5432
to_port = 5432
group = "app"
"#;

#[test]
fn a_group_peer_rule_admits_members_only_and_default_group_members_talk() {
    let Some(mut world) = World::start(
        3,
        &Policy {
            objects: PEER_GROUPS,
            a_groups: Some(r#"["app", "default"]"#),
            b_groups: Some(r#"["db"]"#),
            c_groups: None,
        },
    ) else {
        return;
    };
    world.tcp_echo(Side::B, 5432);
    world.tcp_echo(Side::B, 6000);
    world.tcp_echo(Side::A, 7000);
    world.tcp_echo(Side::C, 7000);
    // Member of "app" → db: admitted. Not a member (c) → dropped.
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 5432), Reach::Answered);
    assert_eq!(world.tcp_exchange(Side::C, Side::B, 5432), Reach::TimedOut);
    // c does reach b (same subnet, through palisade) where a rule allows.
    assert_eq!(world.tcp_exchange(Side::C, Side::B, 6000), Reach::Answered);
    // The default group admits its members, both ways, any port.
    assert_eq!(world.tcp_exchange(Side::C, Side::A, 7000), Reach::Answered);
    assert_eq!(world.tcp_exchange(Side::A, Side::C, 7000), Reach::Answered);
    // b is no member of "default": a and c do not admit it.
    assert_eq!(world.tcp_exchange(Side::B, Side::A, 7000), Reach::TimedOut);
}

/// "pingable" (on b): ICMP echo requests from subnet a. a's group admits
/// nothing.
const ICMP_ONE_WAY: &str = r#"
[[security_group]]
name = "pingable"
vpc = "test"

[[security_group.ingress]]
protocol = "icmp"
from_port = 8
to_port = -1
cidr = "10.0.1.0/24"

[[security_group]]
name = "silent"
vpc = "test"
"#;

#[test]
fn icmp_is_allowed_per_rule_one_way() {
    let Some(world) = World::start(
        4,
        &Policy {
            objects: ICMP_ONE_WAY,
            a_groups: Some(r#"["silent"]"#),
            b_groups: Some(r#"["pingable"]"#),
            c_groups: Some(r#"["silent"]"#),
        },
    ) else {
        return;
    };
    assert!(
        world.ping(Side::A, Side::B),
        "a → b ping should be answered"
    );
    assert!(
        !world.ping(Side::B, Side::A),
        "b → a ping should be dropped"
    );
    // c is outside 10.0.1.0/24: b's rule does not admit its pings.
    assert!(
        !world.ping(Side::C, Side::B),
        "c → b ping should be dropped"
    );
}

const WEB_WITHOUT_RULES: &str = r#"
[[security_group]]
name = "web"
vpc = "test"

[[security_group]]
name = "client"
vpc = "test"
"#;

/// The policy the live-change tests start from: A is a client, B serves
/// tcp/80 to it.
const CLIENT_TO_WEB: Policy<'static> = Policy {
    objects: WEB_AND_CLIENT,
    a_groups: Some(r#"["client"]"#),
    b_groups: Some(r#"["web"]"#),
    c_groups: None,
};

/// Starts world `index` on [`CLIENT_TO_WEB`] with an echo server on B:80
/// and one established connection from A that has already echoed a line.
fn established_connection(index: u16) -> Option<(World, Background)> {
    let mut world = World::start(index, &CLIENT_TO_WEB)?;
    world.tcp_echo(Side::B, 80);
    let (mut held, first) = world.tcp_client(Side::A, Side::B, 80);
    assert_eq!(first, "connected");
    held.send_line("before");
    assert_eq!(
        held.next_line(Duration::from_secs(10)).as_deref(),
        Some("reply echo before")
    );
    Some((world, held))
}

#[test]
fn removing_a_rule_keeps_established_connections_and_blocks_new_ones() {
    let with_rule = CLIENT_TO_WEB;
    let Some((mut world, mut held)) = established_connection(5) else {
        return;
    };
    world.reload(&Policy {
        objects: WEB_WITHOUT_RULES,
        ..with_rule
    });
    // Security groups are stateful: the tracked connection keeps going.
    for n in 0..3 {
        held.send_line(&format!("after{n}"));
        assert_eq!(
            held.next_line(Duration::from_secs(10)),
            Some(format!("reply echo after{n}"))
        );
    }
    // A new connection to the same port meets the new policy.
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 80), Reach::TimedOut);
    let metrics = world.metrics();
    assert_eq!(
        metric_sum(&metrics, "palisade_policy_generation", &[]).round() as u64,
        2,
        "{metrics}"
    );
}

/// Subnet b's own ACL: deny everything from a's address first, allow the
/// rest both ways.
const NACL_DENY_A: &str = r#"
[[network_acl]]
name = "guard"
vpc = "test"
subnets = ["b"]

[[network_acl.entry]]
rule_number = 10
egress = false
protocol = "-1"
cidr = "10.0.1.10/32"
action = "deny"

[[network_acl.entry]]
rule_number = 100
egress = false
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"

[[network_acl.entry]]
rule_number = 100
egress = true
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"
"#;

#[test]
fn a_network_acl_deny_cuts_an_established_connection_at_once() {
    let before = CLIENT_TO_WEB;
    let Some((mut world, mut held)) = established_connection(6) else {
        return;
    };
    let objects = format!("{WEB_AND_CLIENT}\n{NACL_DENY_A}");
    world.reload(&Policy {
        objects: &objects,
        ..before
    });
    // Network ACLs are stateless: the very next segment is dropped. The
    // reload has returned only once every worker loaded the new policy, so
    // no worker can still decide it under the old one.
    held.send_line("after");
    assert_eq!(
        held.next_line(BLOCKED + Duration::from_secs(5)).as_deref(),
        Some("reply-timeout")
    );
    let metrics = world.metrics();
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="nacl_denied""#]
        ) > 0.0,
        "no nacl_denied drops counted:\n{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "palisade_policy_generation", &[]).round() as u64,
        2,
        "{metrics}"
    );
    // The reload answered once every worker had loaded the new policy
    // (the grace period), not at its 2 s limit.
    assert!(
        metrics
            .lines()
            .any(|l| l == "palisade_policy_late_publications_total 0"),
        "{metrics}"
    );
}

/// Through the EC2 API with the real AWS CLI, as an operator would: B's
/// group "web" starts without rules, so A's connection to B:8080 times
/// out; `aws ec2 authorize-security-group-ingress` admits it as soon as the
/// CLI returns (palisade answers only once the new policy is published);
/// `revoke-security-group-ingress` then blocks new connections while one
/// opened before it keeps working.
#[test]
fn a_rule_authorized_with_the_aws_cli_admits_and_its_revocation_blocks_only_new_connections() {
    let Some(mut world) = World::start(
        7,
        &Policy {
            objects: WEB_WITHOUT_RULES,
            ..CLIENT_TO_WEB
        },
    ) else {
        return;
    };
    let aws = world.aws();
    world.tcp_echo(Side::B, 8080);
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 8080), Reach::TimedOut);

    let web = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web",
        "--query",
        "SecurityGroups[0].GroupId",
    ]);
    assert!(web.starts_with("sg-"), "no group web: {web:?}");
    let permission = [
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "10.0.1.0/24",
    ];
    let generation = world.generation();
    let authorized = aws.text(
        &[
            &["ec2", "authorize-security-group-ingress"][..],
            &permission[..],
        ]
        .concat(),
    );
    assert!(authorized.starts_with("True"), "{authorized}");
    assert_eq!(world.generation(), generation + 1);
    let (mut held, first) = world.tcp_client(Side::A, Side::B, 8080);
    assert_eq!(first, "connected");
    held.send_line("while allowed");
    assert_eq!(
        held.next_line(Duration::from_secs(10)).as_deref(),
        Some("reply echo while allowed")
    );
    // Another address of the rule's block is no reason to admit c (in b's
    // subnet): the rule names a's subnet only.
    assert_eq!(world.tcp_exchange(Side::C, Side::B, 8080), Reach::TimedOut);

    let revoked = aws.text(
        &[
            &["ec2", "revoke-security-group-ingress"][..],
            &permission[..],
        ]
        .concat(),
    );
    assert!(revoked.starts_with("True"), "{revoked}");
    assert_eq!(world.generation(), generation + 2);
    // Stateful: the connection admitted before the revocation goes on.
    for n in 0..3 {
        held.send_line(&format!("after revoke {n}"));
        assert_eq!(
            held.next_line(Duration::from_secs(10)),
            Some(format!("reply echo after revoke {n}"))
        );
    }
    // A new one meets the revoked policy.
    assert_eq!(world.tcp_exchange(Side::A, Side::B, 8080), Reach::TimedOut);
    let rules = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--group-ids",
        &web,
        "--query",
        "length(SecurityGroups[0].IpPermissions)",
    ]);
    assert_eq!(rules, "0");
}

/// "public" (on a): TCP 80 from the internet's block 198.51.100.0/24, TCP
/// 8080 only from 203.0.113.0/24 (not the internet host's), TCP 9000 from
/// anywhere. Subnet a's ACL "edge" denies TCP 9000 from the internet host
/// inbound and TCP 7000 to it outbound, and allows the rest.
const NORTH_SOUTH: &str = r#"
[[security_group]]
name = "public"
vpc = "test"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "198.51.100.0/24"

[[security_group.ingress]]
protocol = "tcp"
from_port = 8080
to_port = 8080
cidr = "203.0.113.0/24"

[[security_group.ingress]]
protocol = "tcp"
from_port = 9000
to_port = 9000
cidr = "0.0.0.0/0"

[[network_acl]]
name = "edge"
vpc = "test"
subnets = ["a"]

[[network_acl.entry]]
rule_number = 10
egress = false
protocol = "tcp"
from_port = 9000
to_port = 9000
cidr = "198.51.100.10/32"
action = "deny"

[[network_acl.entry]]
rule_number = 100
egress = false
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"

[[network_acl.entry]]
rule_number = 10
egress = true
protocol = "tcp"
from_port = 7000
to_port = 7000
cidr = "198.51.100.10/32"
action = "deny"

[[network_acl.entry]]
rule_number = 100
egress = true
protocol = "-1"
cidr = "0.0.0.0/0"
action = "allow"
"#;

/// North-south through the uplink: the internet namespace reaches a's
/// server and gets the echo back; a reaches a server on the internet and
/// its reply comes back on the flow's state; group rules with blocks
/// beyond the VPC admit and refuse; a's subnet ACL denies on this path
/// both ways; and the uplink stays in the policy after a SIGHUP reload and
/// after an API change that recompiles everything.
#[test]
fn the_internet_reaches_an_eni_through_the_uplink_and_back_under_groups_and_acls() {
    let policy = Policy {
        objects: NORTH_SOUTH,
        a_groups: Some(r#"["public"]"#),
        b_groups: None,
        c_groups: None,
    };
    let Some(mut world) = World::start(8, &policy) else {
        return;
    };
    for port in [80, 8080, 9000] {
        world.tcp_echo(Side::A, port);
    }
    world.tcp_echo(Side::Internet, 80);
    world.tcp_echo(Side::Internet, 7000);
    // In from the uplink to a, and a's echo out of it.
    assert_eq!(
        world.tcp_exchange(Side::Internet, Side::A, 80),
        Reach::Answered
    );
    // Out from a to the internet; the reply passes on state ("public"
    // admits nothing from port 80).
    assert_eq!(
        world.tcp_exchange(Side::A, Side::Internet, 80),
        Reach::Answered
    );
    // 8080 admits 203.0.113.0/24 only.
    assert_eq!(
        world.tcp_exchange(Side::Internet, Side::A, 8080),
        Reach::TimedOut
    );
    let metrics = world.metrics();
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="ingress_denied""#]
        ) > 0.0,
        "no ingress_denied drops counted:\n{metrics}"
    );
    // The group admits 9000 from anywhere; the subnet's ACL denies it
    // from the internet host. And outbound to its 7000.
    assert_eq!(
        world.tcp_exchange(Side::Internet, Side::A, 9000),
        Reach::TimedOut
    );
    assert_eq!(
        world.tcp_exchange(Side::A, Side::Internet, 7000),
        Reach::TimedOut
    );
    let metrics = world.metrics();
    assert!(
        metric_sum(
            &metrics,
            "palisade_drops_total",
            &[r#"reason="nacl_denied""#]
        ) >= 2.0,
        "fewer than two nacl_denied drops counted:\n{metrics}"
    );

    // SIGHUP: the reloaded generation has the uplink too.
    world.reload(&policy);
    assert_eq!(
        world.tcp_exchange(Side::Internet, Side::A, 80),
        Reach::Answered
    );
    // An API change that recompiles the whole policy: still there.
    let aws = world.aws();
    let vpc = aws.text(&["ec2", "describe-vpcs", "--query", "Vpcs[0].VpcId"]);
    assert!(vpc.starts_with("vpc-"), "no VPC: {vpc:?}");
    let generation = world.generation();
    let created = aws.text(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "late",
        "--description",
        "a new group",
        "--vpc-id",
        &vpc,
        "--query",
        "GroupId",
    ]);
    assert!(created.starts_with("sg-"), "{created}");
    assert_eq!(world.generation(), generation + 1);
    assert_eq!(
        world.tcp_exchange(Side::A, Side::Internet, 80),
        Reach::Answered
    );
}
