//! `parse_frame` over arbitrary bytes; on success, every view, Repr, verify
//! function and edit reachable from the result runs too. Any panic is a bug:
//! the data plane feeds untrusted frames straight into these functions.

#![no_main]

use core::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use palisade_wire::{
    L3Info, L4Info, MacAddr, arp, build_arp_reply, build_neighbor_advertisement, decrement_ttl,
    ethernet, icmpv4, icmpv6, ipv4, ipv6, parse_frame, rewrite_macs, tcp, udp,
};

fuzz_target!(|data: &[u8]| {
    // The views on their own, from every starting layer.
    if let Ok(frame) = ethernet::Frame::new_checked(data) {
        let _ = ethernet::EthernetRepr::parse(&frame);
    }
    if let Ok(packet) = arp::Packet::new_checked(data) {
        let _ = arp::ArpRepr::parse(&packet);
    }
    if let Ok(packet) = ipv4::Packet::new_checked(data) {
        let _ = ipv4::Ipv4Repr::parse(&packet);
        let _ = packet.options();
        let _ = packet.payload();
    }
    if let Ok(packet) = ipv6::Packet::new_checked(data) {
        let _ = ipv6::Ipv6Repr::parse(&packet);
        let _ = ipv6::walk_extension_headers(packet.next_header(), packet.payload());
    }
    if let Ok(packet) = tcp::Packet::new_checked(data) {
        let _ = tcp::TcpRepr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(packet) = icmpv6::Packet::new_checked(data) {
        let _ = icmpv6::Icmpv6Repr::parse(&packet);
    }
    if let Ok(packet) = icmpv4::Packet::new_checked(data) {
        let _ = icmpv4::Icmpv4Repr::parse(&packet);
    }
    let _ = palisade_wire::frame::parse_quoted(data, false);
    let _ = palisade_wire::frame::parse_quoted(data, true);

    let Ok(info) = parse_frame(data) else {
        return;
    };
    let l3 = usize::from(info.l3_offset);
    let l4 = usize::from(info.l4_offset);
    assert!(l3 <= l4 && l4 <= data.len(), "offsets out of the frame");

    let mut out = [0u8; 256];
    let mut copy = data.to_vec();
    let _ = rewrite_macs(
        &mut copy,
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr([2, 0, 0, 0, 0, 2]),
    );
    match info.l3 {
        L3Info::Arp(request) => {
            let _ = build_arp_reply(&request, info.vlan, MacAddr([2, 0, 0, 0, 0, 9]), &mut out);
        }
        L3Info::Ipv4(ip) | L3Info::Ipv6(ip) => {
            if decrement_ttl(&mut copy, &info).is_ok() {
                // The edited frame still parses to the same flow.
                let again = parse_frame(&copy).expect("a forwarded frame must still parse");
                assert_eq!(again.l4_offset, info.l4_offset);
            }
            let l4_bytes = &data[l4..];
            match (ip.l4, ip.src, ip.dst) {
                (L4Info::Tcp { .. }, src, dst) => {
                    let segment =
                        tcp::Packet::new_checked(l4_bytes).expect("parse_frame checked it");
                    let _ = segment.verify_checksum(src, dst);
                    let _ = tcp::TcpRepr::parse(&segment);
                }
                (L4Info::Udp { .. }, src, dst) => {
                    let datagram =
                        udp::Packet::new_checked(l4_bytes).expect("parse_frame checked it");
                    let _ = datagram.verify_checksum(src, dst);
                    let _ = udp::UdpRepr::parse(&datagram);
                }
                (L4Info::Icmp { .. }, _, _) => {
                    let message =
                        icmpv4::Packet::new_checked(l4_bytes).expect("parse_frame checked it");
                    let _ = message.verify_checksum();
                }
                (
                    L4Info::Icmpv6 { .. } | L4Info::IcmpError { .. },
                    IpAddr::V6(src),
                    IpAddr::V6(dst),
                ) => {
                    let message =
                        icmpv6::Packet::new_checked(l4_bytes).expect("parse_frame checked it");
                    let _ = message.verify_checksum(src, dst);
                    let _ = icmpv6::Icmpv6Repr::parse(&message);
                    let _ =
                        build_neighbor_advertisement(&info, MacAddr([2, 0, 0, 0, 0, 9]), &mut out);
                }
                _ => {}
            }
        }
    }
});
