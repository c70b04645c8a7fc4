//! The symmetric, VPC-scoped flow key and its hash.
//!
//! Step 6 of the packet path looks a packet up in the flow table of the
//! core that owns its connection. Both directions of a connection must land
//! on the same entry *and* on the same core, so the key is canonical: of the
//! two endpoints `(address, port)`, the lower one is stored first, whichever
//! of them sent the packet. [`FlowKey::new_v4`] / [`FlowKey::new_v6`] return
//! the key together with the [`Side`] the packet came from; the flow entry
//! remembers which side initiated, so the data plane can tell a request from
//! its reply ([`crate::FlowEntry::direction`]).
//!
//! The key holds no padding (42 bytes, alignment 2), which keeps the flow
//! entry within one cache line and makes equality a plain memory compare.
//!
//! The hash leaves the key's VPC scope out: a packet's flow can then be
//! found from its addresses, ports and protocol alone, before the packet
//! is routed (the established lane of `process()`), and the scope is
//! checked against the entry afterwards. Connections of different VPCs
//! with the same addresses and ports (overlapping CIDR blocks) share a
//! probe window; their keys still differ.

use std::net::IpAddr;

use thiserror::Error;

/// IP protocol number of ICMP (IPv4).
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// The seed [`FlowKey::hash`] uses. Every core of one appliance must use the
/// same seed, since the hash also picks the core that owns a flow.
pub const DEFAULT_HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Errors building a flow key from generic addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The source and destination addresses are of different IP versions; no
    /// packet on the wire can carry such a pair.
    #[error("source and destination addresses are of different IP versions")]
    MixedAddressFamilies,
}

/// The IP version of a flow. Part of the key so that an IPv6 packet whose
/// addresses happen to be IPv4-mapped can never match an IPv4 flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AddressFamily {
    /// IPv4; the addresses are stored IPv4-mapped (`::ffff:a.b.c.d`).
    V4 = 4,
    /// IPv6.
    V6 = 6,
}

/// Which canonical endpoint of a [`FlowKey`] sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The packet came from the key's lower `(address, port)` endpoint.
    Low,
    /// The packet came from the key's higher endpoint.
    High,
}

impl Side {
    /// The other endpoint.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Self::Low => Self::High,
            Self::High => Self::Low,
        }
    }
}

/// The direction of a packet relative to the flow's initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the endpoint that opened the flow (the one whose packet created
    /// the entry).
    Forward,
    /// From the other endpoint: reply traffic.
    Reverse,
}

/// A canonical, VPC-scoped connection key.
///
/// `low` is the endpoint with the smaller `(address, port)` pair. For ICMP
/// echo both ports carry the echo identifier; for protocols other than TCP,
/// UDP and ICMP both ports are zero, so such flows are tracked by addresses
/// and protocol only (SEMANTICS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct FlowKey {
    low_address: [u8; 16],
    high_address: [u8; 16],
    /// The VPC index, little-endian bytes: bytes rather than a `u32` keep the
    /// key's alignment at 2 so it packs into the entry without padding.
    vpc: [u8; 4],
    low_port: u16,
    high_port: u16,
    protocol: u8,
    /// [`AddressFamily`] as its `u8` value: a byte keeps the key plain old
    /// data, so the table can live in a huge-page mapping.
    family: u8,
}

const _: () = assert!(size_of::<FlowKey>() == 42);

const fn ipv4_mapped(address: [u8; 4]) -> [u8; 16] {
    let [a, b, c, d] = address;
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
}

impl FlowKey {
    /// All-zero key: filler for the empty slots of the tables.
    pub(crate) const ZERO: Self = Self {
        low_address: [0; 16],
        high_address: [0; 16],
        vpc: [0; 4],
        low_port: 0,
        high_port: 0,
        protocol: 0,
        family: AddressFamily::V4 as u8,
    };

    /// The key of an IPv4 packet, and the side that sent it.
    ///
    /// For ICMP echo pass the identifier as both ports; for protocols without
    /// ports pass zeros.
    #[inline]
    pub fn new_v4(
        vpc: u32,
        source: [u8; 4],
        destination: [u8; 4],
        protocol: u8,
        source_port: u16,
        destination_port: u16,
    ) -> (Self, Side) {
        Self::canonical(
            vpc,
            AddressFamily::V4,
            ipv4_mapped(source),
            ipv4_mapped(destination),
            protocol,
            source_port,
            destination_port,
        )
    }

