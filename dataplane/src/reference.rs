//! The reference router: `process()`'s semantics as plain code over the
//! spec, for differential tests.
//!
//! Written for obviousness, not speed: ENIs are found by scanning the spec,
//! decisions come from `palisade_policy::reference` (plain loops over the
//! rules), connections live in a `HashMap` keyed by an unordered pair of
//! endpoints, NACLs are evaluated on every packet, the IPv4 checksum is
//! recomputed from scratch. It shares only the frame parser with the fast
//! path (which has its own tests). Property tests drive both with the same
//! packets and rule changes and require the same verdict and the same
//! output bytes for every packet.
//!
//! Differences it does not model: the flow table's capacity (tests size the
//! table so it never fills) and the fragment table's.

use core::net::IpAddr;
use std::collections::HashMap;

use palisade_policy::reference as policy_ref;
use palisade_policy::reference::{RefRoute, RefSgMatch};
use palisade_policy::{Direction, EniId, EniSpec, PacketFields, PolicySpec};
use palisade_wire::arp::ArpOperation;
use palisade_wire::{FrameInfo, L3Info, L4Info, parse_frame};

use crate::verdict::{DropReason, Verdict};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    protocol: u8,
    /// The two ends, smaller first: a connection is the same from both.
    ends: [(IpAddr, u16); 2],
    /// The VPCs joined, smaller id first (the uplink joins none).
    vpcs: [Option<String>; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tcp {
    SynSent,
    SynReceived,
    Established,
    Closing,
    Closed,
}

#[derive(Clone, Debug)]
struct Conn {
    initiator: (IpAddr, u16),
    /// For TCP; other protocols use `replied`.
    tcp: Tcp,
    fin_from_initiator: bool,
    fin_from_responder: bool,
    replied: bool,
    expires_at: u32,
}

/// The reference router's state: connections and fragmented datagrams.
#[derive(Debug, Default)]
pub struct ReferenceRouter {
    conns: HashMap<ConnKey, Conn>,
    /// (VPC pair, src, dst, protocol, IP id) → (allowed, expiry).
    fragments: HashMap<FragmentId, (bool, u32)>,
}

type ConnKeyVpcs = [Option<String>; 2];

/// A fragmented datagram: VPC pair, source, destination, protocol, IP id.
type FragmentId = (ConnKeyVpcs, IpAddr, IpAddr, u8, u32);

/// The idle timeouts in force for a connection (SEMANTICS.md plus
/// palisade's choices), from the stricter of the two ENIs.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    tcp_established: u32,
    udp_stream: u32,
    udp: u32,
}

const TCP_TRANSITORY: u32 = 120;
const TCP_CLOSING: u32 = 120;
const ICMP_TIMEOUT: u32 = 30;
const OTHER_TIMEOUT: u32 = 600;
const FRAGMENT_TIMEOUT: u32 = 30;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

impl ReferenceRouter {
    /// A router with no connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// The verdict for `frame` arriving on `port` at `now`, and the frame
    /// as it leaves (for `Forward` and `Reply`).
    pub fn handle(
        &mut self,
        spec: &PolicySpec,
        port: u16,
        frame: &[u8],
        now: u32,
    ) -> (Verdict, Option<Vec<u8>>) {
        match self.handle_inner(spec, port, frame, now) {
            Ok((verdict, out)) => (verdict, out),
            Err(reason) => (Verdict::Drop(reason), None),
        }
    }

