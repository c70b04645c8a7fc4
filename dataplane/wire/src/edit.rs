//! In-place edits for forwarding (step 8 of the packet path) and the two
//! answers the router makes itself (step 4): ARP replies and neighbour
//! advertisements for subnet gateway addresses.
//!
//! Edits take the [`FrameInfo`] that [`crate::parse_frame`] returned for the
//! same bytes, so they know their offsets without parsing again; they still
//! bounds-check, so a mismatched pair is an error, never a panic.

use core::net::{IpAddr, Ipv6Addr};

use crate::arp::{self, ArpOperation, ArpRepr};
use crate::checksum;
use crate::ethernet::{EthernetRepr, MacAddr, ethertype};
use crate::frame::{FrameInfo, L3Info, L4Info};
use crate::icmpv6::{self, Icmpv6Repr, NdFlags};
use crate::ipv4;
use crate::ipv6::{self, Ipv6Repr};

/// Why an edit or a reply could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EditError {
    /// TTL or hop limit would reach zero: drop (and perhaps send time exceeded).
    #[error("TTL or hop limit expired")]
    TtlExpired,
    /// The frame is not an IP packet (ARP has no TTL).
    #[error("not an IP packet")]
    NotIp,
    /// The frame is shorter than the offsets in its `FrameInfo` say.
    #[error("frame shorter than its FrameInfo")]
    FrameTooShort,
    /// The frame to answer is not an IPv6 neighbour solicitation.
    #[error("not a neighbour solicitation")]
    NotNeighborSolicitation,
    /// The output buffer is too small for the reply.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Minimum Ethernet frame length without the FCS: replies are padded to it
/// because not every port pads short frames itself.
pub const MIN_FRAME_LEN: usize = 60;

/// Writes the destination and source MAC addresses.
#[inline]
pub fn rewrite_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) -> Result<(), EditError> {
    let macs = frame.get_mut(..12).ok_or(EditError::FrameTooShort)?;
    macs[..6].copy_from_slice(&dst.0);
    macs[6..].copy_from_slice(&src.0);
    Ok(())
}

/// Decrements the IPv4 TTL (patching the header checksum incrementally, RFC
/// 1624) or the IPv6 hop limit. A packet that arrives with TTL 0 or 1 must
/// not be forwarded: it is left untouched and `TtlExpired` is returned.
#[inline]
pub fn decrement_ttl(frame: &mut [u8], info: &FrameInfo) -> Result<(), EditError> {
    let l3 = usize::from(info.l3_offset);
    match info.l3 {
        L3Info::Ipv4(_) => {
            let header = frame.get_mut(l3..l3 + ipv4::MIN_HEADER_LEN).ok_or(EditError::FrameTooShort)?;
            let ttl = header[ipv4::TTL_OFFSET];
            if ttl <= 1 {
                return Err(EditError::TtlExpired);
            }
            // TTL shares its 16-bit word with the protocol byte.
            let protocol = header[ipv4::TTL_OFFSET + 1];
            let old_word = u16::from_be_bytes([ttl, protocol]);
            let new_word = u16::from_be_bytes([ttl - 1, protocol]);
            let c = ipv4::CHECKSUM_OFFSET;
            let old_checksum = u16::from_be_bytes([header[c], header[c + 1]]);
            let new_checksum = checksum::update_word(old_checksum, old_word, new_word);
            header[ipv4::TTL_OFFSET] = ttl - 1;
            header[c..c + 2].copy_from_slice(&new_checksum.to_be_bytes());
            Ok(())
        }
        L3Info::Ipv6(_) => {
            let hop_limit = frame.get_mut(l3 + ipv6::HOP_LIMIT_OFFSET).ok_or(EditError::FrameTooShort)?;
            if *hop_limit <= 1 {
                return Err(EditError::TtlExpired);
            }
            *hop_limit -= 1;
            Ok(())
        }
        L3Info::Arp(_) => Err(EditError::NotIp),
    }
}

/// Writes the ARP reply to `request` into `out`, from `our_mac`, on `vlan`;
/// returns the frame length (padded to [`MIN_FRAME_LEN`]). Whether the
/// request is for an address the router owns is the caller's decision.
pub fn build_arp_reply(
    request: &ArpRepr,
    vlan: Option<u16>,
    our_mac: MacAddr,
    out: &mut [u8],
) -> Result<usize, EditError> {
    let eth = EthernetRepr { dst: request.sender_mac, src: our_mac, vlan, ethertype: ethertype::ARP };
    let len = (eth.header_len() + arp::PACKET_LEN).max(MIN_FRAME_LEN);
    let out = out.get_mut(..len).ok_or(EditError::BufferTooSmall)?;
    out.fill(0);
    let at = eth.emit(out).map_err(|_| EditError::BufferTooSmall)?;
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: our_mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    reply.emit(&mut out[at..]).map_err(|_| EditError::BufferTooSmall)?;
    Ok(len)
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Writes the neighbour advertisement answering the solicitation described by
/// `solicitation` into `out`, advertising `router_mac` for the solicited
/// target with the router, solicited and override flags (RFC 4861 §7.2.4);
/// returns the frame length. A solicitation from the unspecified address
/// (duplicate-address detection) is answered to all-nodes, unsolicited.
/// Whether the target is an address the router owns is the caller's decision.
pub fn build_neighbor_advertisement(
    solicitation: &FrameInfo,
    router_mac: MacAddr,
    out: &mut [u8],
) -> Result<usize, EditError> {
    let L3Info::Ipv6(ip) = solicitation.l3 else {
        return Err(EditError::NotNeighborSolicitation);
    };
    let L4Info::Icmpv6 { ty: icmpv6::message::NEIGHBOR_SOLICIT, nd_target: Some(target), .. } = ip.l4 else {
        return Err(EditError::NotNeighborSolicitation);
    };
    let IpAddr::V6(solicitor) = ip.src else {
        return Err(EditError::NotNeighborSolicitation);
    };
    let (dst_ip, dst_mac, solicited) = if solicitor.is_unspecified() {
        (ALL_NODES, MacAddr::ipv6_multicast(ALL_NODES), false)
    } else {
        (solicitor, solicitation.src_mac, true)
    };
    let advert = Icmpv6Repr::NeighborAdvert {
        flags: NdFlags { router: true, solicited, override_: true },
        target,
        target_lladdr: Some(router_mac),
    };
    let eth = EthernetRepr { dst: dst_mac, src: router_mac, vlan: solicitation.vlan, ethertype: ethertype::IPV6 };
    let message_len = advert.message_len(0);
    let len = eth.header_len() + ipv6::HEADER_LEN + message_len;
    let out = out.get_mut(..len).ok_or(EditError::BufferTooSmall)?;
    let mut at = eth.emit(out).map_err(|_| EditError::BufferTooSmall)?;
    let header = Ipv6Repr {
        src: target,
        dst: dst_ip,
        next_header: icmpv6::PROTOCOL,
        payload_len: message_len,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    };
    at += header.emit(&mut out[at..]).map_err(|_| EditError::BufferTooSmall)?;
    advert.emit(target, dst_ip, &[], &mut out[at..]).map_err(|_| EditError::BufferTooSmall)?;
    Ok(len)
}
