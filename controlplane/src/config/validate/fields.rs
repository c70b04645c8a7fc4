//! The checks of single fields every object shares: names, blocks, MACs,
//! VLANs, protocols, ports, ICMP types and codes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use palisade_policy::{CidrError, Ipv4Cidr, Ipv6Cidr, PortSpec, Protocol};

use super::Checker;
use crate::config::raw::RawProtocol;
use crate::model::MAX_TEXT;

impl Checker {
    pub(super) fn nonempty(&mut self, key: &str, text: &str) {
        if text.trim().is_empty() {
            self.report(key, "must not be empty");
        }
    }

    /// Checks an object name; `false` if it cannot be used as one.
    pub(super) fn name(&mut self, key: &str, name: &str) -> bool {
        if name.is_empty() {
            self.report(key, "must not be empty");
            false
        } else if name.chars().count() > MAX_TEXT {
            self.report(key, format!("is longer than {MAX_TEXT} characters"));
            false
        } else if name.contains('/') {
            self.report(
                key,
                format!(
                    "{name:?} contains '/', which separates a VPC's name from a group's in references"
                ),
            );
            false
        } else {
            true
        }
    }

    /// Reports the second and later uses of a name within one scope.
    pub(super) fn unique<'a>(
        &mut self,
        seen: &mut BTreeMap<String, String>,
        key: &str,
        name: &'a str,
        kind: &str,
    ) -> Option<&'a str> {
        if let Some(first) = seen.get(name) {
            let message = format!("duplicate {kind} name {name:?}, first used at {first}");
            self.report(format!("{key}.name"), message);
            None
        } else {
            seen.insert(name.to_owned(), key.to_owned());
            Some(name)
        }
    }

    pub(super) fn cidr_v4(&mut self, key: &str, text: &str) -> Option<Ipv4Cidr> {
        if text.contains(':') {
            self.report(
                key,
                format!("{text:?} is an IPv6 block; write it as ipv6_cidr"),
            );
            return None;
        }
        text.parse::<Ipv4Cidr>()
            .map_err(|error| self.report(key, cidr_message(text, &error)))
            .ok()
    }

    pub(super) fn cidr_v6(&mut self, key: &str, text: &str) -> Option<Ipv6Cidr> {
        if !text.contains(':') {
            self.report(key, format!("{text:?} is an IPv4 block; write it as cidr"));
            return None;
        }
        text.parse::<Ipv6Cidr>()
            .map_err(|error| self.report(key, cidr_message(text, &error)))
            .ok()
    }

    /// An object's optional `ipv6_cidr`: a block of a size AWS gives a
    /// `what` (`sizes`, in steps of 4; `fits` says whether a length is one).
    pub(super) fn ipv6_block(
        &mut self,
        key: &str,
        text: Option<&String>,
        what: &str,
        sizes: &core::ops::RangeInclusive<u8>,
        fits: fn(u8) -> bool,
    ) -> Option<Ipv6Cidr> {
        let key = format!("{key}.ipv6_cidr");
        let block = self.cidr_v6(&key, text?)?;
        if !fits(block.prefix_len()) {
            self.report(
                key,
                format!(
                    "{block}: a {what}'s IPv6 block must be /{} to /{} in steps of 4",
                    sizes.start(),
                    sizes.end()
                ),
            );
        }
        Some(block)
    }

    pub(super) fn mac(&mut self, key: &str, text: &str) -> Option<[u8; 6]> {
        let Some(mac) = parse_mac(text) else {
            self.report(
                key,
                format!("{text:?} is not a MAC address (six hex pairs: \"02:00:00:00:00:01\")"),
            );
            return None;
        };
        if mac[0] & 1 != 0 {
            self.report(
                key,
                format!("{text} is a multicast address; it must be unicast"),
            );
            return None;
        }
        if mac == [0; 6] {
            self.report(key, "00:00:00:00:00:00 is not a usable address");
            return None;
        }
        Some(mac)
    }

    pub(super) fn vlan(&mut self, key: &str, vlan: i64) -> Option<u16> {
        match u16::try_from(vlan) {
            Ok(v) if (1..=4094).contains(&v) => Some(v),
            _ => {
                self.report(
                    key,
                    format!(
                        "VLAN {vlan} is outside 1..4094 (0 is priority tagging, 4095 is reserved)"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn protocol(&mut self, key: &str, raw: &RawProtocol) -> Option<Protocol> {
        let parsed = match raw {
            RawProtocol::Text(text) => match text.as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                "icmp" => Some(Protocol::Icmp),
                "icmpv6" => Some(Protocol::Icmpv6),
                "-1" | "all" => Some(Protocol::All),
                other => other.parse::<i64>().ok().and_then(protocol_number),
            },
            RawProtocol::Number(number) => protocol_number(*number),
        };
        if parsed.is_none() {
            let shown = match raw {
                RawProtocol::Text(text) => format!("{text:?}"),
                RawProtocol::Number(number) => number.to_string(),
            };
            self.report(
                key,
                format!(
                    "unknown protocol {shown}; expected \"tcp\", \"udp\", \"icmp\", \"icmpv6\", \"-1\" (all) or a number 0..255"
                ),
            );
        }
        parsed
    }

    /// Reads a `from_port`/`to_port` pair for tcp/udp: both required, each
    /// 0..65535, from <= to.
    pub(super) fn port_range(
        &mut self,
        key: &str,
        protocol: Protocol,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Option<PortSpec> {
        let name = protocol_name(protocol);
        let (Some(from), Some(to)) = (from, to) else {
            let missing = if from.is_none() {
                "from_port"
            } else {
                "to_port"
            };
            self.report(
                format!("{key}.{missing}"),
                format!("{name} needs from_port and to_port"),
            );
            return None;
        };
        let mut port = |field: &str, value: i64| {
            let port = u16::try_from(value).ok();
            if port.is_none() {
                self.report(
                    format!("{key}.{field}"),
                    format!("port {value} is outside 0..65535"),
                );
            }
            port
        };
        let (from, to) = (port("from_port", from)?, port("to_port", to)?);
        if from > to {
            self.report(
                format!("{key}.from_port"),
                format!("from_port {from} is above to_port {to}"),
            );
            return None;
        }
        Some(PortSpec::Range { from, to })
    }

    /// Reads an ICMP type/code pair written under `type_key`/`code_key`:
    /// both or neither (all), each -1 (all) or 0..255, a type of -1 only
    /// with a code of -1.
    pub(super) fn icmp_type_code(
        &mut self,
        key: &str,
        (type_key, code_key): (&str, &str),
        icmp_type: Option<i64>,
        code: Option<i64>,
    ) -> Option<PortSpec> {
        let all = PortSpec::Icmp {
            icmp_type: None,
            code: None,
        };
        let (icmp_type, code) = match (icmp_type, code) {
            (None, None) => return Some(all),
            (Some(t), Some(c)) => (t, c),
            (t, _) => {
                let missing = if t.is_none() { type_key } else { code_key };
                self.report(
                    format!("{key}.{missing}"),
                    format!(
                        "give both {type_key} (ICMP type) and {code_key} (ICMP code), -1 for all, or neither"
                    ),
                );
                return None;
            }
        };
        let mut field = |field: &str, value: i64| -> Option<Option<u8>> {
            if value == -1 {
                Some(None)
            } else if let Ok(v) = u8::try_from(value) {
                Some(Some(v))
            } else {
                self.report(
                    format!("{key}.{field}"),
                    format!("{value} is not -1 (all) or an ICMP value 0..255"),
                );
                None
            }
        };
        let (icmp_type, code) = (field(type_key, icmp_type)?, field(code_key, code)?);
        if icmp_type.is_none() && code.is_some() {
            self.report(
                format!("{key}.{code_key}"),
                format!("an ICMP type of -1 (all types) needs a {code_key} of -1 (all codes)"),
            );
            return None;
        }
        Some(PortSpec::Icmp { icmp_type, code })
    }
}

pub(super) fn protocol_number(number: i64) -> Option<Protocol> {
    if number == -1 {
        return Some(Protocol::All);
    }
    let n = u8::try_from(number).ok()?;
    // 6, 17, 1 and 58 mean the named protocols; one spelling per protocol
    // keeps duplicate detection and rule comparison honest.
    Some(match n {
        Protocol::TCP => Protocol::Tcp,
        Protocol::UDP => Protocol::Udp,
        Protocol::ICMP => Protocol::Icmp,
        Protocol::ICMPV6 => Protocol::Icmpv6,
        other => Protocol::Number(other),
    })
}

pub(super) fn protocol_name(protocol: Protocol) -> String {
    match protocol {
        Protocol::All => "-1".to_owned(),
        Protocol::Tcp => "tcp".to_owned(),
        Protocol::Udp => "udp".to_owned(),
        Protocol::Icmp => "icmp".to_owned(),
        Protocol::Icmpv6 => "icmpv6".to_owned(),
        Protocol::Number(n) => format!("protocol {n}"),
    }
}

/// EC2's wording ("The CIDR '…' is invalid"), with the reason and, for host
/// bits, the block the user probably meant.
pub(super) fn cidr_message(text: &str, error: &CidrError) -> String {
    let hint = match error {
        CidrError::HostBitsSet(_) => suggest_network(text)
            .map(|block| format!(" (did you mean {block}?)"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!("The CIDR '{text}' is invalid: {error}{hint}")
}

/// The network block of `ADDRESS/LENGTH`, host bits cleared.
pub(super) fn suggest_network(text: &str) -> Option<String> {
    let (addr, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    Some(match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Ipv4Cidr::truncating(a, len).to_string(),
        IpAddr::V6(a) => Ipv6Cidr::truncating(a, len).to_string(),
    })
}

/// `aa:bb:cc:dd:ee:ff`, hex digits of either case.
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for octet in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *octet = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|octet| format!("{octet:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) fn show_vlan(vlan: Option<u16>) -> String {
    vlan.map_or_else(|| "untagged".to_owned(), |v| v.to_string())
}
