//! Steps 3 and 4: who sent a packet, whether it may send from its source
//! address, where it goes, and the scope of its flow.
//!
//! One routing function, [`route`], and one source check,
//! [`may_send_from`], for every packet that is routed: the full path's
//! (from [`super::stage::prepare`]) and a plain frame's the established
//! lane declined ([`route_plain`]). Both read the ENIs' packed
//! [`EniPath`] records, one cache line per ENI; the full record and its
//! address list only for an ENI whose first IPv4 address is not the
//! packet's source, or for IPv6.

use core::net::IpAddr;

use palisade_policy::{EniIdx, EniPath, PacketFields, PolicySnapshot, Route, VpcIdx};
use palisade_wire::PlainIpv4;

use super::{Endpoint, Pending, PendingKind};
use crate::verdict::DropReason;

/// Where a packet goes and the flow scope it belongs to.
pub(super) struct Routed {
    pub(super) src: Endpoint,
    pub(super) dst: Endpoint,
    pub(super) route: Route,
    /// The flow key's scope: the pair of VPCs the flow joins.
    pub(super) scope: u32,
}

/// The ENI (or the uplink) a frame comes from.
#[inline(always)]
pub(super) fn source_endpoint(
    snapshot: &PolicySnapshot,
    port: u16,
    vlan: Option<u16>,
    mac: [u8; 6],
) -> Option<Endpoint> {
    if let Some(eni) = snapshot.eni_by_l2(port, vlan, mac) {
        return Some(Endpoint::Eni(eni));
    }
    snapshot
        .uplink()
        .filter(|u| u.port == port && u.vlan == vlan && u.mac == mac)
        .map(|_| Endpoint::Uplink)
}

/// Steps 3–4 for an IP packet from `src` (as [`source_endpoint`] found
/// it): the source check, the route to the receiver, and the flow's
/// scope.
#[inline(always)]
pub(super) fn route(
    snapshot: &PolicySnapshot,
    src: Option<Endpoint>,
    ip_src: IpAddr,
    ip_dst: IpAddr,
) -> Result<Routed, DropReason> {
    let src = src.ok_or(DropReason::UnknownSource)?;
    let (route, src_vpc) = match src {
        Endpoint::Eni(eni) => {
            let path = snapshot.eni_path(eni).ok_or(DropReason::UnknownSource)?;
            if !may_send_from(snapshot, eni, path, ip_src) {
                return Err(DropReason::Spoofed);
            }
            (snapshot.route(path.vpc, ip_dst), Some(path.vpc))
        }
        Endpoint::Uplink => (snapshot.route_from_uplink(ip_dst), None),
    };
    let (dst, dst_vpc) = match route {
        Route::Eni(e) => (
            Endpoint::Eni(e),
            Some(snapshot.eni_path(e).ok_or(DropReason::NoRoute)?.vpc),
        ),
        Route::Uplink => (Endpoint::Uplink, None),
        Route::Gateway(_) => return Err(DropReason::ToRouter),
        Route::Unreachable => return Err(DropReason::NoRoute),
    };
    Ok(Routed {
        src,
        dst,
        route,
        scope: scope_of(src_vpc, dst_vpc)?,
    })
}

/// The source/destination check: whether ENI `eni` (whose record is
/// `path`) may send from `ip_src`, i.e. the check is off or the address
/// is its own. The uplink is not checked: it stands for the world.
#[inline(always)]
fn may_send_from(snapshot: &PolicySnapshot, eni: EniIdx, path: &EniPath, ip_src: IpAddr) -> bool {
    match ip_src {
        // Nearly every IPv4 packet is sent from the ENI's first address,
        // which the packed record holds.
        IpAddr::V4(v4) => path.may_send_from_v4(u32::from(v4), || snapshot.get_eni(eni)),
        IpAddr::V6(_) => snapshot
            .get_eni(eni)
            .is_some_and(|e| !e.source_dest_check || e.owns_ip(ip_src)),
    }
}

/// The flow's scope must be the same seen from both ends: the pair of
/// VPCs it joins (one VPC twice within a VPC or to the uplink).
#[inline(always)]
fn scope_of(src: Option<VpcIdx>, dst: Option<VpcIdx>) -> Result<u32, DropReason> {
    match (src, dst) {
        (Some(a), Some(b)) => Ok(flow_scope(a.index(), b.index())),
        (Some(v), None) | (None, Some(v)) => Ok(flow_scope(v.index(), v.index())),
        (None, None) => Err(DropReason::NoRoute),
    }
}

/// The flow-key scope of a flow between two VPCs (the same one twice for a
/// flow inside a VPC): both ends compute the same value. Indices past
/// 65,535 share scopes, which only matters for overlapping address blocks.
fn flow_scope(a: usize, b: usize) -> u32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (lo as u32 & 0xffff) | ((hi as u32 & 0xffff) << 16)
}

/// Steps 3–4 for a plain IPv4 frame the established lane did not forward,
/// from what the first pass staged and the compact [`PlainIpv4`] (read
/// again, not kept: keeping it would cost every established packet the
/// stores). The frame's destination MAC was checked when it was staged.
/// Returns the record [`super::stage::prepare`] would have built.
#[inline(always)]
pub(super) fn route_plain(
    staged: &Pending,
    plain: &PlainIpv4,
    snapshot: &PolicySnapshot,
) -> Result<Pending, DropReason> {
    let src = source_endpoint(snapshot, staged.port, plain.vlan, plain.src_mac);
    let (ip_src, ip_dst) = (IpAddr::from(plain.src), IpAddr::from(plain.dst));
    let Routed {
        src,
        dst,
        route,
        scope,
    } = route(snapshot, src, ip_src, ip_dst)?;
    Ok(Pending {
        slot: staged.slot,
        kind: PendingKind::Flow,
        // The staged key, hash and side with the scope now known: the
        // scope is not hashed.
        side: staged.side,
        key: staged.key.with_vpc(scope),
        hash: staged.hash,
        // Zero for UDP, as `TcpFlags::NONE`.
        tcp_flags: palisade_flow::TcpFlags(plain.tcp_flags),
        l3_offset: u16::from(plain.l3_offset),
        ipv6: false,
        vlan: plain.vlan,
        fragment: None,
        src,
        dst,
        route,
        fields: PacketFields::l4(
            ip_src,
            ip_dst,
            plain.protocol,
            plain.src_port,
            plain.dst_port,
        ),
        src_mac: plain.src_mac,
        port: staged.port,
    })
}
