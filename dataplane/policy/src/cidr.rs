//! IPv4 / IPv6 CIDR blocks as the policy spec writes them.
//!
//! Every address field of the spec (VPC and subnet blocks, SG rule peers,
//! NACL entries, prefix lists) is one of these. They are small `Copy` values
//! kept in canonical form (host bits cleared) so that equality is meaningful
//! and the compiler can turn each block into one closed range of integers —
//! which is what the classifier's interval tables are built from.
//!
//! Written here rather than taken from `ipnet` because the policy needs only
//! parse, canonical form, `contains` and the integer range, and owning the
//! canonicalisation rule (we reject host bits instead of silently masking
//! them, as the EC2 API does) matters more than the forty lines saved.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a CIDR string or value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The text has no `/` separating address and prefix length.
    #[error("{0:?} is not a CIDR block (expected ADDRESS/LENGTH)")]
    MissingSlash(String),
    /// The address part does not parse as an address of the expected family.
    #[error("{0:?} is not a valid address")]
    BadAddress(String),
    /// The prefix length is not a number or is longer than the family allows.
    #[error("prefix length {0:?} is invalid for this address family")]
    BadPrefixLength(String),
    /// Bits are set after the prefix, e.g. `10.0.0.1/16`; EC2 rejects these too.
    #[error("{0} has host bits set after the prefix")]
    HostBitsSet(String),
}

/// An IPv4 block, canonical: the address has no bits set after `prefix_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// An IPv6 block, canonical: the address has no bits set after `prefix_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Cidr {
    network: Ipv6Addr,
    prefix_len: u8,
}

/// A block of either family; SG rule peers and NACL entries carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpCidr {
    /// An IPv4 block.
    V4(Ipv4Cidr),
    /// An IPv6 block.
    V6(Ipv6Cidr),
}

fn mask_v4(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    }
}

fn mask_v6(prefix_len: u8) -> u128 {
    if prefix_len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix_len))
    }
}

impl Ipv4Cidr {
    /// The whole IPv4 space, `0.0.0.0/0`: the "anywhere" of SG rules and the
    /// peer that makes a flow eligible to be untracked.
    pub const ANY: Self = Self {
        network: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// Builds a block, rejecting host bits so that two spellings of one block
    /// cannot compare unequal.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, CidrError> {
        if prefix_len > 32 {
            return Err(CidrError::BadPrefixLength(prefix_len.to_string()));
        }
        if u32::from(network) & !mask_v4(prefix_len) != 0 {
            return Err(CidrError::HostBitsSet(format!("{network}/{prefix_len}")));
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    /// Builds the block of `prefix_len` that contains `addr` (host bits cleared).
    pub fn truncating(addr: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(addr) & mask_v4(prefix_len)),
            prefix_len,
        }
    }

    /// The network (first) address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length, 0..=32.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// First and last address as integers, inclusive.
    pub fn range(&self) -> (u32, u32) {
        let first = u32::from(self.network);
        (first, first | !mask_v4(self.prefix_len))
    }

    /// Whether `addr` lies in the block.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask_v4(self.prefix_len) == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_cidr(&self, other: &Self) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }
}

impl Ipv6Cidr {
    /// The whole IPv6 space, `::/0`.
    pub const ANY: Self = Self {
        network: Ipv6Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// Builds a block, rejecting host bits.
    pub fn new(network: Ipv6Addr, prefix_len: u8) -> Result<Self, CidrError> {
        if prefix_len > 128 {
            return Err(CidrError::BadPrefixLength(prefix_len.to_string()));
        }
        if u128::from(network) & !mask_v6(prefix_len) != 0 {
            return Err(CidrError::HostBitsSet(format!("{network}/{prefix_len}")));
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    /// Builds the block of `prefix_len` that contains `addr` (host bits cleared).
    pub fn truncating(addr: Ipv6Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(128);
        Self {
            network: Ipv6Addr::from(u128::from(addr) & mask_v6(prefix_len)),
            prefix_len,
        }
    }

    /// The network (first) address.
    pub fn network(&self) -> Ipv6Addr {
        self.network
    }

    /// The prefix length, 0..=128.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// First and last address as integers, inclusive.
    pub fn range(&self) -> (u128, u128) {
        let first = u128::from(self.network);
        (first, first | !mask_v6(self.prefix_len))
    }

    /// Whether `addr` lies in the block.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask_v6(self.prefix_len) == u128::from(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_cidr(&self, other: &Self) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }
}

impl IpCidr {
    /// Whether `addr` lies in the block; an address of the other family never does.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (Self::V4(cidr), IpAddr::V4(a)) => cidr.contains(a),
            (Self::V6(cidr), IpAddr::V6(a)) => cidr.contains(a),
            _ => false,
        }
    }

    /// Whether this is `0.0.0.0/0` or `::/0`.
    pub fn is_any(&self) -> bool {
        match self {
            Self::V4(c) => c.prefix_len == 0,
            Self::V6(c) => c.prefix_len == 0,
        }
    }

    /// Whether this is an IPv4 block.
    pub fn is_v4(&self) -> bool {
        matches!(self, Self::V4(_))
    }
}

fn split(text: &str) -> Result<(&str, u8), CidrError> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| CidrError::MissingSlash(text.to_owned()))?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CidrError::BadPrefixLength(len.to_owned()));
    }
    let len: u8 = len
        .parse()
        .map_err(|_| CidrError::BadPrefixLength(len.to_owned()))?;
    Ok((addr, len))
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (addr, len) = split(text)?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        Self::new(addr, len)
    }
}