    /// [`Self::new_v4`] and the key's [`Self::hash`] together, the hash
    /// computed from the addresses and ports directly rather than read back
    /// from the 42 bytes of the key just built: the per-packet path of every
    /// plain IPv4 packet. Identical to `new_v4` and `hash` (a property test
    /// holds it to them).
    #[inline(always)]
    pub fn new_v4_hashed(
        vpc: u32,
        source: [u8; 4],
        destination: [u8; 4],
        protocol: u8,
        source_port: u16,
        destination_port: u16,
    ) -> (Self, Side, u64) {
        let (s, d) = (u32::from_be_bytes(source), u32::from_be_bytes(destination));
        // The mapped addresses share their first 12 bytes, so they order as
        // the IPv4 addresses do.
        let (low, low_port, high, high_port, side) = if (s, source_port) <= (d, destination_port) {
            (s, source_port, d, destination_port, Side::Low)
        } else {
            (d, destination_port, s, source_port, Side::High)
        };
        let key = Self {
            low_address: ipv4_mapped(low.to_be_bytes()),
            high_address: ipv4_mapped(high.to_be_bytes()),
            vpc: vpc.to_le_bytes(),
            low_port,
            high_port,
            protocol,
            family: AddressFamily::V4 as u8,
        };
        // The words `hash_seeded` reads: a mapped address is 0 in its first
        // word and `00 00 ff ff a b c d` (little-endian) in its second.
        let mapped_word = |a: u32| 0xffff_0000 | (u64::from(a.swap_bytes()) << 32);
        let hash = mix_words(
            DEFAULT_HASH_SEED,
            [
                0,
                mapped_word(low),
                0,
                mapped_word(high),
                (u64::from(low_port) << 32) | (u64::from(high_port) << 48),
                u64::from(protocol) | ((AddressFamily::V4 as u64) << 8),
            ],
        );
        (key, side, hash)
    }

    /// The key of an IPv6 packet, and the side that sent it.
    #[inline]
    pub fn new_v6(
        vpc: u32,
        source: [u8; 16],
        destination: [u8; 16],
        protocol: u8,
        source_port: u16,
        destination_port: u16,
    ) -> (Self, Side) {
        Self::canonical(
            vpc,
            AddressFamily::V6,
            source,
            destination,
            protocol,
            source_port,
            destination_port,
        )
    }

    /// The key from generic addresses, for the control plane and tests; the
    /// packet path uses [`Self::new_v4`] / [`Self::new_v6`] on wire bytes.
    pub fn new(
        vpc: u32,
        source: IpAddr,
        destination: IpAddr,
        protocol: u8,
        source_port: u16,
        destination_port: u16,
    ) -> Result<(Self, Side), KeyError> {
        match (source, destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ok(Self::new_v4(
                vpc,
                s.octets(),
                d.octets(),
                protocol,
                source_port,
                destination_port,
            )),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(Self::new_v6(
                vpc,
                s.octets(),
                d.octets(),
                protocol,
                source_port,
                destination_port,
            )),
            _ => Err(KeyError::MixedAddressFamilies),
        }
    }

    #[inline]
    fn canonical(
        vpc: u32,
        family: AddressFamily,
        source: [u8; 16],
        destination: [u8; 16],
        protocol: u8,
        source_port: u16,
        destination_port: u16,
    ) -> (Self, Side) {
        // A packet from an endpoint to itself gets `Side::Low` both ways; it
        // never crosses the router, so the ambiguity is harmless.
        // Big-endian integers order like the byte arrays, in two compares
        // instead of a byte-wise loop.
        let source_is_low = (u128::from_be_bytes(source), source_port)
            <= (u128::from_be_bytes(destination), destination_port);
        let (low_address, low_port, high_address, high_port, side) = if source_is_low {
            (
                source,
                source_port,
                destination,
                destination_port,
                Side::Low,
            )
        } else {
            (
                destination,
                destination_port,
                source,
                source_port,
                Side::High,
            )
        };
        let key = Self {
            low_address,
            high_address,
            vpc: vpc.to_le_bytes(),
            low_port,
            high_port,
            protocol,
            family: family as u8,
        };
        (key, side)
    }

