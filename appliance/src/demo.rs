//! The built-in demo's surroundings: what `palisade run` without `--config`
//! sets up around its TAP ports so a newcomer can try the policy at once.
//!
//! It runs after DPDK has created the TAP interfaces (the ports are
//! started) and before the workers start forwarding: each ENI of the
//! configuration gets a network namespace named after it, holding the TAP
//! interface of its port with the ENI's MAC, addresses and default routes
//! via its subnet's gateways, so frames from the namespace identify that
//! ENI to the data plane. A small web server answers in the second ENI's
//! namespace. [`Demo`] is a guard: dropping it (on SIGINT/SIGTERM, or when
//! start-up fails later) kills the web server and deletes the namespaces.
//!
//! The namespace and interface names are fixed, so one demo runs at a
//! time: [`DemoLock`] is held from before DPDK starts until the ports are
//! closed, and a second `palisade run` fails at once, naming the first,
//! instead of taking its namespaces away. Holding the lock also proves that
//! namespaces of those names are stale (left by a palisade killed with
//! `kill -9`, which runs no clean-up): they are deleted, with a warning,
//! before anything else starts.
//!
//! Everything goes through `ip` (iproute2) as a child process, as an
//! operator would type it, so a failure names the exact command. Each
//! child gets a process group of its own: Ctrl-C at the terminal signals
//! the whole foreground group, and a set-up command killed half-way would
//! turn an orderly stop into a confusing error; palisade alone decides
//! when they stop.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_controlplane::config::{Config, NetworkInterface};
use palisade_dpdk_config::{PortDevice, Profile};

use crate::output::say_err;
use crate::stop::{Interrupted, StopFlag};

/// Where the demo keeps its pid file and the web server's page. Under
/// `/run` (a tmpfs, root's): gone at reboot, like the namespaces.
const RUN_DIR: &str = "/run/palisade-demo";

/// The demo's lock: a Unix socket name in the abstract namespace. Only one
/// socket can hold a name, and the kernel frees it when its process exits,
/// however it exits.
const LOCK_NAME: &[u8] = b"palisade-demo";

/// The port the demo's web server listens on, allowed from anywhere by the
/// demo's `web` group.
const WEB_PORT: u16 = 80;
/// The port the demo's `ssh` group admits only from an address no ENI has.
const SSH_PORT: u16 = 22;
/// How long the web server may take to start listening (python is slow to
/// start on a loaded machine).
const WEB_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the demo's namespaces or web server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A command could not be started at all (e.g. `ip` is not installed).
    #[error("demo: cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The web server's page could not be written.
    #[error("demo: cannot write the web page in {}: {source}", path.display())]
    WebRoot {
        /// The directory.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("demo: `{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An ENI's port is not a TAP device with a kernel interface name.
    #[error("demo: ENI {eni}: port {port} is not a TAP port with an `iface=` name")]
    NotTap {
        /// The ENI's name.
        eni: String,
        /// Its port's name.
        port: String,
    },
    /// The configuration lacks what the demo needs (two ENIs with IPv4).
    #[error("demo: {0}")]
    Shape(String),
    /// The web server did not start listening in time.
    #[error("demo: the web server in {namespace} did not listen on port {port} within {timeout:?}")]
    WebServer {
        /// The namespace it runs in.
        namespace: String,
        /// The port it should listen on.
        port: u16,
        /// How long it was given.
        timeout: Duration,
    },
    /// Another palisade holds the demo's lock.
    #[error(
        "demo: another palisade is already running the demo ({holder}); its namespaces and TAP interfaces have the same names, so stop it first, or run this one with --config"
    )]
    Running {
        /// `pid N` as its pid file says.
        holder: String,
    },
    /// The lock could not be taken for another reason.
    #[error("demo: cannot take the demo's lock (abstract socket @palisade-demo): {0}")]
    Lock(std::io::Error),
    /// A stop signal arrived during the set-up.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// The right to set up the demo: the bound socket [`LOCK_NAME`], held
