//! `[[subnet]]`: blocks inside their VPC's, no overlaps, one ACL each.

use std::collections::BTreeMap;

use palisade_policy::{IpCidr, NaclId, SubnetId};

use super::{AclAssociations, Checker, SubnetInfo};
use crate::config::raw;
use crate::config::{DEFAULT_NAME, Subnet};
use crate::model::Ec2ErrorCode;
use crate::model::blocks_overlap;
use crate::model::ids::{ObjectKind, object_id, scoped_key};
use crate::model::{IPV4_PREFIX_RANGE, SUBNET_IPV6_PREFIX_RANGE, is_subnet_ipv6_prefix};

impl Checker {
    pub(super) fn subnets(
        &mut self,
        raws: &[raw::RawSubnet],
        acl_of_subnet: &AclAssociations,
    ) -> (Vec<Subnet>, BTreeMap<String, SubnetInfo>) {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        let mut infos: BTreeMap<String, SubnetInfo> = BTreeMap::new();
        // Per VPC: (key, block) of each subnet, for the overlap check.
        let mut blocks: BTreeMap<usize, Vec<(String, IpCidr)>> = BTreeMap::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("subnet[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "subnet").is_none()
            {
                continue;
            }
            let Some(vpc) = self.vpc_ref(&format!("{key}.vpc"), &raw.vpc) else {
                continue;
            };
            let vpc_cidr = self.vpcs[vpc].cidr;
            let vpc_ipv6 = self.vpcs[vpc].ipv6;
            let cidr = self.cidr_v4(&format!("{key}.cidr"), &raw.cidr);
            if let Some(c) = cidr {
                if !IPV4_PREFIX_RANGE.contains(&c.prefix_len()) {
                    self.report(
                        format!("{key}.cidr"),
                        format!("{c}: a subnet's IPv4 block must be between /16 and /28"),
                    );
                }
                if let Some(v) = vpc_cidr.filter(|v| !v.contains_cidr(&c)) {
                    self.report(
                        format!("{key}.cidr"),
                        format!(
                            "The CIDR '{c}' is invalid: it is not within VPC {:?}'s {v} ({code})",
                            raw.vpc,
                            code = Ec2ErrorCode::InvalidSubnetRange
                        ),
                    );
                }
            }
            let ipv6 = self.ipv6_block(
                &key,
                raw.ipv6_cidr.as_ref(),
                "subnet",
                &SUBNET_IPV6_PREFIX_RANGE,
                is_subnet_ipv6_prefix,
            );
            if let Some(c) = ipv6 {
                match vpc_ipv6 {
                    None if self.vpcs[vpc].cidr.is_some() => self.report(
                        format!("{key}.ipv6_cidr"),
                        format!("VPC {:?} has no IPv6 block (ipv6_cidr)", raw.vpc),
                    ),
                    Some(v) if !v.contains_cidr(&c) => self.report(
                        format!("{key}.ipv6_cidr"),
                        format!(
                            "The CIDR '{c}' is invalid: it is not within VPC {:?}'s {v} ({code})",
                            raw.vpc,
                            code = Ec2ErrorCode::InvalidSubnetRange
                        ),
                    ),
                    _ => {}
                }
            }
            for block in cidr.map(IpCidr::V4).into_iter().chain(ipv6.map(IpCidr::V6)) {
                let field = if block.is_v4() { "cidr" } else { "ipv6_cidr" };
                let others = blocks.entry(vpc).or_default();
                if let Some((other, other_block)) =
                    others.iter().find(|(_, b)| blocks_overlap(*b, block))
                {
                    let message = format!(
                        "{block} overlaps {other}'s {other_block} in the same VPC ({code})",
                        code = Ec2ErrorCode::InvalidSubnetConflict
                    );
                    self.report(format!("{key}.{field}"), message);
                } else {
                    others.push((key.clone(), block));
                }
            }
            let vpc_name = self.vpcs[vpc].name.clone();
            let by_acl_list = acl_of_subnet.get(&raw.name);
            let network_acl = match (&raw.network_acl, by_acl_list) {
                (Some(name), listed) => {
                    let scoped = scoped_key(&vpc_name, name);
                    let found = self.ids.get(&(ObjectKind::NetworkAcl, scoped)).cloned();
                    match (found, listed) {
                        (None, _) => {
                            self.report(
                                format!("{key}.network_acl"),
                                format!("no network ACL named {name:?} in VPC {vpc_name:?}"),
                            );
                            None
                        }
                        (Some(id), Some((listed_id, _, listed_key))) if listed_id.0 != id => {
                            self.report(
                                format!("{key}.network_acl"),
                                format!(
                                    "{listed_key} associates this subnet with another ACL; a subnet has exactly one network ACL"
                                ),
                            );
                            None
                        }
                        (Some(id), _) => Some(NaclId(id)),
                    }
                }
                (None, Some((id, _, _))) => Some(id.clone()),
                (None, None) => Some(NaclId(object_id(
                    ObjectKind::NetworkAcl,
                    &scoped_key(&vpc_name, DEFAULT_NAME),
                ))),
            };
            let id = SubnetId(self.assign(ObjectKind::Subnet, &raw.name));
            infos.insert(raw.name.clone(), SubnetInfo { vpc, cidr, ipv6 });
            if let (Some(cidr), Some(network_acl)) = (cidr, network_acl) {
                out.push(Subnet {
                    name: raw.name.clone(),
                    id,
                    vpc: self.vpcs[vpc].id.clone(),
                    cidr,
                    ipv6_cidr: ipv6,
                    network_acl,
                });
            }
        }
        (out, infos)
    }
}