impl FromStr for Ipv6Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (addr, len) = split(text)?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        Self::new(addr, len)
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Self, CidrError> {
        if text.contains(':') {
            text.parse().map(Self::V6)
        } else {
            text.parse().map(Self::V4)
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(c) => c.fmt(f),
            Self::V6(c) => c.fmt(f),
        }
    }
}

impl From<Ipv4Cidr> for IpCidr {
    fn from(c: Ipv4Cidr) -> Self {
        Self::V4(c)
    }
}

impl From<Ipv6Cidr> for IpCidr {
    fn from(c: Ipv6Cidr) -> Self {
        Self::V6(c)
    }
}

// The spec is written and read as text ("10.0.0.0/16"), as the EC2 API and a
// human-edited config both spell it.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_text!(Ipv4Cidr);
serde_as_text!(Ipv6Cidr);
serde_as_text!(IpCidr);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_canonical_blocks() {
        let c: Ipv4Cidr = "10.0.0.0/16".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(c.prefix_len(), 16);
        assert_eq!(c.range(), (0x0a00_0000, 0x0a00_ffff));
        assert_eq!(c.to_string(), "10.0.0.0/16");
        let c: IpCidr = "2001:db8::/32".parse().unwrap();
        assert_eq!(c.to_string(), "2001:db8::/32");
        assert!(!c.is_v4());
    }

    #[test]
    fn rejects_malformed_blocks() {
        assert!(matches!(
            "10.0.0.1/16".parse::<Ipv4Cidr>(),
            Err(CidrError::HostBitsSet(_))
        ));
        assert!(matches!(
            "10.0.0.0".parse::<Ipv4Cidr>(),
            Err(CidrError::MissingSlash(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/+8".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength(_))
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Ipv4Cidr>(),
            Err(CidrError::BadAddress(_))
        ));
        assert!(matches!(
            "::/129".parse::<Ipv6Cidr>(),
            Err(CidrError::BadPrefixLength(_))
        ));
        assert!(matches!(
            "2001:db8::1/64".parse::<IpCidr>(),
            Err(CidrError::HostBitsSet(_))
        ));
    }

    #[test]
    fn zero_length_prefix_contains_everything_of_its_family() {
        assert!(IpCidr::V4(Ipv4Cidr::ANY).contains("255.1.2.3".parse().unwrap()));
        assert!(!IpCidr::V4(Ipv4Cidr::ANY).contains("::1".parse().unwrap()));
        assert!(IpCidr::V6(Ipv6Cidr::ANY).contains("::1".parse().unwrap()));
        assert!(IpCidr::V4(Ipv4Cidr::ANY).is_any());
    }

    proptest! {
        #[test]
        fn v4_contains_agrees_with_range(addr: u32, net: u32, len in 0u8..=32) {
            let c = Ipv4Cidr::truncating(Ipv4Addr::from(net), len);
            let (lo, hi) = c.range();
            prop_assert_eq!(c.contains(Ipv4Addr::from(addr)), lo <= addr && addr <= hi);
            prop_assert_eq!(c.to_string().parse::<Ipv4Cidr>().unwrap(), c);
        }

        #[test]
        fn v6_contains_agrees_with_range(addr: u128, net: u128, len in 0u8..=128) {
            let c = Ipv6Cidr::truncating(Ipv6Addr::from(net), len);
            let (lo, hi) = c.range();
            prop_assert_eq!(c.contains(Ipv6Addr::from(addr)), lo <= addr && addr <= hi);
            prop_assert_eq!(c.to_string().parse::<Ipv6Cidr>().unwrap(), c);
        }
    }
}
