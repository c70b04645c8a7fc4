//! The store the API benchmark runs against, written as a configuration
//! file: palisade seeds its empty store from it at the first start, which
//! takes seconds where creating 2,500 groups and their rules through the
//! API would take minutes and measure nothing of interest.
//!
//! The world is shaped like issue #3's compile benchmark, scaled by
//! [`WorldShape`]: one VPC, one /16 subnet, `groups` security groups
//! (the VPC's `default` counted) with `rules` inbound rules each — CIDR
//! rules on distinct ports, every tenth one a group peer (so an Authorize
//! touches a group other ENIs' classifiers refer to), and one "filter"
//! rule per group on a port shared by [`FILTER_GROUPS`] groups, which the
//! filtered Describe looks for — and `enis` network interfaces with two
//! groups each.

use std::fmt::Write as _;

/// How many groups share one filter port: the filtered Describe answers
/// this many.
pub const FILTER_GROUPS: usize = 10;
/// The first filter port; group `k` has `FILTER_PORT_BASE + k / FILTER_GROUPS`.
pub const FILTER_PORT_BASE: u16 = 20_000;
/// The ports the benchmark authorizes (and revokes) start here, above every
/// port of the seeded rules.
pub const BENCH_PORT_BASE: u16 = 30_000;
/// The most groups the filter ports have room for.
pub const MAX_GROUPS: usize = (BENCH_PORT_BASE - FILTER_PORT_BASE) as usize * FILTER_GROUPS;
/// The name of the VPC's subnet.
pub const VPC_NAME: &str = "bench";

/// The size of the seeded world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldShape {
    /// Security groups in the VPC, its `default` group counted.
    pub groups: usize,
    /// Inbound rules of each group but `default` (the filter rule counted).
    pub rules: usize,
    /// Network interfaces, two groups each.
    pub enis: usize,
}

/// Why a shape cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorldError {
    /// Fewer than two groups leave nothing but `default` to change.
    #[error("need at least 2 groups (the VPC's default and one more), got {0}")]
    TooFewGroups(usize),
    /// Rules must leave room under the 60-rule quota for the benchmark's
    /// own, and include the filter rule.
    #[error(
        "rules per group must be 1..=59 (one is the filter rule; one slot stays free for the benchmark's Authorize), got {0}"
    )]
    Rules(usize),
    /// The /16 subnet has 65,531 usable addresses.
    #[error("at most 65,531 ENIs fit the benchmark's /16 subnet, got {0}")]
    TooManyEnis(usize),
    /// The filter ports would run into the benchmark's ports.
    #[error("at most {MAX_GROUPS} groups (filter ports below {BENCH_PORT_BASE}), got {0}")]
    TooManyGroups(usize),
}

impl WorldShape {
    /// Checks the shape fits the quotas and the address plan.
    pub fn validate(&self) -> Result<(), WorldError> {
        if self.groups < 2 {
            return Err(WorldError::TooFewGroups(self.groups));
        }
        if self.groups > MAX_GROUPS {
            return Err(WorldError::TooManyGroups(self.groups));
        }
        if !(1..=59).contains(&self.rules) {
            return Err(WorldError::Rules(self.rules));
        }
        if self.enis > 65_531 {
            return Err(WorldError::TooManyEnis(self.enis));
        }
        Ok(())
    }

    /// Groups other than `default`, which the benchmark names `g0`, `g1`, ….
    pub fn named_groups(&self) -> usize {
        self.groups - 1
    }

    /// The filter port of named group `k`.
    pub fn filter_port(k: usize) -> u16 {
        FILTER_PORT_BASE + (k / FILTER_GROUPS) as u16
    }

