//! `[[eni]]`: addresses inside their subnet, groups of their VPC, timeouts,
//! and no two interfaces one (port, VLAN, MAC).

use std::collections::BTreeMap;
use std::net::IpAddr;

use palisade_policy::{ConntrackTimeouts, EniId, IpCidr, SgId, SubnetId};

use super::fields::{format_mac, show_vlan};
use super::{Checker, SubnetInfo};
use crate::config::raw::RawEni;
use crate::config::{DEFAULT_NAME, NetworkInterface, Uplink};
use crate::model::Ec2ErrorCode;
use crate::model::ids::{ObjectKind, object_id, scoped_key};
use crate::model::is_reserved;

impl Checker {
    pub(super) fn enis(
        &mut self,
        raws: &[RawEni],
        subnets: &BTreeMap<String, SubnetInfo>,
    ) -> Vec<NetworkInterface> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        // (vpc, address) → the key of the ENI address that owns it.
        let mut owners: BTreeMap<(usize, IpAddr), String> = BTreeMap::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("eni[{index}]");
            let named = self.name(&format!("{key}.name"), &raw.name)
                && self
                    .unique(&mut seen, &key, &raw.name, "network interface")
                    .is_some();
            self.nonempty(&format!("{key}.port"), &raw.port);
            let vlan = raw.vlan.and_then(|v| self.vlan(&format!("{key}.vlan"), v));
            let vlan_ok = raw.vlan.is_none() || vlan.is_some();
            let mac = self.mac(&format!("{key}.mac"), &raw.mac);
            let Some(subnet) = subnets.get(&raw.subnet) else {
                self.report(
                    format!("{key}.subnet"),
                    format!(
                        "no subnet named {:?} ({code})",
                        raw.subnet,
                        code = Ec2ErrorCode::InvalidSubnetIdNotFound
                    ),
                );
                continue;
            };
            let vpc = subnet.vpc;
            let private_ips = self.eni_ips(&key, raw, subnet, &mut owners);
            let groups = self.eni_groups(&key, vpc, raw.groups.as_deref());
            let timeouts = self.timeouts(&key, raw);
            let (true, Some(mac), Some(private_ips), Some(groups), Some(timeouts), true) =
                (named, mac, private_ips, groups, timeouts, vlan_ok)
            else {
                continue;
            };
            out.push(NetworkInterface {
                name: raw.name.clone(),
                id: EniId(self.assign(ObjectKind::NetworkInterface, &raw.name)),
                subnet: SubnetId(object_id(ObjectKind::Subnet, &raw.subnet)),
                port: raw.port.clone(),
                vlan,
                mac,
                private_ips,
                groups,
                source_dest_check: raw.source_dest_check,
                timeouts,
            });
        }
        out
    }

    pub(super) fn eni_ips(
        &mut self,
        key: &str,
        raw: &RawEni,
        subnet: &SubnetInfo,
        owners: &mut BTreeMap<(usize, IpAddr), String>,
    ) -> Option<Vec<IpAddr>> {
        let mut ok = true;
        let mut ips = Vec::new();
        for (i, text) in raw.ips.iter().enumerate() {
            let ip_key = format!("{key}.ips[{i}]");
            let Ok(ip) = text.parse::<IpAddr>() else {
                self.report(ip_key, format!("{text:?} is not an IP address"));
                ok = false;
                continue;
            };
            let block = match ip {
                IpAddr::V4(_) => subnet.cidr.map(IpCidr::V4),
                IpAddr::V6(_) => subnet.ipv6.map(IpCidr::V6),
            };
            let Some(block) = block else {
                if ip.is_ipv6() && subnet.cidr.is_some() {
                    self.report(
                        ip_key,
                        format!("{ip} is IPv6 but subnet {:?} has no ipv6_cidr", raw.subnet),
                    );
                }
                ok = false;
                continue;
            };
            if !block.contains(ip) {
                self.report(
                    ip_key,
                    format!(
                        "{ip} is not in subnet {:?}'s {block} ({code})",
                        raw.subnet,
                        code = Ec2ErrorCode::InvalidParameterValue
                    ),
                );
                ok = false;
                continue;
            }
            if is_reserved(block, ip) {
                self.report(
                    ip_key,
                    format!(
                        "{ip} is reserved by AWS: the first four addresses and the last one of {block} cannot be assigned"
                    ),
                );
                ok = false;
                continue;
            }
            if let Some(first) = owners.get(&(subnet.vpc, ip)) {
                self.report(
                    ip_key,
                    format!(
                        "{ip} is already assigned at {first} ({code})",
                        code = Ec2ErrorCode::InvalidIpAddressInUse
                    ),
                );
                ok = false;
                continue;
            }
            owners.insert((subnet.vpc, ip), ip_key);
            ips.push(ip);
        }
        if ok && !ips.iter().any(IpAddr::is_ipv4) {
            self.report(
                format!("{key}.ips"),
                "needs an IPv4 address: every ENI has a primary private IPv4 address",
            );
            ok = false;
        }
        ok.then_some(ips)
    }

    pub(super) fn eni_groups(
        &mut self,
        key: &str,
        vpc: usize,
        written: Option<&[String]>,
    ) -> Option<Vec<SgId>> {
        let Some(written) = written else {
            // An ENI created without a group gets the VPC's default group.
            return Some(vec![SgId(object_id(
                ObjectKind::SecurityGroup,
                &scoped_key(&self.vpcs[vpc].name, DEFAULT_NAME),
            ))]);
        };
        if written.is_empty() {
            self.report(
                format!("{key}.groups"),
                "an ENI needs at least one group; leave the key out for the VPC's default group",
            );
            return None;
        }
        if written.len() > self.quotas.groups_per_eni {
            self.report(
                format!("{key}.groups"),
                format!(
                    "{} groups; the quota is {} per ENI (SecurityGroupsPerInterfaceLimitExceeded)",
                    written.len(),
                    self.quotas.groups_per_eni
                ),
            );
        }
        let mut ok = true;
        let mut groups: Vec<SgId> = Vec::new();
        for (i, name) in written.iter().enumerate() {
            let group_key = format!("{key}.groups[{i}]");
            match self.group_ref(&group_key, vpc, name, false) {
                Some(id) if groups.contains(&id) => {
                    self.report(group_key, format!("group {name:?} is listed twice"));
                    ok = false;
                }
                Some(id) => groups.push(id),
                None => ok = false,
            }
        }
        // Every rule of every attached group is in the ENI's classifier.
        for (egress, direction) in ["ingress", "egress"].iter().enumerate() {
            for (v6, family) in ["IPv4", "IPv6"].iter().enumerate() {
                let total: usize = groups
                    .iter()
                    .filter_map(|g| self.group_counts.get(g))
                    .map(|counts| counts[egress][v6])
                    .sum();
                if total > self.quotas.rules_per_eni {
                    let message = format!(
                        "its groups have {total} {family} {direction} rules together; the quota is {} per ENI",
                        self.quotas.rules_per_eni
                    );
                    self.report(format!("{key}.groups"), message);
                    ok = false;
                }
            }
        }
        ok.then_some(groups)
    }

    pub(super) fn timeouts(&mut self, key: &str, raw: &RawEni) -> Option<ConntrackTimeouts> {
        let defaults = ConntrackTimeouts::default();
        let mut ok = true;
        let mut field = |name: &str,
                         aws: &str,
                         value: Option<i64>,
                         default: u32,
                         range: core::ops::RangeInclusive<u32>| {
            let Some(value) = value else { return default };
            match u32::try_from(value) {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    self.report(
                        format!("{key}.conntrack.{name}"),
                        format!(
                            "{value} s is outside {}..{} s ({aws})",
                            range.start(),
                            range.end()
                        ),
                    );
                    ok = false;
                    default
                }
            }
        };
        let c = &raw.conntrack;
        let timeouts = ConntrackTimeouts {
            tcp_established: field(
                "tcp_established",
                "TcpEstablishedTimeout",
                c.tcp_established,
                defaults.tcp_established,
                ConntrackTimeouts::TCP_ESTABLISHED_RANGE,
            ),
            udp_stream: field(
                "udp_stream",
                "UdpStreamTimeout",
                c.udp_stream,
                defaults.udp_stream,
                ConntrackTimeouts::UDP_STREAM_RANGE,
            ),
            udp: field(
                "udp",
                "UdpTimeout",
                c.udp,
                defaults.udp,
                ConntrackTimeouts::UDP_RANGE,
            ),
        };
        ok.then_some(timeouts)
    }

    /// Frames are attributed to an ENI by (port, vlan, source MAC): two
    /// users of one triple, or an ENI using the router's own MAC, would
    /// make that ambiguous.
    pub(super) fn l2_collisions(
        &mut self,
        raws: &[RawEni],
        enis: &[NetworkInterface],
        uplink: Option<&Uplink>,
        router_mac: [u8; 6],
    ) {
        let mut users: BTreeMap<(String, Option<u16>, [u8; 6]), String> = BTreeMap::new();
        let by_name: BTreeMap<&str, &NetworkInterface> =
            enis.iter().map(|e| (e.name.as_str(), e)).collect();
        for (index, raw) in raws.iter().enumerate() {
            let Some(eni) = by_name.get(raw.name.as_str()) else {
                continue;
            };
            let key = format!("eni[{index}].mac");
            if eni.mac == router_mac {
                self.report(
                    key.clone(),
                    "is the router's MAC (appliance.router_mac); ENIs need their own",
                );
            }
            let triple = (eni.port.clone(), eni.vlan, eni.mac);
            if let Some(first) = users.get(&triple) {
                let message = format!(
                    "{} on port {:?} vlan {} is already used by {first}",
                    format_mac(eni.mac),
                    eni.port,
                    show_vlan(eni.vlan)
                );
                self.report(key, message);
            } else {
                users.insert(triple, format!("eni[{index}]"));
            }
        }
        if let Some(up) = uplink {
            if let Some(first) = users.get(&(up.port.clone(), up.vlan, up.mac)) {
                let message = format!(
                    "{} on port {:?} vlan {} is already used by {first}; the uplink's next hop needs its own",
                    format_mac(up.mac),
                    up.port,
                    show_vlan(up.vlan)
                );
                self.report("uplink.mac", message);
            }
        }
    }
}
