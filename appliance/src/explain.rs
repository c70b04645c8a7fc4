//! `palisade explain`: what the appliance would do with one packet, and why.
//!
//! The answer comes from the data plane's own decision
//! ([`PolicySnapshot::explain`], which runs the same `decide` as
//! `Worker::process` for a new flow) against a policy built exactly as
//! `palisade run` builds it: from a configuration file, from a state
//! directory's store, or, through `GET /explain` on the metrics listener,
//! from the snapshot the running appliance has published. Nothing here
//! decides on its own, so the explanation cannot drift from the verdict.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use palisade_controlplane::config::{Config, ObjectKind, ProfileRef};
use palisade_controlplane::service;
use palisade_controlplane::store::{DATABASE_FILE, Store};
use palisade_dataplane::DropReason;
use palisade_dataplane::policy::{
    Decision, DenyReason, EniIdx, ExplainedRoute, NaclStep, Outcome, PacketFields, PolicyCell,
    PolicySnapshot, SgId, SgStep, deny_text,
};
use palisade_dataplane::wire::{FrameInfo, L3Info, L4Info, parse_frame};

use crate::startup::ProfileSource;

/// A compiled policy to question offline, and the port names it was
/// compiled with.
pub struct World {
    /// The policy, as `palisade run` would publish it at start.
    pub snapshot: PolicySnapshot,
    /// Port name → id, numbered in the profile's order (as `run
    /// --dataplane off` does; DPDK probes the profile's ports in order).
    pub ports: HashMap<String, u16>,
    /// The configuration (or the demo's): ENI names for ids.
    pub config: Config,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("generation", &self.snapshot.generation())
            .finish_non_exhaustive()
    }
}

/// Builds the policy offline: from `state_dir`'s store when given (the
/// configuration then only names the ports and the uplink, as for `run`),
/// else from the configuration's objects; without either, the demo.
pub fn load_world(config: Option<&Path>, state_dir: Option<&Path>) -> Result<World, String> {
    let config = match config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::demo(),
    };
    let profile = match &config.appliance.profile {
        ProfileRef::Path(path) => ProfileSource::File(path.clone()),
        ProfileRef::Builtin(_) => crate::DEMO_PROFILE,
    }
    .load()
    .map_err(|e| e.to_string())?;
    let ports: HashMap<String, u16> = profile
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i as u16))
        .collect();
    let snapshot = match state_dir {
        None => {
            let spec = config
                .to_spec(&|name| ports.get(name).copied())
                .map_err(|e| e.to_string())?;
            PolicySnapshot::compile(&spec, 1).map_err(|e| e.to_string())?
        }
        Some(dir) => {
            let store = open_store_copy(dir)?;
            let uplink = service::uplink_spec(&config, &ports);
            let model = store.store.model();
            service::compile_model(model, uplink, &ports, 1)
                .map_err(|e| e.to_string())?
                .1
        }
    };
    Ok(World {
        snapshot,
        ports,
        config,
    })
}

/// A store opened on a private copy of a state directory's database, so
/// that reading never writes the original (opening migrates and sets the
/// journal mode) and works while the appliance holds it. Removed on drop.
struct StoreCopy {
    store: Store,
    dir: PathBuf,
}

impl Drop for StoreCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn open_store_copy(dir: &Path) -> Result<StoreCopy, String> {
    let database = dir.join(DATABASE_FILE);
    if !database.is_file() {
        return Err(format!("no store in {} ({DATABASE_FILE})", dir.display()));
    }
    let copy = std::env::temp_dir().join(format!("palisade-explain-{}", std::process::id()));
    std::fs::create_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    // The write-ahead log holds the latest commits until a checkpoint.
    for suffix in ["", "-wal"] {
        let from = dir.join(format!("{DATABASE_FILE}{suffix}"));
        if from.is_file() {
            let to = copy.join(format!("{DATABASE_FILE}{suffix}"));
            std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
        }
    }
    match Store::open(&copy) {
        Ok(store) => Ok(StoreCopy { store, dir: copy }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&copy);
            Err(format!("store in {}: {e}", dir.display()))
        }
    }
}

/// Who sends the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// An ENI, by id (`eni-…`).
    Eni(String),
    /// An ENI by its name in the configuration file.
    Name(String),
    /// Whoever owns this address: an ENI, else the outside world through
    /// the uplink.
    Address(IpAddr),
    /// The outside world, through the uplink.
    Uplink,
}