    fn handle_inner(
        &mut self,
        spec: &PolicySpec,
        port: u16,
        frame: &[u8],
        now: u32,
    ) -> Result<(Verdict, Option<Vec<u8>>), DropReason> {
        let info = parse_frame(frame).map_err(|e| match e {
            palisade_wire::WireError::UnsupportedEtherType => DropReason::UnsupportedEtherType,
            _ => DropReason::Malformed,
        })?;
        let sender = spec
            .enis
            .iter()
            .find(|e| e.port == port && e.vlan == info.vlan && e.mac == info.src_mac.0);
        let from_uplink = sender.is_none()
            && spec
                .uplink
                .as_ref()
                .is_some_and(|u| u.port == port && u.vlan == info.vlan && u.mac == info.src_mac.0);

        let ip = match info.l3 {
            L3Info::Arp(arp) => {
                let e = sender.ok_or(DropReason::NeighborDiscoveryIgnored)?;
                let target = IpAddr::V4(arp.target_ip);
                if arp.operation != ArpOperation::Request
                    || !subnet_contains(spec, e, target)
                    || e.private_ips.contains(&target)
                {
                    return Err(DropReason::NeighborDiscoveryIgnored);
                }
                return Ok((
                    Verdict::Reply { port },
                    Some(arp_reply(frame, &info, spec.router_mac)),
                ));
            }
            L3Info::Ipv4(ip) | L3Info::Ipv6(ip) => ip,
        };
        if let L4Info::Icmpv6 { ty, nd_target, .. } = ip.l4 {
            if (130..=137).contains(&ty) || ty == 143 {
                let e = sender.ok_or(DropReason::NeighborDiscoveryIgnored)?;
                let target = nd_target.map(IpAddr::V6);
                return match target {
                    Some(t)
                        if ty == 135
                            && subnet_contains(spec, e, t)
                            && !e.private_ips.contains(&t) =>
                    {
                        // The advertisement's bytes are checked by the wire
                        // crate's own tests; here only the verdict.
                        Ok((Verdict::Reply { port }, None))
                    }
                    _ => Err(DropReason::NeighborDiscoveryIgnored),
                };
            }
        }
        if info.dst_mac.0 != spec.router_mac {
            return Err(DropReason::NotForRouter);
        }
        if sender.is_none() && !from_uplink {
            return Err(DropReason::UnknownSource);
        }
        if let Some(e) = sender {
            if e.source_dest_check && !e.private_ips.contains(&ip.src) {
                return Err(DropReason::Spoofed);
            }
        }
        let route = match sender {
            Some(e) => policy_ref::route(spec, &vpc_of(spec, e), ip.dst),
            None => policy_ref::route_from_uplink(spec, ip.dst),
        };
        let receiver = match &route {
            RefRoute::Eni(id) => Some(eni(spec, id)),
            RefRoute::Uplink => None,
            RefRoute::Gateway(_) => return Err(DropReason::ToRouter),
            RefRoute::Unreachable => return Err(DropReason::NoRoute),
        };
        let vpcs = vpc_pair(spec, sender, receiver);

        // Later fragments follow the first.
        if matches!(ip.l4, L4Info::NotFirstFragment) {
            let id = ip.fragment.map_or(0, |f| f.id);
            let key = (vpcs.clone(), ip.src, ip.dst, ip.protocol, id);
            return match self.fragments.get(&key) {
                Some(&(true, expires)) if now < expires => {
                    Ok(forwarded(spec, frame, &info, receiver))
                }
                _ => Err(DropReason::FragmentUnknown),
            };
        }

        let (fields, sport, dport, flags) = match ip.l4 {
            L4Info::Tcp {
                src_port,
                dst_port,
                flags,
            } => (
                PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
                src_port,
                dst_port,
                flags,
            ),
            L4Info::Udp { src_port, dst_port } => (
                PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
                src_port,
                dst_port,
                0,
            ),
            L4Info::Icmp { ty, code, echo_id }
            | L4Info::Icmpv6 {
                ty, code, echo_id, ..
            } => {
                let id = echo_id.unwrap_or(0);
                (
                    PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code),
                    id,
                    id,
                    0,
                )
            }
            L4Info::IcmpError { ty, code, quoted } => {
                // Related traffic: allowed if it quotes a live connection and
                // goes back to the quoted packet's sender.
                if quoted.src != ip.dst {
                    return Err(DropReason::IcmpErrorUnrelated);
                }
                let key = conn_key(
                    vpcs,
                    quoted.protocol,
                    (quoted.src, quoted.src_port),
                    (quoted.dst, quoted.dst_port),
                );
                if self.conns.get(&key).is_none_or(|c| now >= c.expires_at) {
                    return Err(DropReason::IcmpErrorUnrelated);
                }
                let fields = PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code);
                if !nacls_allow(spec, sender, receiver, &fields) {
                    return Err(DropReason::NaclDenied);
                }
                return Ok(forwarded(spec, frame, &info, receiver));
            }
            L4Info::Other => (PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0), 0, 0, 0),
            L4Info::NotFirstFragment => unreachable!("handled above"),
        };

        let key = conn_key(vpcs.clone(), ip.protocol, (ip.src, sport), (ip.dst, dport));
        let timeouts = timeouts_of(sender, receiver);
        let mut allowed = false;
        if let Some(conn) = self.conns.get_mut(&key).filter(|c| now < c.expires_at) {
            if !nacls_allow(spec, sender, receiver, &fields) {
                return Err(DropReason::NaclDenied);
            }
            let from_initiator = conn.initiator == (ip.src, sport);
            if on_packet(conn, ip.protocol, from_initiator, flags, now, timeouts) {
                allowed = true;
            } else {
                self.conns.remove(&key);
            }
        }
        let decision = if allowed {
            Ok(())
        } else {
            decide(spec, sender, &route, &fields).map(|(untracked, some_side_untracked)| {
                // The reply of an untracked flow is untracked too (see
                // `process::decide::reply_of_untracked`): the same packet the
                // other way round is allowed and untracked.
                let untracked = untracked
                    || (some_side_untracked && {
                        let back = reverse_route(sender, receiver);
                        decide(spec, receiver, &back, &reversed(&fields)).is_ok_and(|(u, _)| u)
                    });
                if !untracked {
                    // Tracked: remember the connection.
                    self.conns.insert(
                        key,
                        new_conn((ip.src, sport), ip.protocol, flags, now, timeouts),
                    );
                }
            })
        };
        // A first fragment's verdict, whatever it is, binds the later ones.
        if let Some(f) = ip.fragment {
            if f.offset == 0 && f.more {
                self.fragments.insert(
                    (vpcs, ip.src, ip.dst, ip.protocol, f.id),
                    (decision.is_ok(), now + FRAGMENT_TIMEOUT),
                );
            }
        }
        decision.map(|()| forwarded(spec, frame, &info, receiver))
    }
}

