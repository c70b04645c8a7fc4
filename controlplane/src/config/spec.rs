//! From a validated [`Config`] to the data plane's [`PolicySpec`].
//!
//! The last step before `PolicySnapshot::compile`: everything has been
//! checked and every default applied by validation, so all that is left is
//! what only the running appliance knows — which DPDK port id each port
//! name of the profile got. The spec itself is the model's
//! ([`Model::to_spec`]), the one path to a spec, so that a file and a store
//! holding the same objects compile to the same policy.

use palisade_config_check::{Problem, locate_and_order};
use palisade_policy::{PolicySpec, UplinkSpec};

use super::Config;
use super::error::ConfigError;
use crate::model::Model;

impl Config {
    /// Whether every ENI's (and the uplink's) port name is one `port_id`
    /// knows; those it does not are reported together, each at its key and
    /// line. What start-up and reload check before the store takes the
    /// file, without building a spec nobody uses.
    pub fn check_ports(&self, port_id: &dyn Fn(&str) -> Option<u16>) -> Result<(), ConfigError> {
        self.resolve_uplink(port_id).map(drop)
    }

    /// The policy this configuration describes, with each ENI's (and the
    /// uplink's) port name resolved by `port_id` — typically a lookup in
    /// the ports the DPDK profile brought up. Port names `port_id` does not
    /// know are reported together, each at its key and line.
    pub fn to_spec(
        &self,
        port_id: &dyn Fn(&str) -> Option<u16>,
    ) -> Result<PolicySpec, ConfigError> {
        let uplink = self.resolve_uplink(port_id)?;
        let mut spec = Model::from_config(self).to_spec(port_id);
        spec.uplink = uplink;
        Ok(spec)
    }

    /// The uplink with its port resolved, once every port name resolves.
    fn resolve_uplink(
        &self,
        port_id: &dyn Fn(&str) -> Option<u16>,
    ) -> Result<Option<UplinkSpec>, ConfigError> {
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
        for (index, eni) in self.enis.iter().enumerate() {
            resolve(format!("eni[{index}].port"), &eni.port);
        }
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
        Ok(uplink)
    }
}