impl std::str::FromStr for From {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "uplink" {
            Ok(From::Uplink)
        } else if let Ok(addr) = s.parse() {
            Ok(From::Address(addr))
        } else if s.is_empty() {
            Err("expected an ENI id or name, an IP address or `uplink`".to_owned())
        } else if s.starts_with("eni-") {
            Ok(From::Eni(s.to_owned()))
        } else {
            Ok(From::Name(s.to_owned()))
        }
    }
}

/// One packet to explain, as a person describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The sender.
    pub from: From,
    /// The source address (default: the sending ENI's first address of the
    /// destination's family, or `from`'s address).
    pub src: Option<IpAddr>,
    /// The destination address.
    pub to: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP/UDP ports.
    pub src_port: u16,
    /// TCP/UDP destination port.
    pub dst_port: u16,
    /// ICMP type and code.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
}

/// The source port when none is given (CLI and HTTP alike): an
/// ephemeral port, as a client's.
pub const DEFAULT_SRC_PORT: u16 = 40000;
/// The ICMP type when none is given: an echo request (8, or 128 for ICMPv6).
pub fn default_icmp_type(protocol: u8) -> u8 {
    if protocol == 58 { 128 } else { 8 }
}

/// A protocol by name (`tcp`, `udp`, `icmp`, `icmpv6`) or number.
pub fn parse_protocol(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "icmp" => Ok(1),
        "icmpv6" | "icmp6" => Ok(58),
        other => other
            .parse()
            .map_err(|_| format!("{s:?}: expected tcp, udp, icmp, icmpv6 or a number 0-255")),
    }
}

/// The sender as the policy sees it: an ENI, or the uplink (`None`).
fn sender(snapshot: &PolicySnapshot, from: &From) -> Result<Option<EniIdx>, String> {
    let owner = |addr: IpAddr| {
        (0..snapshot.enis().len() as u32)
            .filter_map(|i| snapshot.eni_by_index(i))
            .find(|&e| snapshot.eni(e).owns_ip(addr))
    };
    match from {
        From::Name(name) => Err(format!("{name:?}: not an ENI id (eni-…)")),
        From::Eni(id) => (0..snapshot.enis().len() as u32)
            .filter_map(|i| snapshot.eni_by_index(i))
            .find(|&e| snapshot.eni(e).id.as_str() == id)
            .map(Some)
            .ok_or_else(|| format!("no ENI {id} in policy generation {}", snapshot.generation())),
        From::Address(addr) => match owner(*addr) {
            Some(e) => Ok(Some(e)),
            None if snapshot.uplink().is_some() => Ok(None),
            None => Err(format!(
                "no ENI owns {addr} and there is no uplink for it to come from"
            )),
        },
        From::Uplink => {
            if snapshot.uplink().is_some() {
                Ok(None)
            } else {
                Err("the policy has no uplink".to_owned())
            }
        }
    }
}

/// The explanation of `query` against `snapshot`.
pub fn explain(snapshot: &PolicySnapshot, query: &Query) -> Result<Explanation, String> {
    let src_eni = sender(snapshot, &query.from)?;
    let src = match (query.src, &query.from, src_eni) {
        (Some(a), _, _) => a,
        (None, From::Address(a), _) => *a,
        (None, _, Some(e)) => snapshot
            .eni(e)
            .private_ips
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == query.to.is_ipv4())
            .ok_or_else(|| {
                format!(
                    "{} has no address of {}'s family; give --src",
                    snapshot.eni(e).id,
                    query.to
                )
            })?,
        (None, _, None) => return Err("a packet from the uplink needs --src".to_owned()),
    };
    if src.is_ipv4() != query.to.is_ipv4() {
        return Err(format!("{src} and {} are not of one IP version", query.to));
    }
    let fields = match query.protocol {
        1 | 58 => PacketFields::icmp(
            src,
            query.to,
            query.protocol,
            query.icmp_type,
            query.icmp_code,
        ),
        6 | 17 => PacketFields::l4(
            src,
            query.to,
            query.protocol,
            query.src_port,
            query.dst_port,
        ),
        p => PacketFields::l4(src, query.to, p, 0, 0),
    };
    Ok(explain_fields(snapshot, src_eni, &fields))
}