/// The policy's verdict on a new connection: `Ok((untracked, some side
/// untracked))` when allowed.
fn decide(
    spec: &PolicySpec,
    sender: Option<&EniSpec>,
    route: &RefRoute,
    fields: &PacketFields,
) -> Result<(bool, bool), DropReason> {
    if let Some(s) = sender {
        let d = policy_ref::decide(spec, &s.id, fields);
        let some_side = d.egress.as_ref().is_some_and(|m| m.untracked)
            || d.ingress.as_ref().is_some_and(|m| m.untracked);
        return match d.denied {
            Some("source not owned") => Err(DropReason::Spoofed),
            Some("no route") => Err(DropReason::NoRoute),
            Some("nacl egress" | "nacl ingress") => Err(DropReason::NaclDenied),
            Some("sg egress") => Err(DropReason::EgressDenied),
            Some("sg ingress") => Err(DropReason::IngressDenied),
            Some(_) => Err(DropReason::UnknownSource),
            None if d.to_router => Err(DropReason::ToRouter),
            None => Ok((d.untracked, some_side)),
        };
    }
    // From the uplink: the receiver's subnet ACL inbound, its groups inbound
    // with an external peer.
    let RefRoute::Eni(to) = route else {
        return Err(DropReason::NoRoute);
    };
    let receiver = eni(spec, to);
    if !policy_ref::nacl_decide(spec, &receiver.subnet, Direction::Ingress, fields).allow {
        return Err(DropReason::NaclDenied);
    }
    let m: RefSgMatch = policy_ref::sg_match(spec, to, Direction::Ingress, fields, None);
    if m.groups == 0 {
        return Err(DropReason::IngressDenied);
    }
    Ok((m.untracked, m.untracked))
}

/// The route back from `receiver` to `sender`.
fn reverse_route(sender: Option<&EniSpec>, receiver: Option<&EniSpec>) -> RefRoute {
    match (sender, receiver) {
        (Some(s), _) => RefRoute::Eni(s.id.clone()),
        (None, Some(_)) => RefRoute::Uplink,
        (None, None) => RefRoute::Unreachable,
    }
}

fn reversed(f: &PacketFields) -> PacketFields {
    PacketFields {
        src: f.dst,
        dst: f.src,
        src_port: f.dst_port,
        dst_port: f.src_port,
        ..*f
    }
}

