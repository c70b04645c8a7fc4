//! Small helpers the network-interface, ACL, prefix-list, peering, route
//! table and tag actions share: the id a create returned, and the
//! ids-then-filters selection every Describe does.

use crate::api::Filter;
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Outcome};

/// The id a Create* op drew.
pub(super) fn created_id(outcome: Outcome) -> Result<String, ApiError> {
    match outcome {
        Outcome::Created(ids) => ids
            .into_iter()
            .next()
            .ok_or_else(crate::api::internal_error),
        Outcome::Done => Err(crate::api::internal_error()),
    }
}

/// AWS's selection for a Describe: every explicitly named id must exist
/// (else `not_found` for the first missing one), then only the named
/// objects (all, if none are named) for which every filter holds.
pub(super) fn select<'m, T: 'm>(
    objects: impl IntoIterator<Item = (&'m String, &'m T)>,
    ids: &[&str],
    not_found: impl Fn(&str) -> ApiError,
    filters: &[Filter],
    matches: impl Fn(&T, &Filter) -> Result<bool, ApiError>,
) -> Result<Vec<&'m T>, ApiError> {
    let objects: Vec<(&String, &T)> = objects.into_iter().collect();
    for id in ids {
        if !objects.iter().any(|(key, _)| key.as_str() == *id) {
            return Err(not_found(id));
        }
    }
    let mut selected = Vec::new();
    for (key, object) in objects {
        if !ids.is_empty() && !ids.contains(&key.as_str()) {
            continue;
        }
        let mut keep = true;
        for filter in filters {
            if !matches(object, filter)? {
                keep = false;
                break;
            }
        }
        if keep {
            selected.push(object);
        }
    }
    Ok(selected)
}

/// `true` / `false` as AWS writes booleans.
pub(super) fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// A MAC as AWS writes it: `02:0a:…`, lowercase.
pub(super) fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `02:0a:0b:0c:0d:0e` (or with `-`): six hex bytes, a unicast
/// address that is not all zeros (the data plane keys ENIs by it).
pub(super) fn parse_mac(text: &str) -> Result<[u8; 6], ApiError> {
    let invalid = || {
        ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Value ({text}) for palisade:mac is invalid. Expecting a unicast MAC like 02:00:00:00:00:01."
            ),
        )
    };
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(invalid());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(invalid());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
    }
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(invalid());
    }
    Ok(mac)
}

/// The API's text for a protocol number field (`-1`, `6`, …), as AWS
/// reports NACL entries.
pub(super) fn protocol_number_text(protocol: palisade_policy::Protocol) -> String {
    protocol
        .number()
        .map_or_else(|| "-1".to_owned(), |n| n.to_string())
}

/// A rule's `ipProtocol` as security-group responses write it.
pub(super) fn protocol_text(protocol: palisade_policy::Protocol) -> String {
    use palisade_policy::Protocol;
    match protocol {
        Protocol::All => "-1".to_owned(),
        Protocol::Tcp => "tcp".to_owned(),
        Protocol::Udp => "udp".to_owned(),
        Protocol::Icmp => "icmp".to_owned(),
        Protocol::Icmpv6 => "icmpv6".to_owned(),
        Protocol::Number(n) => n.to_string(),
    }
}

/// A rule's `fromPort` / `toPort`: absent for all protocols, `-1` for
/// "all" of a protocol.
pub(super) fn port_fields(rule: &palisade_policy::SgRule) -> Option<(i32, i32)> {
    use palisade_policy::{PortSpec, Protocol};
    if rule.protocol == Protocol::All {
        return None;
    }
    Some(match rule.ports {
        PortSpec::Range { from, to } => (i32::from(from), i32::from(to)),
        PortSpec::Icmp { icmp_type, code } => {
            (icmp_type.map_or(-1, i32::from), code.map_or(-1, i32::from))
        }
        PortSpec::Any => (-1, -1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print_and_refuse_multicast_or_malformed() {
        let mac = parse_mac("02:0A:0b:0c:0d:0e").unwrap();
        assert_eq!(mac, [2, 10, 11, 12, 13, 14]);
        assert_eq!(mac_text(mac), "02:0a:0b:0c:0d:0e");
        assert_eq!(parse_mac("02-00-00-00-00-01").unwrap()[5], 1);
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:001",
            "02:00:00:00:00:zz",
            "",
        ] {
            assert_eq!(
                parse_mac(bad).unwrap_err().code,
                "InvalidParameterValue",
                "{bad}"
            );
        }
    }

    #[test]
    fn selection_refuses_unknown_ids_and_applies_every_filter() {
        let objects: std::collections::BTreeMap<String, u32> = [
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
            ("c".to_owned(), 3),
        ]
        .into();
        let not_found = |id: &str| ApiError::new(Ec2ErrorCode::InvalidVpcIdNotFound, id.to_owned());
        let odd = Filter {
            name: "odd".into(),
            values: vec![],
        };
        let matches = |n: &u32, _: &Filter| Ok(n % 2 == 1);
        let all = select(
            &objects,
            &[],
            not_found,
            std::slice::from_ref(&odd),
            matches,
        )
        .unwrap();
        assert_eq!(all, [&1, &3]);
        let named = select(
            &objects,
            &["b", "c"],
            not_found,
            std::slice::from_ref(&odd),
            matches,
        )
        .unwrap();
        assert_eq!(named, [&3]);
        let missing = select(&objects, &["a", "z"], not_found, &[], matches).unwrap_err();
        assert_eq!(
            (missing.code.as_str(), missing.message.as_str()),
            ("InvalidVpcID.NotFound", "z")
        );
    }
}