    /// The configuration file (docs/CONFIG.md) describing this world on
    /// `profile`'s port `port`, with the API's keys.
    pub fn config_toml(
        &self,
        profile: &str,
        port: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<String, WorldError> {
        self.validate()?;
        let named = self.named_groups();
        let mut text = format!(
            "# Written by `palisade-perf api-config`: the world of `palisade-perf api-latency`.\n\
             [appliance]\n\
             profile = {profile:?}\n\
             access_key_id = {access_key_id:?}\n\
             secret_access_key = {secret_access_key:?}\n\
             # Exactly the world asked for: no account default VPC beside it.\n\
             default_vpc = false\n\
             \n\
             [quotas]\n\
             groups_per_vpc = {groups}\n\
             \n\
             [[vpc]]\n\
             name = \"{VPC_NAME}\"\n\
             cidr = \"10.0.0.0/16\"\n\
             \n\
             [[subnet]]\n\
             name = \"{VPC_NAME}\"\n\
             vpc = \"{VPC_NAME}\"\n\
             cidr = \"10.0.0.0/16\"\n",
            groups = self.groups.max(2500),
        );
        // Writing to a String cannot fail: the results are ignored below.
        for k in 0..named {
            let _ = write!(
                text,
                "\n[[security_group]]\nname = \"g{k}\"\nvpc = \"{VPC_NAME}\"\n"
            );
            let _ = write!(
                text,
                "\n[[security_group.ingress]]\nprotocol = \"tcp\"\nfrom_port = {p}\nto_port = {p}\ncidr = \"0.0.0.0/0\"\n",
                p = Self::filter_port(k)
            );
            for j in 1..self.rules {
                let port = 1000 + j;
                if j % 10 == 0 {
                    let peer = (k + j) % named;
                    let _ = write!(
                        text,
                        "\n[[security_group.ingress]]\nprotocol = \"tcp\"\nfrom_port = {port}\nto_port = {port}\ngroup = \"g{peer}\"\n"
                    );
                } else {
                    let _ = write!(
                        text,
                        "\n[[security_group.ingress]]\nprotocol = \"tcp\"\nfrom_port = {port}\nto_port = {port}\ncidr = \"10.{}.{}.0/24\"\n",
                        100 + j,
                        k % 256
                    );
                }
            }
        }
        for i in 0..self.enis {
            let first = i % named;
            let second = (i * 7 + 3) % named;
            let groups = if first == second {
                format!("[\"g{first}\"]")
            } else {
                format!("[\"g{first}\", \"g{second}\"]")
            };
            let address = 4 + i as u32;
            let _ = write!(
                text,
                "\n[[eni]]\nname = \"e{i}\"\nsubnet = \"{VPC_NAME}\"\nport = {port:?}\n\
                 mac = \"02:42:00:00:{:02x}:{:02x}\"\nips = [\"10.0.{}.{}\"]\ngroups = {groups}\n",
                (i >> 8) & 0xff,
                i & 0xff,
                address >> 8,
                address & 0xff,
            );
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use palisade_controlplane::config::{Config, ObjectKind};

    use super::*;

    #[test]
    fn a_generated_world_is_a_valid_configuration_of_the_asked_size() {
        let shape = WorldShape {
            groups: 40,
            rules: 25,
            enis: 300,
        };
        let text = shape
            .config_toml("dpdk-config/null.toml", "null0", "AKIDBENCH", "secret")
            .unwrap();
        let config = Config::from_toml_str(&text, "generated").expect("valid configuration");
        let spec = config
            .to_spec(&|name| (name == "null0").then_some(0))
            .expect("the port resolves and the world compiles to a spec");
        // The VPC's default group comes on top of the named ones.
        assert_eq!(spec.security_groups.len(), 40);
        assert_eq!(spec.enis.len(), 300);
        let g7_id = config
            .id_of(ObjectKind::SecurityGroup, "g7")
            .expect("group g7");
        let g7 = spec
            .security_groups
            .iter()
            .find(|g| g.id.0 == g7_id)
            .expect("group g7 in the spec");
        assert_eq!(g7.ingress.len(), 25);
    }

    #[test]
    fn shapes_outside_the_quotas_are_refused_before_writing() {
        let ok = WorldShape {
            groups: 2500,
            rules: 50,
            enis: 10_000,
        };
        assert_eq!(ok.validate(), Ok(()));
        for (shape, error) in [
            (WorldShape { groups: 1, ..ok }, WorldError::TooFewGroups(1)),
            (WorldShape { rules: 60, ..ok }, WorldError::Rules(60)),
            (WorldShape { rules: 0, ..ok }, WorldError::Rules(0)),
            (
                WorldShape { enis: 65_532, ..ok },
                WorldError::TooManyEnis(65_532),
            ),
            (
                WorldShape {
                    groups: 100_001,
                    ..ok
                },
                WorldError::TooManyGroups(100_001),
            ),
        ] {
            assert_eq!(shape.validate(), Err(error));
        }
    }
}