fn nacls_allow(
    spec: &PolicySpec,
    sender: Option<&EniSpec>,
    receiver: Option<&EniSpec>,
    fields: &PacketFields,
) -> bool {
    let from = sender.map(|e| &e.subnet);
    let to = receiver.map(|e| &e.subnet);
    if from.is_some() && from == to {
        return true;
    }
    from.is_none_or(|s| policy_ref::nacl_decide(spec, s, Direction::Egress, fields).allow)
        && to.is_none_or(|s| policy_ref::nacl_decide(spec, s, Direction::Ingress, fields).allow)
}

fn new_conn(initiator: (IpAddr, u16), protocol: u8, flags: u8, now: u32, t: Timeouts) -> Conn {
    let tcp = if flags & RST != 0 {
        Tcp::Closed
    } else if flags & FIN != 0 {
        Tcp::Closing
    } else if flags & SYN != 0 && flags & ACK == 0 {
        Tcp::SynSent
    } else {
        Tcp::Established
    };
    let mut conn = Conn {
        initiator,
        tcp,
        fin_from_initiator: protocol == 6 && flags & FIN != 0,
        fin_from_responder: false,
        replied: false,
        expires_at: 0,
    };
    conn.expires_at = now + timeout(&conn, protocol, t);
    conn
}

fn timeout(conn: &Conn, protocol: u8, t: Timeouts) -> u32 {
    match protocol {
        6 => match conn.tcp {
            Tcp::SynSent | Tcp::SynReceived => TCP_TRANSITORY,
            Tcp::Established => t.tcp_established,
            Tcp::Closing | Tcp::Closed => TCP_CLOSING,
        },
        17 if conn.replied => t.udp_stream,
        17 => t.udp,
        1 | 58 => ICMP_TIMEOUT,
        _ => OTHER_TIMEOUT,
    }
}

/// One packet of a live connection. `false`: the connection is over and
/// this SYN opens a new one (decide it afresh).
fn on_packet(
    conn: &mut Conn,
    protocol: u8,
    from_initiator: bool,
    flags: u8,
    now: u32,
    t: Timeouts,
) -> bool {
    if protocol != 6 {
        if !from_initiator {
            conn.replied = true;
        }
        conn.expires_at = now + timeout(conn, protocol, t);
        return true;
    }
    if conn.tcp == Tcp::Closed {
        // Over: stragglers pass until the fixed countdown ends; a new SYN
        // is a new connection.
        return !(flags & SYN != 0 && flags & ACK == 0);
    }
    if flags & RST != 0 {
        conn.tcp = Tcp::Closed;
    } else if flags & FIN != 0 {
        if from_initiator {
            conn.fin_from_initiator = true;
        } else {
            conn.fin_from_responder = true;
        }
        conn.tcp = if conn.fin_from_initiator && conn.fin_from_responder {
            Tcp::Closed
        } else {
            Tcp::Closing
        };
    } else if conn.tcp == Tcp::SynSent && !from_initiator && flags & SYN != 0 {
        conn.tcp = Tcp::SynReceived;
    } else if conn.tcp == Tcp::SynReceived && from_initiator && flags & ACK != 0 && flags & SYN == 0
    {
        conn.tcp = Tcp::Established;
    }
    conn.expires_at = now + timeout(conn, protocol, t);
    true
}

fn conn_key(vpcs: ConnKeyVpcs, protocol: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> ConnKey {
    let ends = if a <= b { [a, b] } else { [b, a] };
    ConnKey {
        protocol,
        ends,
        vpcs,
    }
}

fn eni<'a>(spec: &'a PolicySpec, id: &EniId) -> &'a EniSpec {
    spec.enis
        .iter()
        .find(|e| &e.id == id)
        .expect("routed ENI is in the spec")
}

fn vpc_of(spec: &PolicySpec, e: &EniSpec) -> palisade_policy::VpcId {
    spec.subnets
        .iter()
        .find(|s| s.id == e.subnet)
        .expect("ENI's subnet is in the spec")
        .vpc
        .clone()
}

fn vpc_pair(spec: &PolicySpec, a: Option<&EniSpec>, b: Option<&EniSpec>) -> ConnKeyVpcs {
    let a = a.map(|e| vpc_of(spec, e).0);
    let b = b.map(|e| vpc_of(spec, e).0);
    let (a, b) = match (a, b) {
        (Some(a), None) => (Some(a.clone()), Some(a)),
        (None, Some(b)) => (Some(b.clone()), Some(b)),
        (a, b) => (a, b),
    };
    if a <= b { [a, b] } else { [b, a] }
}

