//! Which worker owns a frame, when the NIC cannot tell (TAP, pcap, memif
//! with one queue): a software stand-in for symmetric RSS.
//!
//! Both directions of a connection, its fragments and the ICMP errors that
//! quote it must reach the worker whose flow table holds it. The one thing
//! all of them share is the unordered pair of IP addresses, so the owner is
//! a symmetric hash of that pair alone (no ports: later fragments have
//! none). The cost is balance between two busy hosts, which one worker then
//! carries; the gain is correctness without reassembly.
//!
//! The frame is read at fixed offsets, without a full parse: a frame too
//! short or not IP goes to worker 0, where `process()` judges it.

const ETHERTYPE_VLAN: [u8; 2] = [0x81, 0x00];
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];

/// The symmetric dispatch hash of a frame (0 for non-IP frames).
pub fn dispatch_hash(frame: &[u8]) -> u64 {
    let (ethertype, l3) = match frame.get(12..14) {
        Some(t) if t == ETHERTYPE_VLAN => (frame.get(16..18), 18),
        t => (t, 14),
    };
    let (src, dst) = match ethertype {
        Some(t) if t == ETHERTYPE_IPV4 => {
            (frame.get(l3 + 12..l3 + 16), frame.get(l3 + 16..l3 + 20))
        }
        Some(t) if t == ETHERTYPE_IPV6 => (frame.get(l3 + 8..l3 + 24), frame.get(l3 + 24..l3 + 40)),
        _ => (None, None),
    };
    let (Some(src), Some(dst)) = (src, dst) else {
        return 0;
    };
    let (a, b) = (fold(src), fold(dst));
    // Order-independent: a commutative combination of the two ends, then
    // a mix so that nearby addresses spread.
    mix(a.min(b) ^ a.max(b).rotate_left(32))
}

/// The worker (of `workers`) that owns a frame.
pub fn owner(frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    ((dispatch_hash(frame) >> 32) % workers as u64) as usize
}

fn fold(bytes: &[u8]) -> u64 {
    bytes
        .chunks(8)
        .map(|c| {
            let mut word = [0u8; 8];
            word[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(word)
        })
        .fold(0, |acc, w| mix(acc ^ w))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FrameSpec, Payload, ROUTER_MAC, eni_mac, flags, frame, later_fragment};
    use core::net::IpAddr;
    use proptest::prelude::*;

    fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, vlan: Option<u16>) -> FrameSpec {
        let mut f = FrameSpec::new(
            eni_mac(1),
            ROUTER_MAC,
            src,
            dst,
            Payload::Tcp {
                src_port: sport,
                dst_port: dport,
                flags: flags::SYN,
            },
        );
        f.vlan = vlan;
        f
    }

    proptest! {
        #[test]
        fn both_directions_and_fragments_have_one_owner(
            a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), a6 in any::<[u8; 16]>(), b6 in any::<[u8; 16]>(),
            sport in any::<u16>(), dport in any::<u16>(), v6 in any::<bool>(), vlan in proptest::option::of(1u16..4095),
            workers in 1usize..16,
        ) {
            let (src, dst) = if v6 {
                (IpAddr::from(a6), IpAddr::from(b6))
            } else {
                (IpAddr::from(a), IpAddr::from(b))
            };
            let there = tcp(src, dst, sport, dport, vlan);
            let back = tcp(dst, src, dport, sport, None);
            let mut first = there.clone();
            first.fragment = Some((9, 0, true));
            let later = later_fragment(&first, 9, 64, false);
            let o = owner(&frame(&there), workers);
            prop_assert!(o < workers);
            prop_assert_eq!(o, owner(&frame(&back), workers));
            prop_assert_eq!(o, owner(&later, workers));
            prop_assert_ne!(dispatch_hash(&frame(&there)), 0);
        }

        #[test]
        fn any_bytes_have_an_owner(bytes in proptest::collection::vec(any::<u8>(), 0..80), workers in 1usize..8) {
            prop_assert!(owner(&bytes, workers) < workers);
        }
    }

    #[test]
    fn owners_spread_over_workers() {
        let mut counts = [0usize; 4];
        for i in 0..4000u32 {
            let src = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            let dst = IpAddr::from([10, 0, 2, 20]);
            counts[owner(&frame(&tcp(src, dst, 1, 80, None)), 4)] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread {counts:?}");
        }
    }
}