    /// Whether `other` names the same connection up to the VPC scope:
    /// equal addresses, ports, protocol and family. Keys that are equal
    /// this way have the same hash.
    #[inline(always)]
    #[must_use]
    pub fn same_unscoped(&self, other: &Self) -> bool {
        // Five word compares folded into one test, rather than a field at
        // a time: the addresses are bytes 0..32, the scope 32..36, and the
        // word at 34..42 holds the scope's upper half (masked off), the
        // ports, the protocol and the family.
        let word = |key: &Self, at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytemuck::bytes_of(key)[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let differ = |at| word(self, at) ^ word(other, at);
        (differ(0) | differ(8) | differ(16) | differ(24) | (differ(34) & !0xffff)) == 0
    }

    /// The same connection's key in scope `vpc`: the hash stays the same
    /// (the scope is not hashed), so a key built before its scope was known
    /// can be completed without hashing again.
    #[inline(always)]
    #[must_use]
    pub const fn with_vpc(mut self, vpc: u32) -> Self {
        self.vpc = vpc.to_le_bytes();
        self
    }

    /// The VPC index the flow belongs to.
    pub const fn vpc(&self) -> u32 {
        u32::from_le_bytes(self.vpc)
    }

    /// The IP protocol number.
    pub const fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The IP version.
    pub const fn family(&self) -> AddressFamily {
        if self.family == AddressFamily::V6 as u8 {
            AddressFamily::V6
        } else {
            AddressFamily::V4
        }
    }

    /// The address and port of one endpoint.
    pub fn endpoint(&self, side: Side) -> (IpAddr, u16) {
        let (bytes, port) = match side {
            Side::Low => (self.low_address, self.low_port),
            Side::High => (self.high_address, self.high_port),
        };
        let address = match self.family() {
            AddressFamily::V4 => {
                let [.., a, b, c, d] = bytes;
                IpAddr::from([a, b, c, d])
            }
            AddressFamily::V6 => IpAddr::from(bytes),
        };
        (address, port)
    }

    /// The worker (of `workers`) that owns the flow with this hash.
    ///
    /// Uses hash bits 32..48, which the tables use for nothing: the bucket
    /// index comes from the low bits, the slot hint from bits 48..51 and the
    /// tag from the top byte. Picking the worker from the low bits instead
    /// (`hash % workers`) would leave every worker's table using only
    /// `1 / workers` of its buckets. Multiply-shift maps the 16 bits onto
    /// `0..workers` without a division; the bias is below `workers / 65536`.
    #[inline]
    pub const fn worker_for_hash(hash: u64, workers: u16) -> u16 {
        ((((hash >> 32) & 0xffff) * workers as u64) >> 16) as u16
    }

    /// [`Self::hash_seeded`] with [`DEFAULT_HASH_SEED`].
    #[inline]
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash_seeded(DEFAULT_HASH_SEED)
    }

    /// A fast 64-bit hash of the canonical key: identical for both
    /// directions of a connection, since both build the same key.
    ///
    /// Construction: the key's 42 bytes are read as six 64-bit words; pairs
    /// of words are combined by a *folded multiply* (the 128-bit product of
    /// the two words, high half XOR low half — the wyhash/foldhash mixer),
    /// and the three results are folded once more. Every input bit reaches
    /// every output bit through at least two full-width multiplies, so both
    /// the low bits (bucket index, core choice) and the high bits (tags) are
    /// well spread; the tests check bucket occupancy with a chi-square over a
    /// million random and a million sequential keys. It is **not** a keyed
    /// PRF: with a known seed an attacker can aim flows at one bucket. A
    /// random per-appliance seed makes that hard; bounded probing makes it
    /// cheap regardless (a flooded bucket refuses *new* flows only).
    #[inline]
    #[must_use]
    pub fn hash_seeded(&self, seed: u64) -> u64 {
        let word = |bytes: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[half * 8..half * 8 + 8]);
            u64::from_le_bytes(w)
        };
        // The scope is not hashed (see the module doc).
        let ports = (u64::from(self.low_port) << 32) | (u64::from(self.high_port) << 48);
        let protocol_and_family = u64::from(self.protocol) | (u64::from(self.family) << 8);
        mix_words(
            seed,
            [
                word(&self.low_address, 0),
                word(&self.low_address, 1),
                word(&self.high_address, 0),
                word(&self.high_address, 1),
                ports,
                protocol_and_family,
            ],
        )
    }
}