/// while it lives.
#[derive(Debug)]
pub struct DemoLock {
    _socket: UnixListener,
}

impl DemoLock {
    /// Takes the lock, or fails naming the palisade that holds it; then
    /// deletes the namespaces of `config`'s ENIs an earlier run left behind
    /// (see the module doc), saying so.
    pub fn claim(config: &Config) -> Result<DemoLock, DemoError> {
        let pid_file = Path::new(RUN_DIR).join("pid");
        let address = SocketAddr::from_abstract_name(LOCK_NAME).map_err(DemoError::Lock)?;
        let socket = match UnixListener::bind_addr(&address) {
            Ok(socket) => socket,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let holder = std::fs::read_to_string(&pid_file)
                    .ok()
                    .map(|pid| pid.trim().to_owned())
                    .filter(|pid| !pid.is_empty())
                    .map_or_else(
                        || "its pid is unknown".to_owned(),
                        |pid| format!("pid {pid}"),
                    );
                return Err(DemoError::Running { holder });
            }
            Err(e) => return Err(DemoError::Lock(e)),
        };
        // For the message above only; the socket is the lock.
        let _ = std::fs::create_dir_all(RUN_DIR)
            .and_then(|()| std::fs::write(&pid_file, format!("{}\n", std::process::id())));
        let stale: Vec<&str> = config
            .enis
            .iter()
            .map(|eni| eni.name.as_str())
            .filter(|ns| Path::new("/run/netns").join(ns).exists())
            .collect();
        if !stale.is_empty() {
            say_err!(
                "palisade: warning: network namespace(s) {} left by an earlier run that did not stop (killed?); deleting them",
                stale.join(", ")
            );
            for ns in stale {
                ip(&["netns", "del", ns])?;
            }
        }
        // A killed run's web page, if any.
        let _ = std::fs::remove_dir_all(web_root());
        Ok(DemoLock { _socket: socket })
    }
}

impl Drop for DemoLock {
    fn drop(&mut self) {
        // Nothing of the demo stays behind; the socket goes with it.
        let _ = std::fs::remove_file(Path::new(RUN_DIR).join("pid"));
        let _ = std::fs::remove_dir(RUN_DIR);
    }
}

/// The web server's directory (its one page).
fn web_root() -> PathBuf {
    Path::new(RUN_DIR).join("www")
}

/// The demo's namespaces and web server; dropping it tears them down.
#[derive(Debug)]
pub struct Demo {
    namespaces: Vec<String>,
    web_server: Option<Child>,
    web_root: Option<std::path::PathBuf>,
    instructions: String,
}

/// One ENI's namespace, as set up.
struct Placed {
    namespace: String,
    ipv4: Option<Ipv4Addr>,
}

impl Demo {
    /// Puts each ENI's TAP interface in a namespace of its own, starts the
    /// web server in the second ENI's namespace and prepares the commands
    /// to try. Anything already set up is torn down again on error, or when
    /// `stop` reports a signal between two steps. `_lock` shows that this
    /// process owns the names.
    pub fn setup(
        config: &Config,
        profile: &Profile,
        _lock: &DemoLock,
        stop: &StopFlag,
    ) -> Result<Demo, DemoError> {
        let mut demo = Demo {
            namespaces: Vec::new(),
            web_server: None,
            web_root: None,
            instructions: String::new(),
        };
        let mut placed = Vec::new();
        for eni in &config.enis {
            stop.check("setting up the demo's namespaces")?;
            let iface = tap_iface(profile, &eni.port).ok_or_else(|| DemoError::NotTap {
                eni: eni.name.clone(),
                port: eni.port.clone(),
            })?;
            placed.push(demo.place(config, eni, &iface)?);
        }
        let (Some(client), Some(server)) = (placed.first(), placed.get(1)) else {
            return Err(DemoError::Shape("the demo needs at least two ENIs".into()));
        };
        let (Some(client_ip), Some(server_ip)) = (client.ipv4, server.ipv4) else {
            return Err(DemoError::Shape(
                "the demo's first two ENIs need IPv4 addresses".into(),
            ));
        };
        stop.check("setting up the demo's namespaces")?;
        demo.start_web_server(&server.namespace, server_ip, stop)?;
        let (client, server) = (&client.namespace, &server.namespace);
        let mut text = String::new();
        let _ = writeln!(
            text,
            "palisade: demo: namespaces {} ({client_ip} in {client}, a web server on {server_ip}:{WEB_PORT} in {server}). Try, from another shell:",
            demo.namespaces.join(", ")
        );
        let _ = writeln!(
            text,
            "  ip netns exec {client} curl --noproxy '*' -s http://{server_ip}:{WEB_PORT}/          # answers: web allows tcp/{WEB_PORT} from anywhere"
        );
        let _ = writeln!(
            text,
            "  ip netns exec {client} curl --noproxy '*' -m 5 http://{server_ip}:{SSH_PORT}/    # times out: ssh allows tcp/{SSH_PORT} only from an admin address"
        );
        let _ = writeln!(
            text,
            "  ip netns exec {client} ping -c 3 {server_ip}                                 # answers: web allows ICMP from the VPC"
        );
        demo.instructions = text;
        Ok(demo)
    }

