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
    let ipv6 = match info.l3 {
        L3Info::Ipv4(_) => false,
        L3Info::Ipv6(_) => true,
        L3Info::Arp(_) => return Err(EditError::NotIp),
    };
    decrement_ip_ttl(frame, usize::from(info.l3_offset), ipv6)
}

/// [`decrement_ttl`] for a caller that kept only the IP header's offset and
/// version of the `FrameInfo` (the data plane's per-packet state is smaller
/// without the whole summary).
#[inline]
pub fn decrement_ip_ttl(frame: &mut [u8], l3_offset: usize, ipv6: bool) -> Result<(), EditError> {
    let l3 = l3_offset;
    if ipv6 {
        let hop_limit = frame
            .get_mut(l3 + ipv6::HOP_LIMIT_OFFSET)
            .ok_or(EditError::FrameTooShort)?;
        if *hop_limit <= 1 {
            return Err(EditError::TtlExpired);
        }
        *hop_limit -= 1;
        return Ok(());
    }
    let header = frame
        .get_mut(l3..l3 + ipv4::MIN_HEADER_LEN)
        .ok_or(EditError::FrameTooShort)?;
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

/// Writes the ARP reply to `request` into `out`, from `our_mac`, on `vlan`;
/// returns the frame length (padded to [`MIN_FRAME_LEN`]). Whether the
/// request is for an address the router owns is the caller's decision.
pub fn build_arp_reply(
    request: &ArpRepr,
    vlan: Option<u16>,
    our_mac: MacAddr,
    out: &mut [u8],
) -> Result<usize, EditError> {
    let eth = EthernetRepr {
        dst: request.sender_mac,
        src: our_mac,
        vlan,
        ethertype: ethertype::ARP,
    };
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
    reply
        .emit(&mut out[at..])
        .map_err(|_| EditError::BufferTooSmall)?;
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
    let L4Info::Icmpv6 {
        ty: icmpv6::message::NEIGHBOR_SOLICIT,
        nd_target: Some(target),
        ..
    } = ip.l4
    else {
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
        flags: NdFlags {
            router: true,
            solicited,
            override_: true,
        },
        target,
        target_lladdr: Some(router_mac),
    };
    let eth = EthernetRepr {
        dst: dst_mac,
        src: router_mac,
        vlan: solicitation.vlan,
        ethertype: ethertype::IPV6,
    };
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
    at += header
        .emit(&mut out[at..])
        .map_err(|_| EditError::BufferTooSmall)?;
    advert
        .emit(target, dst_ip, &[], &mut out[at..])
        .map_err(|_| EditError::BufferTooSmall)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{IpRepr, Ipv6Extensions, PacketBuilder, TransportRepr};
    use crate::frame::parse_frame;
    use crate::icmpv6::Packet as Icmpv6Packet;
    use crate::ipv4::Ipv4Repr;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 5]);
    const ROUTER: MacAddr = MacAddr([2, 0xaa, 0, 0, 0, 1]);

    fn arp_request_frame(vlan: Option<u16>) -> Vec<u8> {
        let eth = EthernetRepr {
            dst: MacAddr::BROADCAST,
            src: HOST,
            vlan,
            ethertype: ethertype::ARP,
        };
        let request = ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: HOST,
            sender_ip: Ipv4Addr::new(10, 0, 0, 5),
            target_mac: MacAddr([0; 6]),
            target_ip: Ipv4Addr::new(10, 0, 0, 1),
        };
        let mut frame = vec![0u8; eth.header_len() + arp::PACKET_LEN];
        let at = eth.emit(&mut frame).unwrap();
        request.emit(&mut frame[at..]).unwrap();
        frame
    }

    #[test]
    fn arp_reply_answers_the_request() {
        for vlan in [None, Some(42)] {
            let info = parse_frame(&arp_request_frame(vlan)).unwrap();
            let L3Info::Arp(request) = info.l3 else {
                panic!("not ARP")
            };
            let mut out = [0xeeu8; 80];
            let len = build_arp_reply(&request, info.vlan, ROUTER, &mut out).unwrap();
            assert_eq!(len, MIN_FRAME_LEN);
            let reply = parse_frame(&out[..len]).unwrap();
            assert_eq!(
                (reply.dst_mac, reply.src_mac, reply.vlan),
                (HOST, ROUTER, vlan)
            );
            assert_eq!(
                reply.l3,
                L3Info::Arp(ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: ROUTER,
                    sender_ip: Ipv4Addr::new(10, 0, 0, 1),
                    target_mac: HOST,
                    target_ip: Ipv4Addr::new(10, 0, 0, 5),
                })
            );
            let end = usize::from(reply.l4_offset);
            assert!(out[end..len].iter().all(|&b| b == 0), "padding is zero");
            assert_eq!(
                build_arp_reply(&request, vlan, ROUTER, &mut out[..59]),
                Err(EditError::BufferTooSmall)
            );
        }
    }

    fn solicitation_frame(src: Ipv6Addr, vlan: Option<u16>) -> Vec<u8> {
        let target = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let builder = PacketBuilder {
            ethernet: EthernetRepr {
                dst: MacAddr([0x33, 0x33, 0xff, 0, 0, 1]),
                src: HOST,
                vlan,
                ethertype: 0,
            },
            ip: IpRepr::Ipv6(Ipv6Repr {
                src,
                dst: "ff02::1:ff00:1".parse().unwrap(),
                next_header: 0,
                payload_len: 0,
                hop_limit: 255,
                traffic_class: 0,
                flow_label: 0,
            }),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: TransportRepr::Icmpv6(Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr: (!src.is_unspecified()).then_some(HOST),
            }),
        };
        let mut frame = vec![0u8; builder.frame_len(0)];
        builder.emit(&[], &mut frame).unwrap();
        frame
    }

    fn parse_advert(frame: &[u8]) -> (FrameInfo, Ipv6Addr, Ipv6Addr, Icmpv6Repr) {
        let info = parse_frame(frame).unwrap();
        let l3 = usize::from(info.l3_offset);
        let ip = crate::ipv6::Packet::new_checked(&frame[l3..]).unwrap();
        let message = Icmpv6Packet::new_checked(&frame[usize::from(info.l4_offset)..]).unwrap();
        assert!(
            message.verify_checksum(ip.src_addr(), ip.dst_addr()),
            "ICMPv6 checksum"
        );
        assert_eq!(ip.hop_limit(), 255);
        (
            info,
            ip.src_addr(),
            ip.dst_addr(),
            Icmpv6Repr::parse(&message).unwrap(),
        )
    }

    #[test]
    fn neighbor_advertisement_answers_the_solicitation() {
        let solicitor: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let info = parse_frame(&solicitation_frame(solicitor, Some(9))).unwrap();
        let mut out = [0u8; 128];
        let len = build_neighbor_advertisement(&info, ROUTER, &mut out).unwrap();
        assert_eq!(len, 18 + 40 + 32);
        let (advert_info, src, dst, repr) = parse_advert(&out[..len]);
        assert_eq!(
            (advert_info.dst_mac, advert_info.src_mac, advert_info.vlan),
            (HOST, ROUTER, Some(9))
        );
        assert_eq!((src, dst), (target, solicitor));
        assert_eq!(
            repr,
            Icmpv6Repr::NeighborAdvert {
                flags: NdFlags {
                    router: true,
                    solicited: true,
                    override_: true
                },
                target,
                target_lladdr: Some(ROUTER),
            }
        );
        assert_eq!(
            build_neighbor_advertisement(&info, ROUTER, &mut out[..len - 1]),
            Err(EditError::BufferTooSmall)
        );
    }

    #[test]
    fn duplicate_address_detection_is_answered_to_all_nodes() {
        let info = parse_frame(&solicitation_frame(Ipv6Addr::UNSPECIFIED, None)).unwrap();
        let mut out = [0u8; 128];
        let len = build_neighbor_advertisement(&info, ROUTER, &mut out).unwrap();
        let (advert_info, _, dst, repr) = parse_advert(&out[..len]);
        assert_eq!(dst, ALL_NODES);
        assert_eq!(advert_info.dst_mac, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
        let Icmpv6Repr::NeighborAdvert { flags, .. } = repr else {
            panic!("not an advert")
        };
        assert!(!flags.solicited && flags.router && flags.override_);
    }

    #[test]
    fn only_solicitations_are_answered() {
        let info = parse_frame(&arp_request_frame(None)).unwrap();
        let mut out = [0u8; 128];
        assert_eq!(
            build_neighbor_advertisement(&info, ROUTER, &mut out),
            Err(EditError::NotNeighborSolicitation)
        );
        assert_eq!(
            decrement_ttl(&mut arp_request_frame(None), &info),
            Err(EditError::NotIp)
        );
    }

    fn ipv4_frame(ttl: u8) -> Vec<u8> {
        let builder = PacketBuilder {
            ethernet: EthernetRepr {
                dst: ROUTER,
                src: HOST,
                vlan: None,
                ethertype: 0,
            },
            ip: IpRepr::Ipv4(Ipv4Repr {
                src: Ipv4Addr::new(10, 0, 0, 5),
                dst: Ipv4Addr::new(10, 0, 1, 5),
                protocol: 0,
                payload_len: 0,
                ttl,
                dscp_ecn: 0,
                ident: 1,
                dont_fragment: true,
                more_fragments: false,
                fragment_offset: 0,
            }),
            ipv6_extensions: Ipv6Extensions::default(),
            transport: TransportRepr::Udp {
                src_port: 1,
                dst_port: 2,
            },
        };
        let mut frame = vec![0u8; builder.frame_len(4)];
        builder.emit(b"data", &mut frame).unwrap();
        frame
    }

    #[test]
    fn ttl_decrement_and_expiry() {
        let mut frame = ipv4_frame(64);
        let info = parse_frame(&frame).unwrap();
        decrement_ttl(&mut frame, &info).unwrap();
        rewrite_macs(&mut frame, HOST, ROUTER).unwrap();
        let after = parse_frame(&frame).unwrap(); // verifies the IPv4 checksum
        let L3Info::Ipv4(ip) = after.l3 else {
            panic!("not IPv4")
        };
        assert_eq!(ip.ttl, 63);
        assert_eq!((after.dst_mac, after.src_mac), (HOST, ROUTER));
        for ttl in [0, 1] {
            let mut frame = ipv4_frame(ttl);
            let before = frame.clone();
            let info = parse_frame(&frame).unwrap();
            assert_eq!(decrement_ttl(&mut frame, &info), Err(EditError::TtlExpired));
            assert_eq!(frame, before, "an expired packet is left untouched");
        }
        let mut short = ipv4_frame(64);
        let info = parse_frame(&short).unwrap();
        assert_eq!(
            decrement_ttl(&mut short[..30], &info),
            Err(EditError::FrameTooShort)
        );
        assert_eq!(
            rewrite_macs(&mut short[..11], HOST, ROUTER),
            Err(EditError::FrameTooShort)
        );
    }

    #[test]
    fn hop_limit_decrement_and_expiry() {
        let mut frame = solicitation_frame("2001:db8::5".parse().unwrap(), None);
        let info = parse_frame(&frame).unwrap();
        decrement_ttl(&mut frame, &info).unwrap();
        let L3Info::Ipv6(ip) = parse_frame(&frame).unwrap().l3 else {
            panic!("not IPv6")
        };
        assert_eq!(ip.ttl, 254);
        frame[14 + 7] = 1;
        assert_eq!(decrement_ttl(&mut frame, &info), Err(EditError::TtlExpired));
        assert_eq!(frame[14 + 7], 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// RFC 1624 incremental update against a full recompute, over random
        /// IPv4 headers with random options and fields.
        #[test]
        fn incremental_ttl_checksum_matches_full_recompute(
            mut header in proptest::collection::vec(any::<u8>(), 60),
            option_words in 0usize..=10,
            ttl in 2u8..=255,
        ) {
            let header_len = 20 + option_words * 4;
            header.truncate(header_len);
            header[0] = 0x40 | (header_len / 4) as u8;
            header[2..4].copy_from_slice(&(header_len as u16).to_be_bytes());
            header[6] &= 0x40; // DF may be set; MF clear
            header[7] = 0; // fragment offset 0: not a fragment
            header[8] = ttl;
            // An upper-layer protocol the parser does not look into: the header
            // carries no payload, so TCP, UDP or ICMP here would be (rightly)
            // refused as truncated.
            header[9] = 253;
            let mut frame = vec![0u8; 14];
            frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            frame.extend_from_slice(&header);
            crate::ipv4::Packet::new_checked(&mut frame[14..]).unwrap().fill_checksum();
            let info = parse_frame(&frame).unwrap();
            decrement_ttl(&mut frame, &info).unwrap();
            let incremental = u16::from_be_bytes([frame[24], frame[25]]);
            let mut recomputed = frame.clone();
            crate::ipv4::Packet::new_checked(&mut recomputed[14..]).unwrap().fill_checksum();
            prop_assert_eq!(frame[22], ttl - 1);
            prop_assert_eq!(incremental, u16::from_be_bytes([recomputed[24], recomputed[25]]));
        }
    }
}
