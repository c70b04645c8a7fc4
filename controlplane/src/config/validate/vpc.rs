//! `[[vpc]]` and `[[peering]]`: VPC blocks and names, and the peerings
//! between them.

use std::collections::BTreeMap;

use palisade_policy::{NaclId, PeeringId, SgId, VpcId};

use super::{Checker, VpcInfo};
use crate::config::raw;
use crate::config::{DEFAULT_NAME, Peering, Vpc};
use crate::model::Ec2ErrorCode;
use crate::model::ids::{ObjectKind, scoped_key};
use crate::model::{IPV4_PREFIX_RANGE, VPC_IPV6_PREFIX_RANGE, is_vpc_ipv6_prefix};

impl Checker {
    pub(super) fn vpcs(&mut self, raws: &[raw::RawVpc]) -> Vec<Vpc> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("vpc[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "VPC").is_none()
            {
                continue;
            }
            let cidr = self.cidr_v4(&format!("{key}.cidr"), &raw.cidr);
            if let Some(c) = cidr {
                if !IPV4_PREFIX_RANGE.contains(&c.prefix_len()) {
                    self.report(
                        format!("{key}.cidr"),
                        format!("{c}: a VPC's IPv4 block must be between /16 and /28"),
                    );
                }
            }
            let ipv6 = self.ipv6_block(
                &key,
                raw.ipv6_cidr.as_ref(),
                "VPC",
                &VPC_IPV6_PREFIX_RANGE,
                is_vpc_ipv6_prefix,
            );
            let id = VpcId(self.assign(ObjectKind::Vpc, &raw.name));
            let default_group = SgId(self.assign(
                ObjectKind::SecurityGroup,
                &scoped_key(&raw.name, DEFAULT_NAME),
            ));
            let default_network_acl =
                NaclId(self.assign(ObjectKind::NetworkAcl, &scoped_key(&raw.name, DEFAULT_NAME)));
            self.vpc_index.insert(raw.name.clone(), self.vpcs.len());
            self.vpcs.push(VpcInfo {
                name: raw.name.clone(),
                id: id.clone(),
                cidr,
                ipv6,
            });
            if let Some(cidr) = cidr {
                out.push(Vpc {
                    name: raw.name.clone(),
                    id,
                    cidr,
                    ipv6_cidr: ipv6,
                    default_group,
                    default_network_acl,
                });
            }
        }
        out
    }

    pub(super) fn vpc_ref(&mut self, key: &str, name: &str) -> Option<usize> {
        let found = self.vpc_index.get(name).copied();
        if found.is_none() {
            self.report(
                key,
                format!(
                    "no VPC named {name:?} ({code})",
                    code = Ec2ErrorCode::InvalidVpcIdNotFound
                ),
            );
        }
        found
    }

    pub(super) fn peerings(&mut self, raws: &[raw::RawPeering]) -> Vec<Peering> {
        let mut seen = BTreeMap::new();
        let mut pairs = BTreeMap::new();
        let mut out = Vec::new();
        for (index, raw) in raws.iter().enumerate() {
            let key = format!("peering[{index}]");
            if !self.name(&format!("{key}.name"), &raw.name)
                || self.unique(&mut seen, &key, &raw.name, "peering").is_none()
            {
                continue;
            }
            let [a, b] = raw.vpcs.as_slice() else {
                self.report(
                    format!("{key}.vpcs"),
                    format!("must name exactly two VPCs, got {}", raw.vpcs.len()),
                );
                continue;
            };
            let a_index = self.vpc_ref(&format!("{key}.vpcs[0]"), a);
            let b_index = self.vpc_ref(&format!("{key}.vpcs[1]"), b);
            let (Some(a_index), Some(b_index)) = (a_index, b_index) else {
                continue;
            };
            if a_index == b_index {
                self.report(format!("{key}.vpcs"), "a VPC cannot be peered with itself");
                continue;
            }
            let pair = (a_index.min(b_index), a_index.max(b_index));
            if let Some(first) = pairs.insert(pair, key.clone()) {
                self.report(
                    format!("{key}.vpcs"),
                    format!("VPCs {a:?} and {b:?} are already peered by {first}"),
                );
                continue;
            }
            self.peered.insert((a_index, b_index));
            self.peered.insert((b_index, a_index));
            out.push(Peering {
                name: raw.name.clone(),
                id: PeeringId(self.assign(ObjectKind::Peering, &raw.name)),
                vpc_a: self.vpcs[a_index].id.clone(),
                vpc_b: self.vpcs[b_index].id.clone(),
                active: raw.active,
            });
        }
        out
    }
}