    /// The commands to try, one per line, for printing once forwarding.
    pub fn instructions(&self) -> &str {
        &self.instructions
    }

    /// Creates `eni`'s namespace and configures `iface` in it.
    fn place(
        &mut self,
        config: &Config,
        eni: &NetworkInterface,
        iface: &str,
    ) -> Result<Placed, DemoError> {
        let ns = eni.name.as_str();
        if Path::new("/run/netns").join(ns).exists() {
            // Created since DemoLock::claim cleared the stale ones.
            say_err!("palisade: warning: network namespace {ns} already exists; deleting it");
            ip(&["netns", "del", ns])?;
        }
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["link", "set", "dev", iface, "netns", ns])?;
        let mac = format_mac(eni.mac);
        ip(&["-n", ns, "link", "set", "dev", iface, "address", &mac])?;
        ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        ip(&["-n", ns, "link", "set", "dev", iface, "up"])?;
        let subnet = config.subnets.iter().find(|s| s.id == eni.subnet);
        let mut ipv4 = None;
        for address in &eni.private_ips {
            match (address, subnet) {
                (IpAddr::V4(a), Some(s)) => {
                    ipv4 = ipv4.or(Some(*a));
                    let cidr = format!("{a}/{}", s.cidr.prefix_len());
                    ip(&["-n", ns, "addr", "add", &cidr, "dev", iface])?;
                }
                (IpAddr::V6(a), Some(s)) => {
                    let prefix = s.ipv6_cidr.map_or(128, |c| c.prefix_len());
                    let cidr = format!("{a}/{prefix}");
                    ip(&["-n", ns, "addr", "add", &cidr, "dev", iface, "nodad"])?;
                }
                (_, None) => {}
            }
        }
        if let Some(subnet) = subnet {
            let gateway = first_host_v4(subnet.cidr.network()).to_string();
            ip(&[
                "-n", ns, "route", "add", "default", "via", &gateway, "dev", iface,
            ])?;
            if let Some(v6) = subnet.ipv6_cidr {
                let gateway = first_host_v6(v6.network()).to_string();
                ip(&[
                    "-n", ns, "-6", "route", "add", "default", "via", &gateway, "dev", iface,
                ])?;
            }
        }
        Ok(Placed {
            namespace: ns.to_owned(),
            ipv4,
        })
    }

    /// Starts python3's http.server in `ns` on `address` and waits until it
    /// listens, so the first `curl` a user pastes is answered.
    fn start_web_server(
        &mut self,
        ns: &str,
        address: Ipv4Addr,
        stop: &StopFlag,
    ) -> Result<(), DemoError> {
        let bind = address.to_string();
        let port = WEB_PORT.to_string();
        let dir = web_root();
        let page = format!("hello from {ns} ({address}), through palisade\n");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("index.html"), page))
            .map_err(|source| DemoError::WebRoot {
                path: dir.clone(),
                source,
            })?;
        self.web_root = Some(dir.clone());
        let root = dir.display().to_string();
        // Debian's own python3 when present, rather than whatever wrapper
        // (a pyenv shim) comes first on PATH between setpriv and python.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        // setpriv --pdeathsig: the server dies with palisade even when
        // palisade itself is killed without a chance to run Drop.
        let args = [
            "netns",
            "exec",
            ns,
            "setpriv",
            "--pdeathsig",
            "TERM",
            python,
            "-m",
            "http.server",
            "--bind",
            &bind,
            "--directory",
            &root,
            &port,
        ];
        let child = Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| DemoError::Spawn {
                command: command_line(&args),
                source,
            })?;
        self.web_server = Some(child);
        let deadline = Instant::now() + WEB_START_TIMEOUT;
        let wanted = format!("{address}:{WEB_PORT}");
        while Instant::now() < deadline {
            stop.check("starting the demo's web server")?;
            let listening = output(&["netns", "exec", ns, "ss", "-Hltn"])?;
            if listening.split_whitespace().any(|field| field == wanted) {
                return Ok(());
            }
            if let Some(Ok(Some(_))) = self.web_server.as_mut().map(Child::try_wait) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(DemoError::WebServer {
            namespace: ns.to_owned(),
            port: WEB_PORT,
            timeout: WEB_START_TIMEOUT,
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut server) = self.web_server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        if let Some(dir) = self.web_root.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                say_err!("palisade: warning: {e}");
            }
        }
    }
}

