//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The fast path verifies only the IPv4 header checksum and patches it with
//! [`update_word`] when it decrements the TTL; upper-layer checksums are
//! verified on demand (tests, `explain`, the fuzz target) through the
//! pseudo-header helpers here.

use core::net::IpAddr;

/// Ones'-complement sum of `data` as big-endian 16-bit words (an odd final
/// byte is padded with zero), not yet folded.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a wide sum into 16 bits with end-around carry.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data` (whose checksum field must be zero).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Unfolded sum of the TCP/UDP/ICMPv6 pseudo-header.
///
/// The IPv4 (RFC 793) and IPv6 (RFC 8200 §8.1) pseudo-headers differ only in
/// field widths, which do not change a ones'-complement sum when the length
/// fits in 16 bits — so one function serves both.
#[inline]
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> u64 {
    let addr_sum = |addr: IpAddr| match addr {
        IpAddr::V4(a) => sum(&a.octets()),
        IpAddr::V6(a) => sum(&a.octets()),
    };
    addr_sum(src)
        + addr_sum(dst)
        + u64::from(protocol)
        + u64::from(length >> 16)
        + u64::from(length & 0xffff)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data
/// changes from `old_word` to `new_word`, without touching the rest.
#[inline]
pub fn update_word(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    // Three 16-bit terms sum to at most 0x2fffd: two folds always finish
    // (the first leaves at most 0x10001), so no loop and no branch.
    let acc = u32::from(!old_checksum) + u32::from(!old_word) + u32::from(new_word);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic example header with checksum 0xb861.
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
        header[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(fold(sum(&header)), 0xffff);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..64),
            index in any::<prop::sample::Index>(),
            new_word in any::<u16>(),
        ) {
            // Keep the covered data nonzero, as every real header is.
            data[0] |= 0x40;
            data[2] = 0;
            data[3] = 0;
            let c = checksum(&data);
            data[2..4].copy_from_slice(&c.to_be_bytes());
            let words = data.len() / 2;
            let w = index.index(words - 1) + 1; // never the checksum word itself
            let w = if w == 1 { 0 } else { w };
            let old_word = u16::from_be_bytes([data[2 * w], data[2 * w + 1]]);
            data[2 * w..2 * w + 2].copy_from_slice(&new_word.to_be_bytes());
            let updated = update_word(c, old_word, new_word);
            data[2] = 0;
            data[3] = 0;
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(updated, checksum(&data));
            }
        }
    }
}
