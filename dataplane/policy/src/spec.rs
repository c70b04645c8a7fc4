//! The policy spec: the plain, owned description of the VPC world that the
//! control plane hands to the data plane.
//!
//! This is the input of [`PolicySnapshot::compile`](crate::PolicySnapshot::compile)
//! and of the [`reference`](crate::reference) evaluator. It mirrors the EC2
//! object model (SEMANTICS.md) closely enough that the control plane can fill
//! it straight from its store, and it carries no derived data: every index,
//! table and classifier is built by the compiler. Objects refer to each other
//! by their AWS-shaped string ids (`vpc-…`, `sg-…`); the compiler resolves
//! them and rejects dangling ones.

use core::fmt;
use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cidr::{IpCidr, Ipv4Cidr, Ipv6Cidr};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(text.to_owned())
            }
        }
    };
}

id_type!(
    /// A VPC id, `vpc-…`.
    VpcId
);
id_type!(
    /// A subnet id, `subnet-…`.
    SubnetId
);
id_type!(
    /// A security group id, `sg-…`.
    SgId
);
id_type!(
    /// A security group rule id, `sgr-` + 17 hex digits; named in logs and `explain`.
    SgRuleId
);
id_type!(
    /// A network interface id, `eni-…`.
    EniId
);
id_type!(
    /// A network ACL id, `acl-…`.
    NaclId
);
id_type!(
    /// A VPC peering connection id, `pcx-…`.
    PeeringId
);
id_type!(
    /// A managed prefix list id, `pl-…`.
    PrefixListId
);

/// Everything the data plane enforces, as one value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The MAC the router answers ARP/NDP with and sends from.
    pub router_mac: [u8; 6],
    /// The VPCs.
    pub vpcs: Vec<VpcSpec>,
    /// The subnets, each in one VPC.
    pub subnets: Vec<SubnetSpec>,
    /// The security groups, each in one VPC. Their order is the order of the
    /// bits in an SG-set bitmap (see [`SgMatch`](crate::SgMatch)).
    pub security_groups: Vec<SecurityGroupSpec>,
    /// The network interfaces.
    pub enis: Vec<EniSpec>,
    /// The network ACLs, each in one VPC.
    pub nacls: Vec<NaclSpec>,
    /// VPC peering connections; only active ones route traffic and make
    /// cross-VPC group references live.
    pub peerings: Vec<PeeringSpec>,
    /// Managed prefix lists that SG rules can name as peers.
    pub prefix_lists: Vec<PrefixListSpec>,
    /// Where traffic leaving every VPC goes, if anywhere.
    pub uplink: Option<UplinkSpec>,
}

/// A VPC: an address space that subnets carve up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcSpec {
    /// Its id.
    pub id: VpcId,
    /// The primary IPv4 block.
    pub ipv4_cidr: Ipv4Cidr,
    /// The IPv6 block, when the VPC has one.
    pub ipv6_cidr: Option<Ipv6Cidr>,
}

/// A subnet: a block of its VPC with one network ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// Its id.
    pub id: SubnetId,
    /// The VPC it belongs to.
    pub vpc: VpcId,
    /// Its IPv4 block, inside the VPC's.
    pub ipv4_cidr: Ipv4Cidr,
    /// Its IPv6 block, inside the VPC's, when it has one.
    pub ipv6_cidr: Option<Ipv6Cidr>,
    /// The network ACL applied at its boundary (exactly one, SEMANTICS.md).
    pub nacl: NaclId,
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    /// Its id.
    pub id: SgId,
    /// The VPC it belongs to; it can only be attached to ENIs of that VPC.
    pub vpc: VpcId,
    /// Inbound rules: peer is the source, checked on the receiving ENI.
    pub ingress: Vec<SgRule>,
    /// Outbound rules: peer is the destination, checked on the sending ENI.
    pub egress: Vec<SgRule>,
}