/// The explanation of a packet with these fields from `src` (`None`: the uplink).
pub fn explain_fields(
    snapshot: &PolicySnapshot,
    src: Option<EniIdx>,
    fields: &PacketFields,
) -> Explanation {
    let decision = match src {
        Some(e) => snapshot.explain(e, fields),
        None => snapshot.explain_from_uplink(fields),
    };
    let src_vpc = src.map(|e| snapshot.eni(e).vpc);
    let via = match &decision.route {
        ExplainedRoute::Eni(id) => {
            let dst_vpc = (0..snapshot.enis().len() as u32)
                .filter_map(|i| snapshot.eni_by_index(i))
                .find(|&e| &snapshot.eni(e).id == id)
                .map(|e| snapshot.eni(e).vpc);
            match src_vpc {
                None => "uplink",
                Some(v) if Some(v) == dst_vpc => "same-vpc",
                Some(_) => "peering",
            }
        }
        ExplainedRoute::Gateway(_) => "router",
        ExplainedRoute::Uplink => "uplink",
        ExplainedRoute::Unreachable => "none",
    };
    Explanation {
        generation: snapshot.generation(),
        via,
        decision,
    }
}

/// An explanation and where it comes from.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The policy generation that decided.
    pub generation: u64,
    /// How the packet is routed: `same-vpc`, `peering`, `uplink`, `router`, `none`.
    pub via: &'static str,
    /// What the policy says, by name.
    pub decision: Decision,
}

impl Explanation {
    /// What the data plane does with this packet as the first of its flow:
    /// forwarded, for the router, or dropped and counted under this reason.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self.decision.outcome {
            Outcome::Allowed { .. } => None,
            Outcome::ToRouter => Some(DropReason::ToRouter),
            Outcome::Denied(r) => Some(drop_reason(r)),
        }
    }

    /// For people.
    pub fn text(&self) -> String {
        format!(
            "policy generation {} (route: {})\n{}\n",
            self.generation, self.via, self.decision
        )
    }

    /// For machines: one JSON object.
    pub fn json(&self) -> String {
        let d = &self.decision;
        let p = &d.packet;
        let mut out = String::from("{");
        let _ = write!(out, "\"generation\":{}", self.generation);
        let _ = write!(
            out,
            ",\"packet\":{{\"src\":{},\"dst\":{},\"protocol\":{},\"src_port\":{},\"dst_port\":{},\"icmp_type\":{},\"icmp_code\":{}}}",
            string(&p.src.to_string()),
            string(&p.dst.to_string()),
            p.protocol,
            p.src_port,
            p.dst_port,
            p.icmp_type,
            p.icmp_code
        );
        let from = match (&d.source, d.from_uplink) {
            (Some(e), _) => string(e.as_str()),
            (None, true) => string("uplink"),
            (None, false) => "null".to_owned(),
        };
        let _ = write!(out, ",\"from\":{from}");
        let (kind, to) = match &d.route {
            ExplainedRoute::Eni(e) => ("eni", string(e.as_str())),
            ExplainedRoute::Gateway(s) => ("router", string(s.as_str())),
            ExplainedRoute::Uplink => ("uplink", "null".to_owned()),
            ExplainedRoute::Unreachable => ("none", "null".to_owned()),
        };
        let _ = write!(
            out,
            ",\"route\":{{\"kind\":\"{kind}\",\"to\":{to},\"via\":\"{}\"}}",
            self.via
        );
        let _ = write!(
            out,
            ",\"nacl_egress\":{}",
            nacl_json(d.nacl_egress.as_ref())
        );
        let _ = write!(out, ",\"sg_egress\":{}", sg_json(d.egress.as_ref()));
        let _ = write!(
            out,
            ",\"nacl_ingress\":{}",
            nacl_json(d.nacl_ingress.as_ref())
        );
        let _ = write!(out, ",\"sg_ingress\":{}", sg_json(d.ingress.as_ref()));
        let (verdict, tracked, reason) = match d.outcome {
            Outcome::Allowed { tracked } => ("allow", tracked.to_string(), "null".to_owned()),
            Outcome::ToRouter => ("to_router", "false".to_owned(), "null".to_owned()),
            Outcome::Denied(r) => ("deny", "false".to_owned(), string(deny_text(r))),
        };
        let drop = self
            .drop_reason()
            .map_or_else(|| "null".to_owned(), |r| string(r.label()));
        let _ = write!(
            out,
            ",\"verdict\":\"{verdict}\",\"tracked\":{tracked},\"reason\":{reason},\"drop_reason\":{drop}}}"
        );
        out
    }
}

/// The data plane's counter for a policy deny.
pub fn drop_reason(reason: DenyReason) -> DropReason {
    match reason {
        DenyReason::UnknownSource => DropReason::UnknownSource,
        DenyReason::SourceNotOwned => DropReason::Spoofed,
        DenyReason::NoRoute => DropReason::NoRoute,
        DenyReason::NaclEgress | DenyReason::NaclIngress => DropReason::NaclDenied,
        DenyReason::SecurityGroupEgress => DropReason::EgressDenied,
        DenyReason::SecurityGroupIngress => DropReason::IngressDenied,
    }
}

