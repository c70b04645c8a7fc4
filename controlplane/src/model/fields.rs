//! The fields every resource's rules parse the same way: blocks,
//! protocols, ports, descriptions, and the shape of AWS's "not found"
//! message. One home, so that a rule and an ACL entry refuse a bad port
//! range with the same words.

use palisade_policy::{IpCidr, Ipv4Cidr, PortKind, PortSpec, Protocol};

use super::{ApiError, Ec2ErrorCode};

/// Longest name, group name and description EC2 accepts.
pub const MAX_TEXT: usize = 255;

pub(super) fn not_found(code: Ec2ErrorCode, what: &str, id: &str) -> ApiError {
    ApiError::new(code, format!("The {what} ID '{id}' does not exist"))
}

pub(super) fn parse_v4(text: &str) -> Result<Ipv4Cidr, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_value(format!(
            "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })
}

pub(super) fn parse_cidr(text: &str) -> Result<IpCidr, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_value(format!(
            "CIDR block {text} is malformed or has host bits set"
        ))
    })
}

pub(super) fn parse_protocol(text: &str) -> Result<Protocol, ApiError> {
    let protocol = match text.to_ascii_lowercase().as_str() {
        "-1" | "all" => Protocol::All,
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "icmp" | "1" => Protocol::Icmp,
        "icmpv6" | "58" => Protocol::Icmpv6,
        other => match other.parse::<u8>() {
            Ok(number) => Protocol::Number(number),
            Err(_) => {
                return Err(ApiError::invalid_value(format!(
                    "Invalid value '{text}' for IP protocol. Unknown protocol."
                )));
            }
        },
    };
    Ok(protocol)
}

/// Ports per SEMANTICS.md "Rule fields": required ranges for tcp/udp, ICMP
/// type/code with -1 for all (type -1 needs code -1), ignored otherwise.
pub(super) fn parse_ports(
    protocol: Protocol,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<PortSpec, ApiError> {
    match protocol.port_kind() {
        PortKind::Ignored => Ok(PortSpec::Any),
        PortKind::Ports => match (from, to) {
            (Some(from), Some(to))
                if (0..=65535).contains(&from) && (0..=65535).contains(&to) && from <= to =>
            {
                Ok(PortSpec::Range {
                    from: from as u16,
                    to: to as u16,
                })
            }
            (Some(-1), Some(-1)) => Ok(PortSpec::Range { from: 0, to: 65535 }),
            (None, _) | (_, None) => Err(ApiError::new(
                Ec2ErrorCode::MissingParameter,
                "The request must contain the parameter FromPort and ToPort for tcp/udp",
            )),
            (Some(from), Some(to)) => Err(ApiError::invalid_value(format!(
                "Invalid port range {from}-{to}"
            ))),
        },
        PortKind::IcmpTypeCode => {
            let field = |value: Option<i32>, name: &str| match value {
                None | Some(-1) => Ok(None),
                Some(v) if (0..=255).contains(&v) => Ok(Some(v as u8)),
                Some(v) => Err(ApiError::invalid_value(format!("Invalid ICMP {name} {v}"))),
            };
            let icmp_type = field(from, "type")?;
            let code = field(to, "code")?;
            if icmp_type.is_none() && code.is_some() {
                return Err(ApiError::invalid_value(
                    "ICMP code must be -1 when the ICMP type is -1",
                ));
            }
            if protocol == Protocol::Icmp || icmp_type.is_some() {
                Ok(PortSpec::Icmp { icmp_type, code })
            } else {
                Ok(PortSpec::Any)
            }
        }
    }
}

pub(super) fn check_description(text: &str, what: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid_value(format!(
            "The {what} description must be at most {MAX_TEXT} characters"
        )));
    }
    Ok(())
}
