//! The first pass: parse a frame, answer it or route it, build its flow
//! key and hash, and start its table lines loading.
//!
//! Nothing here reads the flow table: the point of the pass is to have
//! every packet's lines on their way before the second pass needs them.

use palisade_flow::{FlowKey, FlowLines, FragmentTable, Prefetch, TcpFlags};
use palisade_policy::{PacketFields, PolicySnapshot};
use palisade_wire::{L3Info, L4Info, PlainIpv4, parse_frame_layered};

use super::route::{Routed, route, source_endpoint};
use super::{Pending, PendingKind, Prepared, neighbor, related};
use crate::buffer::PacketBuf;
use crate::denied::DeniedFlows;
use crate::verdict::DropReason;

/// First pass for a plain IPv4 TCP or UDP frame: only what finding its
/// flow needs (the key without its scope, and the hash), so that the
/// table lines start loading; the second pass tries the established lane
/// (`Worker::established_plain`) and routes the frame in full only if the
/// lane declines.
#[inline(always)]
pub(super) fn stage_plain_ipv4(
    slot: usize,
    port: u16,
    plain: &PlainIpv4,
    snapshot: &PolicySnapshot,
    out: &mut Pending,
) -> Result<Prepared, DropReason> {
    // The full path's first verdict on a frame that is not for us, given
    // here once for both lanes.
    if plain.dst_mac != snapshot.router_mac() {
        return Err(DropReason::NotForRouter);
    }
    let (key, side, hash) = FlowKey::new_v4_hashed(
        0,
        plain.src,
        plain.dst,
        plain.protocol,
        plain.src_port,
        plain.dst_port,
    );
    // Field by field: the rest of the record is the full path's to fill.
    out.slot = slot;
    out.kind = PendingKind::Plain;
    out.side = side;
    out.tcp_flags = TcpFlags(plain.tcp_flags);
    out.l3_offset = u16::from(plain.l3_offset);
    out.ipv6 = false;
    out.vlan = plain.vlan;
    out.key = key;
    out.hash = hash;
    out.src_mac = plain.src_mac;
    out.port = port;
    Ok(Prepared::Pending)
}

/// First pass for every frame the plain reader declined (ARP, IPv6, ICMP,
/// fragments, options…): parse, answer neighbour discovery, find the
/// endpoints and the route, build the flow key into `out`.
#[inline(always)]
pub(super) fn prepare<P: PacketBuf>(
    slot: usize,
    pkt: &mut P,
    snapshot: &PolicySnapshot,
    out: &mut Pending,
) -> Result<Prepared, DropReason> {
    let info = parse_frame_layered(pkt.data()).map_err(DropReason::from)?;
    let port = pkt.ingress_port();
    let src = source_endpoint(snapshot, port, info.vlan, info.src_mac.0);
    let (ip, ipv6) = match info.l3 {
        L3Info::Arp(arp) => {
            neighbor::answer_arp(pkt, &info, &arp, src, snapshot)?;
            return Ok(Prepared::Answered);
        }
        L3Info::Ipv4(ip) => (ip, false),
        L3Info::Ipv6(ip) => (ip, true),
    };
    if let L4Info::Icmpv6 { ty, nd_target, .. } = ip.l4 {
        if neighbor::stays_on_link(ty) {
            neighbor::answer_neighbor_solicitation(pkt, &info, ty, nd_target, src, snapshot)?;
            return Ok(Prepared::Answered);
        }
    }
    if info.dst_mac.0 != snapshot.router_mac() {
        return Err(DropReason::NotForRouter);
    }
    let Routed {
        src,
        dst,
        route,
        scope: vpc,
    } = route(snapshot, src, ip.src, ip.dst)?;

    let mut tcp_flags = TcpFlags::NONE;
    let (kind, fields, (key_src, key_dst, key_protocol, sport, dport)) = match ip.l4 {
        L4Info::Tcp {
            src_port,
            dst_port,
            flags,
        } => {
            tcp_flags = TcpFlags(flags);
            (
                PendingKind::Flow,
                PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
                (ip.src, ip.dst, ip.protocol, src_port, dst_port),
            )
        }
        L4Info::Udp { src_port, dst_port } => (
            PendingKind::Flow,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, src_port, dst_port),
            (ip.src, ip.dst, ip.protocol, src_port, dst_port),
        ),
        L4Info::Icmp { ty, code, echo_id }
        | L4Info::Icmpv6 {
            ty, code, echo_id, ..
        } => {
            let id = echo_id.unwrap_or(0);
            (
                PendingKind::Flow,
                PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code),
                (ip.src, ip.dst, ip.protocol, id, id),
            )
        }
        L4Info::IcmpError { ty, code, quoted } => {
            // The error travels back to the sender of the quoted packet.
            if quoted.src != ip.dst {
                return Err(DropReason::IcmpErrorUnrelated);
            }
            (
                PendingKind::IcmpError,
                PacketFields::icmp(ip.src, ip.dst, ip.protocol, ty, code),
                (
                    quoted.src,
                    quoted.dst,
                    quoted.protocol,
                    quoted.src_port,
                    quoted.dst_port,
                ),
            )
        }
        L4Info::Other => (
            PendingKind::Flow,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0),
            (ip.src, ip.dst, ip.protocol, 0, 0),
        ),
        L4Info::NotFirstFragment => (
            PendingKind::LaterFragment,
            PacketFields::l4(ip.src, ip.dst, ip.protocol, 0, 0),
            (ip.src, ip.dst, ip.protocol, 0, 0),
        ),
    };
    let (key, side) = FlowKey::new(vpc, key_src, key_dst, key_protocol, sport, dport)
        .map_err(|_| DropReason::Malformed)?;
    let hash = if kind == PendingKind::LaterFragment {
        // A later fragment is looked up in the fragment table.
        related::fragment_key(vpc, &fields, ip.fragment)?.0
    } else {
        key.hash()
    };
    *out = Pending {
        slot,
        kind,
        side,
        tcp_flags,
        l3_offset: info.l3_offset,
        ipv6,
        vlan: info.vlan,
        fragment: ip.fragment,
        src,
        dst,
        route,
        fields,
        key,
        hash,
        // Read for `PendingKind::Plain` only.
        ..*out
    };
    Ok(Prepared::Pending)
}

/// Starts loading the table lines `p`'s lookup will read.
#[inline(always)]
pub(super) fn prefetch(
    flows: &FlowLines<'_>,
    fragments: &FragmentTable,
    prefetcher: &impl Prefetch,
    p: &Pending,
) {
    match p.kind {
        PendingKind::LaterFragment => fragments.prefetch(p.hash, prefetcher),
        PendingKind::Plain | PendingKind::Flow | PendingKind::IcmpError => {
            flows.prefetch(p.hash, prefetcher);
        }
    }
}

/// Starts loading the flow entries the bucket tags of `block`'s packets
/// point at (see [`FlowLines::prefetch_tagged`]), or, for a packet whose
/// key the tags say no flow has, its slot in the denied-flow memory: a
/// denied flood's packets then find their denial in cache as established
/// packets find their flow, for a branch an established packet hardly
/// notices.
#[inline(always)]
pub(super) fn prefetch_tagged(
    flows: &FlowLines<'_>,
    denied: &DeniedFlows,
    prefetcher: &impl Prefetch,
    block: &[Pending],
) {
    for p in block {
        if p.kind != PendingKind::LaterFragment && flows.prefetch_tagged(p.hash, prefetcher) {
            denied.prefetch(p.hash, prefetcher);
        }
    }
}
