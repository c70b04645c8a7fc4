//! Step 2: ARP requests and neighbour solicitations, answered from the
//! router MAC for any address of the sender's subnet but its own (proxy
//! ARP). Every packet then goes through the router, even within a subnet,
//! so security groups always apply. Other link-local ICMPv6 (router
//! discovery, MLD) is dropped, never routed.

use core::net::IpAddr;

use palisade_policy::PolicySnapshot;
use palisade_wire::arp::{ArpOperation, ArpRepr};
use palisade_wire::{FrameInfo, MacAddr, build_arp_reply, build_neighbor_advertisement};

use super::Endpoint;
use crate::buffer::PacketBuf;
use crate::verdict::DropReason;

/// ICMPv6 types that stay on the link (MLD, router and neighbour
/// discovery): never routed.
const ICMPV6_LINK_LOCAL_TYPES: core::ops::RangeInclusive<u8> = 130..=137;
const ICMPV6_MLDV2_REPORT: u8 = 143;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;

/// Whether an ICMPv6 message of type `ty` stays on the link: answered or
/// dropped here, never routed.
#[inline(always)]
pub(super) fn stays_on_link(ty: u8) -> bool {
    ICMPV6_LINK_LOCAL_TYPES.contains(&ty) || ty == ICMPV6_MLDV2_REPORT
}

/// Answers an ARP request for an address of the sender's subnet (proxy ARP).
pub(super) fn answer_arp<P: PacketBuf>(
    pkt: &mut P,
    info: &FrameInfo,
    arp: &ArpRepr,
    src: Option<Endpoint>,
    snapshot: &PolicySnapshot,
) -> Result<(), DropReason> {
    let Some(Endpoint::Eni(eni)) = src else {
        return Err(DropReason::NeighborDiscoveryIgnored);
    };
    let e = snapshot.eni(eni);
    let target = IpAddr::V4(arp.target_ip);
    if arp.operation != ArpOperation::Request
        || !snapshot.subnet(e.subnet).contains(target)
        || e.owns_ip(target)
    {
        return Err(DropReason::NeighborDiscoveryIgnored);
    }
    let mut reply = [0u8; 128];
    let len = build_arp_reply(arp, info.vlan, MacAddr(snapshot.router_mac()), &mut reply)
        .map_err(|_| DropReason::Malformed)?;
    write_reply(pkt, &reply[..len])
}

/// Answers a neighbour solicitation for an address of the sender's subnet;
/// every other link-local ICMPv6 message is ignored.
pub(super) fn answer_neighbor_solicitation<P: PacketBuf>(
    pkt: &mut P,
    info: &FrameInfo,
    ty: u8,
    target: Option<core::net::Ipv6Addr>,
    src: Option<Endpoint>,
    snapshot: &PolicySnapshot,
) -> Result<(), DropReason> {
    let (Some(Endpoint::Eni(eni)), ICMPV6_NEIGHBOR_SOLICIT, Some(target)) = (src, ty, target)
    else {
        return Err(DropReason::NeighborDiscoveryIgnored);
    };
    let e = snapshot.eni(eni);
    let target = IpAddr::V6(target);
    if !snapshot.subnet(e.subnet).contains(target) || e.owns_ip(target) {
        return Err(DropReason::NeighborDiscoveryIgnored);
    }
    let mut reply = [0u8; 128];
    let len = build_neighbor_advertisement(info, MacAddr(snapshot.router_mac()), &mut reply)
        .map_err(|_| DropReason::Malformed)?;
    write_reply(pkt, &reply[..len])
}

/// Replaces the frame with `reply`.
fn write_reply<P: PacketBuf>(pkt: &mut P, reply: &[u8]) -> Result<(), DropReason> {
    if !pkt.set_len(reply.len()) {
        return Err(DropReason::NoHeadroom);
    }
    pkt.data_mut().copy_from_slice(reply);
    Ok(())
}
