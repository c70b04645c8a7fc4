//! From a validated [`Config`] to the data plane's [`PolicySpec`].
//!
//! The last step before `PolicySnapshot::compile`: everything has been
//! checked and every default applied by validation, so all that is left is
//! what only the running appliance knows — which DPDK port id each port
//! name of the profile got — and copying the objects into the spec's plain
//! shape.

use palisade_config_check::{Problem, locate_and_order};
use palisade_policy::{
    EniSpec, NaclSpec, PeeringSpec, PolicySpec, PrefixListSpec, SecurityGroupSpec, SubnetSpec,
    UplinkSpec, VpcSpec,
};

use super::Config;
use super::error::ConfigError;

impl Config {
    /// The policy this configuration describes, with each ENI's (and the
    /// uplink's) port name resolved by `port_id` — typically a lookup in
    /// the ports the DPDK profile brought up. Port names `port_id` does not
    /// know are reported together, each at its key and line.
    pub fn to_spec(
        &self,
        port_id: &dyn Fn(&str) -> Option<u16>,
    ) -> Result<PolicySpec, ConfigError> {
        let mut problems = Vec::new();
        let mut resolve = |key: String, name: &str| {
            let id = port_id(name);
            if id.is_none() {
                problems.push(Problem::new(
                    key,
                    format!("no port named {name:?} in the DPDK profile"),
                ));
            }
            id.unwrap_or_default()
        };
        let enis: Vec<EniSpec> = self
            .enis
            .iter()
            .enumerate()
            .map(|(index, eni)| EniSpec {
                id: eni.id.clone(),
                subnet: eni.subnet.clone(),
                port: resolve(format!("eni[{index}].port"), &eni.port),
                vlan: eni.vlan,
                mac: eni.mac,
                private_ips: eni.private_ips.clone(),
                groups: eni.groups.clone(),
                source_dest_check: eni.source_dest_check,
                timeouts: eni.timeouts,
            })
            .collect();
        let uplink = self.uplink.as_ref().map(|up| UplinkSpec {
            port: resolve("uplink.port".to_owned(), &up.port),
            vlan: up.vlan,
            mac: up.mac,
        });
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                origin: self.origin.clone(),
                problems: locate_and_order(&self.source, problems),
            });
        }
        Ok(PolicySpec {
            router_mac: self.appliance.router_mac,
            vpcs: self
                .vpcs
                .iter()
                .map(|v| VpcSpec {
                    id: v.id.clone(),
                    ipv4_cidr: v.cidr,
                    ipv6_cidr: v.ipv6_cidr,
                })
                .collect(),
            subnets: self
                .subnets
                .iter()
                .map(|s| SubnetSpec {
                    id: s.id.clone(),
                    vpc: s.vpc.clone(),
                    ipv4_cidr: s.cidr,
                    ipv6_cidr: s.ipv6_cidr,
                    nacl: s.network_acl.clone(),
                })
                .collect(),
            security_groups: self
                .security_groups
                .iter()
                .map(|g| SecurityGroupSpec {
                    id: g.id.clone(),
                    vpc: g.vpc.clone(),
                    ingress: g.ingress.clone(),
                    egress: g.egress.clone(),
                })
                .collect(),
            enis,
            nacls: self
                .network_acls
                .iter()
                .map(|n| NaclSpec {
                    id: n.id.clone(),
                    vpc: n.vpc.clone(),
                    entries: n.entries.clone(),
                })
                .collect(),
            peerings: self
                .peerings
                .iter()
                .map(|p| PeeringSpec {
                    id: p.id.clone(),
                    vpc_a: p.vpc_a.clone(),
                    vpc_b: p.vpc_b.clone(),
                    active: p.active,
                })
                .collect(),
            prefix_lists: self
                .prefix_lists
                .iter()
                .map(|p| PrefixListSpec {
                    id: p.id.clone(),
                    cidrs: p.cidrs.clone(),
                })
                .collect(),
            uplink,
        })
    }
}