/// One allow rule of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgRule {
    /// `sgr-…`, reported by `explain` and flow logs.
    pub id: SgRuleId,
    /// What protocol it allows.
    pub protocol: Protocol,
    /// Ports (tcp/udp) or ICMP type/code (icmp/icmpv6); ignored otherwise.
    pub ports: PortSpec,
    /// The other end of the traffic.
    pub peer: Peer,
    /// Free text, up to 255 characters.
    pub description: String,
}

/// The `IpProtocol` of a rule or NACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// `-1`: every protocol, every port.
    All,
    /// TCP (6); needs a port range.
    Tcp,
    /// UDP (17); needs a port range.
    Udp,
    /// ICMP (1); ports are ICMP type and code.
    Icmp,
    /// ICMPv6 (58); ports are ICMPv6 type and code, or absent for all.
    Icmpv6,
    /// Any protocol number. 6, 17, 1 and 58 mean the same as the named
    /// variants; any other number covers all ports whatever range is given.
    Number(u8),
}

impl Protocol {
    /// TCP's IP protocol number.
    pub const TCP: u8 = 6;
    /// UDP's IP protocol number.
    pub const UDP: u8 = 17;
    /// ICMP's IP protocol number.
    pub const ICMP: u8 = 1;
    /// ICMPv6's IP protocol number.
    pub const ICMPV6: u8 = 58;

    /// The protocol number this matches, `None` for all.
    pub fn number(self) -> Option<u8> {
        match self {
            Self::All => None,
            Self::Tcp => Some(Self::TCP),
            Self::Udp => Some(Self::UDP),
            Self::Icmp => Some(Self::ICMP),
            Self::Icmpv6 => Some(Self::ICMPV6),
            Self::Number(n) => Some(n),
        }
    }

    /// Whether a packet with IP protocol `proto` is of this protocol.
    pub fn matches(self, proto: u8) -> bool {
        self.number().is_none_or(|n| n == proto)
    }

    /// Which field of the packet the rule's [`PortSpec`] constrains.
    pub fn port_kind(self) -> PortKind {
        match self.number() {
            Some(Self::TCP | Self::UDP) => PortKind::Ports,
            Some(Self::ICMP | Self::ICMPV6) => PortKind::IcmpTypeCode,
            _ => PortKind::Ignored,
        }
    }
}

/// How a protocol interprets the rule's ports (SEMANTICS.md, "Rule fields").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// TCP/UDP: the destination port must lie in the range.
    Ports,
    /// ICMP/ICMPv6: the type and code must match.
    IcmpTypeCode,
    /// `-1` and other protocols: every packet of the protocol matches.
    Ignored,
}

/// `FromPort`/`ToPort` of a rule or NACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortSpec {
    /// No range given: valid for `-1`, other protocols and icmpv6 (all
    /// types and codes). For icmp it also means all; tcp/udp reject it.
    Any,
    /// An inclusive destination-port range, `from <= to`; tcp/udp only.
    Range {
        /// First port.
        from: u16,
        /// Last port.
        to: u16,
    },
    /// ICMP type and code; `None` is the API's `-1` (all). A type of `None`
    /// requires a code of `None`.
    Icmp {
        /// The ICMP type, or all.
        icmp_type: Option<u8>,
        /// The ICMP code, or all.
        code: Option<u8>,
    },
}

/// The other end of the traffic a rule allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Peer {
    /// An IPv4 block.
    Cidr4(Ipv4Cidr),
    /// An IPv6 block.
    Cidr6(Ipv6Cidr),
    /// Every block of a managed prefix list.
    PrefixList(PrefixListId),
    /// The private IPs of the ENIs that have this group attached, if the group
    /// is in the rule's VPC or an actively peered one (else "stale": nothing).
    Group(SgId),
}