fn nacl_json(step: Option<&NaclStep>) -> String {
    step.map_or_else(
        || "null".to_owned(),
        |n| {
            format!(
                "{{\"subnet\":{},\"nacl\":{},\"rule_number\":{},\"action\":\"{}\"}}",
                string(n.subnet.as_str()),
                string(n.nacl.as_str()),
                n.decision.rule_number,
                if n.decision.allow { "allow" } else { "deny" }
            )
        },
    )
}

fn sg_json(step: Option<&SgStep>) -> String {
    step.map_or_else(
        || "null".to_owned(),
        |s| {
            let list =
                |ids: &mut dyn Iterator<Item = &str>| ids.map(string).collect::<Vec<_>>().join(",");
            format!(
                "{{\"eni\":{},\"groups\":[{}],\"allowing\":[{}],\"rule\":{},\"untracked\":{}}}",
                string(s.eni.as_str()),
                list(&mut s.groups.iter().map(SgId::as_str)),
                list(&mut s.allowing.iter().map(SgId::as_str)),
                s.rule
                    .as_ref()
                    .map_or_else(|| "null".to_owned(), |r| string(r.as_str())),
                s.untracked
            )
        },
    )
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The sender and policy fields of a captured frame: the ENI bound to its
/// source MAC and VLAN (on `port` when given, else on any port), or the
/// uplink when the frame comes from the uplink's next hop. `Err` for a
/// frame that is not an IP packet the policy judges.
pub fn frame_fields(
    snapshot: &PolicySnapshot,
    frame: &[u8],
    port: Option<u16>,
) -> Result<(Option<EniIdx>, PacketFields), String> {
    let info = parse_frame(frame).map_err(|e| format!("not a frame palisade routes: {e:?}"))?;
    let fields = ip_fields(&info).ok_or("not an IP packet")?;
    let (src, _) = frame_sender(snapshot, &info, port).ok_or_else(|| {
        format!(
            "no ENI nor the uplink has source MAC {} (VLAN {:?})",
            mac_text(info.src_mac.0),
            info.vlan
        )
    })?;
    Ok((src, fields))
}

/// Who sent `info`, and on which port: an ENI, or the uplink (`None`).
pub fn frame_sender(
    snapshot: &PolicySnapshot,
    info: &FrameInfo,
    port: Option<u16>,
) -> Option<(Option<EniIdx>, u16)> {
    let mac = info.src_mac.0;
    let eni = (0..snapshot.enis().len() as u32)
        .filter_map(|i| snapshot.eni_by_index(i))
        .find(|&e| {
            let eni = snapshot.eni(e);
            eni.mac == mac && eni.vlan == info.vlan && port.is_none_or(|p| p == eni.port)
        });
    if let Some(e) = eni {
        return Some((Some(e), snapshot.eni(e).port));
    }
    snapshot
        .uplink()
        .filter(|up| up.mac == mac && up.vlan == info.vlan && port.is_none_or(|p| p == up.port))
        .map(|up| (None, up.port))
}

/// The policy's view of a parsed IP packet (as `process()` builds it).
pub fn ip_fields(info: &FrameInfo) -> Option<PacketFields> {
    let ip = match info.l3 {
        L3Info::Ipv4(ip) | L3Info::Ipv6(ip) => ip,
        L3Info::Arp(_) => return None,
    };
    Some(match ip.l4 {
        L4Info::Tcp {
            src_port, dst_port, ..
        }
        | L4Info::Udp { src_port, dst_port } => {
            PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port)
        }
        L4Info::Icmp { ty, code, .. }
        | L4Info::Icmpv6 { ty, code, .. }
        | L4Info::IcmpError { ty, code, .. } => {
            PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code)
        }
        L4Info::Other | L4Info::NotFirstFragment => {
            PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0)
        }
    })
}

/// `aa:bb:…`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `GET /explain?from=…&to=…&protocol=…&dst-port=…` on the metrics
/// listener: the explanation against the snapshot the appliance has
/// published now, as JSON. Returns the HTTP status and the body.
pub fn http(query: &str, cell: &PolicyCell) -> (&'static str, String) {
    let parsed = parse_http_query(query);
    match parsed {
        Ok(q) => {
            let snapshot = cell.load_full();
            match explain(&snapshot, &q) {
                Ok(e) => ("200 OK", e.json() + "\n"),
                Err(e) => ("422 Unprocessable Entity", error_json(&e)),
            }
        }
        Err(e) => ("400 Bad Request", error_json(&e)),
    }
}