fn subnet_contains(spec: &PolicySpec, e: &EniSpec, addr: IpAddr) -> bool {
    spec.subnets.iter().any(|s| {
        s.id == e.subnet
            && match addr {
                IpAddr::V4(a) => s.ipv4_cidr.contains(a),
                IpAddr::V6(a) => s.ipv6_cidr.is_some_and(|c| c.contains(a)),
            }
    })
}

fn timeouts_of(a: Option<&EniSpec>, b: Option<&EniSpec>) -> Timeouts {
    let ends: Vec<&EniSpec> = [a, b].into_iter().flatten().collect();
    if ends.is_empty() {
        return Timeouts {
            tcp_established: 432_000,
            udp_stream: 180,
            udp: 30,
        };
    }
    Timeouts {
        tcp_established: ends
            .iter()
            .map(|e| e.timeouts.tcp_established)
            .min()
            .unwrap_or(0),
        udp_stream: ends
            .iter()
            .map(|e| e.timeouts.udp_stream)
            .min()
            .unwrap_or(0),
        udp: ends.iter().map(|e| e.timeouts.udp).min().unwrap_or(0),
    }
}

/// The frame as it leaves toward `receiver` (or the uplink): new MACs, the
/// receiver's VLAN tag, TTL − 1 with the IPv4 checksum recomputed in full.
fn forwarded(
    spec: &PolicySpec,
    frame: &[u8],
    info: &FrameInfo,
    receiver: Option<&EniSpec>,
) -> (Verdict, Option<Vec<u8>>) {
    let (port, vlan, mac) = match (receiver, &spec.uplink) {
        (Some(e), _) => (e.port, e.vlan, e.mac),
        (None, Some(u)) => (u.port, u.vlan, u.mac),
        (None, None) => return (Verdict::Drop(DropReason::NoRoute), None),
    };
    let l3 = usize::from(info.l3_offset);
    let mut ip_part = frame[l3..].to_vec();
    match info.l3 {
        L3Info::Ipv4(_) => {
            if ip_part[8] <= 1 {
                return (Verdict::Drop(DropReason::TtlExpired), None);
            }
            ip_part[8] -= 1;
            let ihl = usize::from(ip_part[0] & 0x0f) * 4;
            ip_part[10] = 0;
            ip_part[11] = 0;
            let sum = internet_checksum(&ip_part[..ihl]);
            ip_part[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        L3Info::Ipv6(_) => {
            if ip_part[7] <= 1 {
                return (Verdict::Drop(DropReason::TtlExpired), None);
            }
            ip_part[7] -= 1;
        }
        L3Info::Arp(_) => unreachable!("ARP is answered, never forwarded"),
    }
    let ethertype = &frame[l3 - 2..l3];
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&spec.router_mac);
    if let Some(vid) = vlan {
        // Keep the priority bits of an incoming tag.
        let pcp = info
            .vlan
            .map_or(0, |_| u16::from_be_bytes([frame[14], frame[15]]) & 0xf000);
        out.extend_from_slice(&[0x81, 0x00]);
        out.extend_from_slice(&(pcp | (vid & 0x0fff)).to_be_bytes());
    }
    out.extend_from_slice(ethertype);
    out.extend_from_slice(&ip_part);
    (Verdict::Forward { port }, Some(out))
}

fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ARP reply to the request in `frame`, from the router, padded to the
/// Ethernet minimum, written out byte by byte.
fn arp_reply(frame: &[u8], info: &FrameInfo, router_mac: [u8; 6]) -> Vec<u8> {
    let L3Info::Arp(req) = info.l3 else {
        unreachable!("called for ARP only")
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&req.sender_mac.0);
    out.extend_from_slice(&router_mac);
    if info.vlan.is_some() {
        out.extend_from_slice(&frame[12..16]);
    }
    out.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    out.extend_from_slice(&router_mac);
    out.extend_from_slice(&req.target_ip.octets());
    out.extend_from_slice(&req.sender_mac.0);
    out.extend_from_slice(&req.sender_ip.octets());
    out.resize(out.len().max(60), 0);
    out
}