/// A network interface: where an instance plugs into a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniSpec {
    /// Its id.
    pub id: EniId,
    /// The subnet it is in (which gives its VPC).
    pub subnet: SubnetId,
    /// The appliance port its traffic arrives on.
    pub port: u16,
    /// The 802.1Q VLAN on that port, if tagged.
    pub vlan: Option<u16>,
    /// Its MAC; (port, vlan, mac) identifies the ENI on receive.
    pub mac: [u8; 6],
    /// Its private addresses, all inside its subnet.
    pub private_ips: Vec<IpAddr>,
    /// The attached groups (SEMANTICS.md: 1..5, at most 16; none denies all).
    pub groups: Vec<SgId>,
    /// When set, packets from an address the ENI does not own are dropped.
    pub source_dest_check: bool,
    /// Its connection-tracking idle timeouts.
    pub timeouts: ConntrackTimeouts,
}

/// Per-ENI idle timeouts, in seconds (SEMANTICS.md, "Connection tracking").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackTimeouts {
    /// Established TCP, 60–432000, default 432000.
    pub tcp_established: u32,
    /// UDP seen in both directions, 60–180, default 180.
    pub udp_stream: u32,
    /// UDP seen in one direction, 30–60, default 30.
    pub udp: u32,
}

impl ConntrackTimeouts {
    /// Allowed range of `tcp_established`.
    pub const TCP_ESTABLISHED_RANGE: core::ops::RangeInclusive<u32> = 60..=432_000;
    /// Allowed range of `udp_stream`.
    pub const UDP_STREAM_RANGE: core::ops::RangeInclusive<u32> = 60..=180;
    /// Allowed range of `udp`.
    pub const UDP_RANGE: core::ops::RangeInclusive<u32> = 30..=60;

    /// Whether every value lies in its allowed range.
    pub fn is_valid(&self) -> bool {
        Self::TCP_ESTABLISHED_RANGE.contains(&self.tcp_established)
            && Self::UDP_STREAM_RANGE.contains(&self.udp_stream)
            && Self::UDP_RANGE.contains(&self.udp)
    }
}

impl Default for ConntrackTimeouts {
    fn default() -> Self {
        Self {
            tcp_established: 432_000,
            udp_stream: 180,
            udp: 30,
        }
    }
}

/// A network ACL: numbered, stateless allow/deny entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaclSpec {
    /// Its id.
    pub id: NaclId,
    /// The VPC it belongs to; only subnets of that VPC may use it.
    pub vpc: VpcId,
    /// Its entries, both directions, in any order.
    pub entries: Vec<NaclEntry>,
}

/// One numbered NACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaclEntry {
    /// 1..=32766, unique per direction; lowest first, first match decides.
    pub rule_number: u16,
    /// Outbound (true) or inbound (false).
    pub egress: bool,
    /// What protocol it matches.
    pub protocol: Protocol,
    /// Matched against the source (inbound) or destination (outbound); an
    /// entry only ever matches packets of its block's family.
    pub cidr: IpCidr,
    /// Destination ports or ICMP type/code, as for SG rules.
    pub ports: PortSpec,
    /// What a match does.
    pub action: NaclAction,
}

/// What a matching NACL entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NaclAction {
    /// Let the packet through this boundary.
    Allow,
    /// Drop the packet.
    Deny,
}

/// A VPC peering connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeeringSpec {
    /// Its id.
    pub id: PeeringId,
    /// One side.
    pub vpc_a: VpcId,
    /// The other side.
    pub vpc_b: VpcId,
    /// Only active peerings route and make cross-VPC group references match.
    pub active: bool,
}

/// A managed prefix list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixListSpec {
    /// Its id.
    pub id: PrefixListId,
    /// Its blocks, of either family.
    pub cidrs: Vec<IpCidr>,
}

/// The appliance's way out of every VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkSpec {
    /// The port it is on.
    pub port: u16,
    /// Its VLAN on that port, if tagged.
    pub vlan: Option<u16>,
    /// The MAC of the next hop behind the uplink.
    pub mac: [u8; 6],
}

impl Peer {
    /// The CIDR if the peer is a single block.
    pub fn cidr(&self) -> Option<IpCidr> {
        match self {
            Self::Cidr4(c) => Some(IpCidr::V4(*c)),
            Self::Cidr6(c) => Some(IpCidr::V6(*c)),
            _ => None,
        }
    }
}