/// Arbitrary odd constants (digits of pi), one per input word, so that no
/// word pair is multiplied by zero for common inputs (all-zero addresses).
const MIX_CONSTANTS: [u64; 8] = [
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
    0x9216_d5d9_8979_fb1b,
];

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes six words; shared with the fragment key.
#[inline(always)]
pub(crate) fn mix_words(seed: u64, words: [u64; 6]) -> u64 {
    let [w0, w1, w2, w3, w4, w5] = words;
    let c = MIX_CONSTANTS;
    let a = folded_multiply(w0 ^ seed ^ c[0], w1 ^ c[1]);
    let b = folded_multiply(w2 ^ seed ^ c[2], w3 ^ c[3]);
    let d = folded_multiply(w4 ^ seed ^ c[4], w5 ^ c[5]);
    folded_multiply(a ^ d.rotate_left(32) ^ c[6], b ^ c[7])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::from(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| IpAddr::from(Ipv6Addr::from(b))),
        ]
    }

    fn same_family_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>())
                .prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
            (any::<[u8; 16]>(), any::<[u8; 16]>())
                .prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
            // Same address on both sides: only the ports order the endpoints.
            address().prop_map(|a| (a, a)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_hashed_v4_constructor_agrees_with_new_v4_and_hash(
            vpc in any::<u32>(),
            source in any::<[u8; 4]>(),
            destination in any::<[u8; 4]>(),
            same_address in any::<bool>(),
            protocol in any::<u8>(),
            source_port in any::<u16>(),
            destination_port in any::<u16>(),
        ) {
            let destination = if same_address { source } else { destination };
            let (key, side) =
                FlowKey::new_v4(vpc, source, destination, protocol, source_port, destination_port);
            let (fast, fast_side, hash) = FlowKey::new_v4_hashed(
                vpc, source, destination, protocol, source_port, destination_port,
            );
            prop_assert_eq!(fast, key);
            prop_assert_eq!(fast_side, side);
            prop_assert_eq!(hash, key.hash());
        }

        #[test]
        fn both_directions_build_the_same_key_with_opposite_sides(
            vpc in any::<u32>(),
            (a, b) in same_family_pair(),
            protocol in any::<u8>(),
            port_a in any::<u16>(),
            port_b in any::<u16>(),
        ) {
            let (forward, forward_side) = FlowKey::new(vpc, a, b, protocol, port_a, port_b).unwrap();
            let (reverse, reverse_side) = FlowKey::new(vpc, b, a, protocol, port_b, port_a).unwrap();
            prop_assert_eq!(forward, reverse);
            prop_assert_eq!(forward.hash(), reverse.hash());
            prop_assert_eq!(forward.hash_seeded(7), reverse.hash_seeded(7));
            if (a, port_a) == (b, port_b) {
                prop_assert_eq!(forward_side, reverse_side);
            } else {
                prop_assert_eq!(forward_side, reverse_side.opposite());
            }
            // The key remembers both endpoints; the side names the sender.
            prop_assert_eq!(forward.endpoint(forward_side), (a, port_a));
            prop_assert_eq!(forward.endpoint(forward_side.opposite()), (b, port_b));
            prop_assert_eq!(forward.vpc(), vpc);
            prop_assert_eq!(forward.protocol(), protocol);
        }

        #[test]
        fn keys_differing_in_any_field_are_different(
            vpc in any::<u32>(),
            (a, b) in same_family_pair(),
            protocol in any::<u8>(),
            port_a in any::<u16>(),
            port_b in any::<u16>(),
            field in 0usize..4,
        ) {
            let (key, _) = FlowKey::new(vpc, a, b, protocol, port_a, port_b).unwrap();
            let (other, _) = match field {
                0 => FlowKey::new(vpc ^ 1, a, b, protocol, port_a, port_b),
                1 => FlowKey::new(vpc, a, b, protocol ^ 1, port_a, port_b),
                2 => FlowKey::new(vpc, a, b, protocol, port_a ^ 1, port_b),
                _ => FlowKey::new(vpc, a, b, protocol, port_a, port_b ^ 1),
            }.unwrap();
            prop_assert_ne!(key, other);
        }

        /// The scope is the one field the hash and `same_unscoped` leave
        /// out; every other field still tells keys apart.
        #[test]
        fn the_scope_is_neither_hashed_nor_compared_unscoped(
            vpc in any::<u32>(),
            other_vpc in any::<u32>(),
            (a, b) in same_family_pair(),
            protocol in any::<u8>(),
            port_a in any::<u16>(),
            port_b in any::<u16>(),
            field in 0usize..3,
        ) {
            let (key, _) = FlowKey::new(vpc, a, b, protocol, port_a, port_b).unwrap();
            let (rescoped, _) = FlowKey::new(other_vpc, a, b, protocol, port_a, port_b).unwrap();
            prop_assert_eq!(key.hash(), rescoped.hash());
            prop_assert_eq!(key.with_vpc(other_vpc), rescoped);
            prop_assert!(key.same_unscoped(&rescoped));
            let (other, _) = match field {
                0 => FlowKey::new(other_vpc, a, b, protocol ^ 1, port_a, port_b),
                1 => FlowKey::new(other_vpc, a, b, protocol, port_a ^ 1, port_b),
                _ => FlowKey::new(other_vpc, a, b, protocol, port_a, port_b ^ 1),
            }.unwrap();
            prop_assert!(!key.same_unscoped(&other));
        }
    }

    #[test]
    fn unscoped_keys_still_differ_by_address_and_family() {
        let (key, _) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_TCP, 1000, 80);
        let (reply, _) = FlowKey::new_v4(9, [10, 0, 0, 2], [10, 0, 0, 1], IPPROTO_TCP, 80, 1000);
        assert!(key.same_unscoped(&reply));
        for (s, d) in [
            ([10, 0, 0, 3], [10, 0, 0, 2]),
            ([10, 0, 0, 1], [11, 0, 0, 2]),
        ] {
            let (other, _) = FlowKey::new_v4(1, s, d, IPPROTO_TCP, 1000, 80);
            assert!(!key.same_unscoped(&other));
        }
        let (v6, _) = FlowKey::new_v6(
            1,
            ipv4_mapped([10, 0, 0, 1]),
            ipv4_mapped([10, 0, 0, 2]),
            IPPROTO_TCP,
            1000,
            80,
        );
        assert!(!key.same_unscoped(&v6));
    }

    #[test]
    fn mixed_families_are_refused() {
        let v4 = IpAddr::from([10, 0, 0, 1]);
        let v6 = IpAddr::from([0u8; 16]);
        assert_eq!(
            FlowKey::new(1, v4, v6, IPPROTO_TCP, 1, 2),
            Err(KeyError::MixedAddressFamilies)
        );
    }

    #[test]
    fn ipv4_never_equals_its_ipv4_mapped_ipv6_twin() {
        let (v4, _) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_TCP, 1000, 80);
        let (v6, _) = FlowKey::new_v6(
            1,
            ipv4_mapped([10, 0, 0, 1]),
            ipv4_mapped([10, 0, 0, 2]),
            IPPROTO_TCP,
            1000,
            80,
        );
        assert_ne!(v4, v6);
        assert_ne!(v4.hash(), v6.hash());
        assert_eq!(v4.endpoint(Side::Low).0, IpAddr::from([10, 0, 0, 1]));
    }

    /// xorshift64*: a tiny deterministic generator, enough to make keys.
    struct TestRng(u64);
    impl TestRng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Chi-square statistic of `values` dropped into `bins` bins.
    fn chi_square(values: impl Iterator<Item = usize>, bins: usize) -> (f64, usize) {
        let mut counts = vec![0u64; bins];
        let mut n = 0usize;
        for v in values {
            counts[v] += 1;
            n += 1;
        }
        let expected = n as f64 / bins as f64;
        let statistic = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        (statistic, n)
    }

    /// For k = bins - 1 degrees of freedom the statistic has mean k and
    /// standard deviation sqrt(2k); a good hash stays within a few sigmas.
    /// A bad one (e.g. an identity on the low bits of a port) lands
    /// thousands of sigmas out.
    fn assert_uniform(what: &str, hashes: &[u64]) {
        const BINS: usize = 1 << 16;
        let dof = (BINS - 1) as f64;
        let limit = dof + 6.0 * (2.0 * dof).sqrt();
        let low = chi_square(hashes.iter().map(|h| (*h as usize) & (BINS - 1)), BINS).0;
        let high = chi_square(hashes.iter().map(|h| (*h >> 48) as usize), BINS).0;
        let tags = chi_square(hashes.iter().map(|h| (*h >> 56) as usize), 256).0;
        let tag_limit = 255.0 + 6.0 * (2.0f64 * 255.0).sqrt();
        assert!(low < limit, "{what}: low-bit chi-square {low} >= {limit}");
        assert!(
            high < limit,
            "{what}: high-bit chi-square {high} >= {limit}"
        );
        assert!(
            tags < tag_limit,
            "{what}: tag chi-square {tags} >= {tag_limit}"
        );
    }

    #[test]
    fn hash_spreads_random_keys_evenly() {
        let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
        let hashes: Vec<u64> = (0..1_000_000)
            .map(|_| {
                let a = rng.next();
                let b = rng.next();
                let (key, _) = FlowKey::new_v4(
                    (a >> 40) as u32 & 0xff,
                    (a as u32).to_be_bytes(),
                    (b as u32).to_be_bytes(),
                    IPPROTO_TCP,
                    (a >> 32) as u16,
                    (b >> 32) as u16,
                );
                key.hash()
            })
            .collect();
        assert_uniform("random IPv4 keys", &hashes);
    }

    #[test]
    fn hash_spreads_sequential_keys_evenly() {
        // The shape real traffic has: one client subnet, sequential source
        // ports, one server. Weak hashes fail this one first.
        let hashes: Vec<u64> = (0u32..1_000_000)
            .map(|i| {
                let client = [10, 0, (i >> 14) as u8, (i >> 22) as u8];
                let (key, _) = FlowKey::new_v4(
                    3,
                    client,
                    [10, 1, 0, 80],
                    IPPROTO_TCP,
                    (i & 0x3fff) as u16 + 32768,
                    443,
                );
                key.hash()
            })
            .collect();
        assert_uniform("sequential IPv4 keys", &hashes);
        let v6: Vec<u64> = (0u32..1_000_000)
            .map(|i| {
                let mut client = [0u8; 16];
                client[0] = 0xfd;
                client[12..].copy_from_slice(&i.to_be_bytes());
                let (key, _) = FlowKey::new_v6(3, client, [0xfd; 16], IPPROTO_UDP, 5353, 5353);
                key.hash()
            })
            .collect();
        assert_uniform("sequential IPv6 keys", &v6);
    }

    #[test]
    fn workers_share_flows_evenly_and_each_uses_every_bucket() {
        const WORKERS: u16 = 3;
        const BUCKETS: usize = 1 << 12;
        let mut rng = TestRng(42);
        let mut per_worker: Vec<Vec<u64>> = vec![Vec::new(); usize::from(WORKERS)];
        for _ in 0..300_000 {
            let a = rng.next();
            let (key, _) = FlowKey::new_v4(
                1,
                (a as u32).to_be_bytes(),
                [10, 0, 0, 1],
                IPPROTO_TCP,
                (a >> 32) as u16,
                443,
            );
            let hash = key.hash();
            let worker = FlowKey::worker_for_hash(hash, WORKERS);
            per_worker[usize::from(worker)].push(hash);
        }
        for hashes in &per_worker {
            assert!(
                (95_000..105_000).contains(&hashes.len()),
                "{}",
                hashes.len()
            );
            // Within one worker, buckets are still evenly used.
            let (chi, n) = chi_square(hashes.iter().map(|h| *h as usize & (BUCKETS - 1)), BUCKETS);
            let dof = (BUCKETS - 1) as f64;
            assert!(
                chi < dof + 6.0 * (2.0 * dof).sqrt(),
                "chi-square {chi} over {n} hashes"
            );
        }
        assert_eq!(FlowKey::worker_for_hash(u64::MAX, 4), 3);
        assert_eq!(FlowKey::worker_for_hash(0, 4), 0);
        assert_eq!(FlowKey::worker_for_hash(u64::MAX, 1), 0);
    }

    #[test]
    fn the_seed_changes_the_hash() {
        let (key, _) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 53, 53);
        assert_ne!(key.hash_seeded(1), key.hash_seeded(2));
        assert_eq!(key.hash(), key.hash_seeded(DEFAULT_HASH_SEED));
    }
}