/// The kernel interface name of a TAP port (`net_tapN,iface=NAME`).
fn tap_iface(profile: &Profile, port: &str) -> Option<String> {
    let port = profile.ports.iter().find(|p| p.name == port)?;
    let PortDevice::Vdev(devargs) = &port.device else {
        return None;
    };
    if !devargs.starts_with("net_tap") {
        return None;
    }
    devargs
        .split(',')
        .find_map(|kv| kv.strip_prefix("iface="))
        .map(str::to_owned)
}

/// A subnet's gateway: the first address after the network, as in a VPC.
fn first_host_v4(network: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(network).wrapping_add(1))
}

fn first_host_v6(network: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(network).wrapping_add(1))
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn command_line(args: &[&str]) -> String {
    format!("ip {}", args.join(" "))
}

/// Runs `ip ARGS`, failing with the command line and its stderr.
fn ip(args: &[&str]) -> Result<(), DemoError> {
    output(args).map(drop)
}

/// Runs `ip ARGS` and returns its stdout.
fn output(args: &[&str]) -> Result<String, DemoError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|source| DemoError::Spawn {
            command: command_line(args),
            source,
        })?;
    if !out.status.success() {
        return Err(DemoError::Failed {
            command: command_line(args),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_are_the_first_address_after_the_network() {
        assert_eq!(
            first_host_v4(Ipv4Addr::new(10, 0, 2, 0)),
            Ipv4Addr::new(10, 0, 2, 1)
        );
        assert_eq!(
            first_host_v6("fd00:0:0:2::".parse().unwrap()),
            "fd00:0:0:2::1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn macs_are_formatted_for_ip_link() {
        assert_eq!(format_mac([0x02, 0, 0, 0, 0, 0xab]), "02:00:00:00:00:ab");
    }

    #[test]
    fn tap_interfaces_are_found_in_the_demo_profile() {
        let profile = Profile::from_toml_str(
            include_str!("../../dpdk-config/tap-demo.toml"),
            "tap-demo.toml",
        )
        .unwrap();
        assert_eq!(tap_iface(&profile, "eni-b").as_deref(), Some("pal-b"));
        assert_eq!(tap_iface(&profile, "nonexistent"), None);
    }

    #[test]
    fn a_failing_command_is_named_in_the_error() {
        let error = ip(&["link", "show", "dev", "no-such-iface-x"]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("ip link show dev no-such-iface-x"), "{text}");
    }
}