fn error_json(message: &str) -> String {
    format!("{{\"error\":{}}}\n", string(message))
}

fn parse_http_query(query: &str) -> Result<Query, String> {
    let mut params: HashMap<String, String> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        if params.insert(k.replace('_', "-"), v).is_some() {
            return Err(format!("parameter {pair:?} given twice"));
        }
    }
    let take = |name: &str| params.get(name).map(String::as_str);
    let number = |name: &str, default: u16| -> Result<u16, String> {
        take(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{name}={v:?}: expected a number"))
        })
    };
    let small = |name: &str, default: u8| -> Result<u8, String> {
        take(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{name}={v:?}: expected a number 0-255"))
        })
    };
    for name in params.keys() {
        if ![
            "from",
            "src",
            "to",
            "protocol",
            "src-port",
            "dst-port",
            "icmp-type",
            "icmp-code",
        ]
        .contains(&name.as_str())
        {
            return Err(format!("unknown parameter {name:?}"));
        }
    }
    let protocol = parse_protocol(take("protocol").ok_or("missing protocol=")?)?;
    Ok(Query {
        from: take("from").ok_or("missing from=")?.parse()?,
        src: take("src")
            .map(|v| v.parse().map_err(|_| format!("src={v:?}: not an address")))
            .transpose()?,
        to: take("to")
            .ok_or("missing to=")?
            .parse()
            .map_err(|_| "to=: not an address".to_owned())?,
        protocol,
        src_port: number("src-port", DEFAULT_SRC_PORT)?,
        dst_port: number("dst-port", 0)?,
        icmp_type: small("icmp-type", default_icmp_type(protocol))?,
        icmp_code: small("icmp-code", 0)?,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

/// Where an offline explanation takes its policy from.
#[derive(Debug, clap::Args)]
pub struct WorldArgs {
    /// The configuration file (without --state-dir: its objects; with it:
    /// only its profile's port names and its uplink). Default: the demo.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A state directory: the policy its store holds (read from a copy,
    /// never written).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `palisade explain`.
pub fn command(
    world: &WorldArgs,
    pcap: Option<&std::path::Path>,
    frame: usize,
    json: bool,
    query: impl FnOnce() -> Result<Query, String>,
) -> Result<(), String> {
    let w = load_world(world.config.as_deref(), world.state_dir.as_deref())?;
    let e = if let Some(path) = pcap {
        let frames = crate::replay::read_pcap(path)?;
        let (_, bytes) = frame
            .checked_sub(1)
            .and_then(|i| frames.get(i))
            .ok_or_else(|| format!("{}: no frame {frame}", path.display()))?;
        let (src, fields) =
            frame_fields(&w.snapshot, bytes, None).map_err(|e| format!("frame {frame}: {e}"))?;
        explain_fields(&w.snapshot, src, &fields)
    } else {
        let mut query = query()?;
        // A configuration name (`eni-a`) for the ENI's id.
        if let From::Name(name) | From::Eni(name) = &query.from {
            match w.config.id_of(ObjectKind::NetworkInterface, name) {
                Some(id) => query.from = From::Eni(id.to_owned()),
                None if matches!(query.from, From::Name(_)) => {
                    return Err(format!("--from {name}: no such ENI id or name"));
                }
                None => {}
            }
        }
        explain(&w.snapshot, &query)?
    };
    if json {
        write_stdout(&(e.json() + "\n"))
    } else {
        write_stdout(&e.text())
    }
}

/// Writes a command's answer to stdout: a reader that went away (`| head`)
/// ends the output quietly, never with a panic as `print!` would.
pub fn write_stdout(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing the answer: {e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_queries_parse_and_refuse_nonsense() {
        let q = parse_http_query("from=eni-1&to=fd00%3A%3A1&protocol=tcp&dst-port=443").unwrap();
        assert_eq!(q.from, From::Eni("eni-1".to_owned()));
        assert_eq!(q.to, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!((q.protocol, q.dst_port), (6, 443));
        assert!(parse_http_query("from=eni-1&to=10.0.0.1").is_err());
        assert!(parse_http_query("from=eni-1&to=10.0.0.1&protocol=tcp&bogus=1").is_err());
        assert!(parse_http_query("from=eni-1&to=x&protocol=tcp").is_err());
        assert!(parse_http_query("from=eni-1&to=10.0.0.1&protocol=tcp&dst-port=%zz").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
