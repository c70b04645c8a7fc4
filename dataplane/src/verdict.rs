//! What `process()` decides for each packet, and why it drops what it drops.
//!
//! One [`DropReason`] enum feeds every counter, the packet trace and (later)
//! the flow log, as VPP's acl-plugin does with its single table of reasons:
//! a reason added here is counted everywhere without further wiring.

use core::fmt;

/// The decision for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (already rewritten) frame out of this port.
    Forward {
        /// Output port id.
        port: u16,
    },
    /// The frame was turned into an answer (ARP reply, neighbour
    /// advertisement) in place; send it back out of the port it came in on.
    Reply {
        /// The ingress port, which is also the output port.
        port: u16,
    },
    /// Drop silently (no RST, no ICMP) and count the reason.
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $label:literal,)*) => {
        /// Why a packet was dropped. Every drop has exactly one reason.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// How many reasons there are: the size of a counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// The stable label used in metrics and logs (`snake_case`).
            pub const fn label(self) -> &'static str {
                match self {
                    $(DropReason::$name => $label,)*
                }
            }

            /// Position in a counter array.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// The frame could not be parsed (truncated, bad lengths, bad IPv4
    /// header checksum, bad version, …).
    Malformed => "malformed",
    /// An EtherType palisade does not route (neither IPv4, IPv6 nor ARP).
    UnsupportedEtherType => "unsupported_ethertype",
    /// An IP packet not addressed to the router's MAC.
    NotForRouter => "not_for_router",
    /// No ENI is bound to this (port, VLAN, source MAC), and it is not the uplink.
    UnknownSource => "unknown_source",
    /// The source IP address is not one of the ENI's addresses
    /// (source/destination check).
    Spoofed => "spoofed",
    /// ARP or neighbour discovery palisade does not answer.
    NeighborDiscoveryIgnored => "nd_ignored",
    /// Addressed to the VPC router itself (other than ARP/NDP).
    ToRouter => "to_router",
    /// No ENI or uplink owns the destination address.
    NoRoute => "no_route",
    /// A network ACL entry denied the packet.
    NaclDenied => "nacl_denied",
    /// No egress rule of the source ENI's groups allows the packet.
    EgressDenied => "egress_denied",
    /// No ingress rule of the destination ENI's groups allows the packet.
    IngressDenied => "ingress_denied",
    /// A new connection found the flow table full (AWS's
    /// `conntrack_allowance_exceeded`).
    ConntrackFull => "conntrack_full",
    /// A non-first IP fragment with no first fragment seen.
    FragmentUnknown => "fragment_unknown",
    /// An ICMP error that quotes no tracked flow.
    IcmpErrorUnrelated => "icmp_error_unrelated",
    /// TTL or hop limit would reach zero.
    TtlExpired => "ttl_expired",
    /// A VLAN tag must be added but the buffer has no headroom.
    NoHeadroom => "no_headroom",
}

impl From<palisade_wire::WireError> for DropReason {
    /// A frame the parser rejects is malformed, except that an EtherType
    /// palisade does not route (LLDP, MPLS, …) is counted apart: it is
    /// well-formed traffic that is simply not ours.
    fn from(e: palisade_wire::WireError) -> Self {
        match e {
            palisade_wire::WireError::UnsupportedEtherType => DropReason::UnsupportedEtherType,
            _ => DropReason::Malformed,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_indices_dense() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(seen.insert(r.label()), "duplicate label {}", r.label());
            assert!(
                r.label()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
        }
    }
}
