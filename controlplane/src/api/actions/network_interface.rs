//! Network interface actions: CreateNetworkInterface,
//! DeleteNetworkInterface, DescribeNetworkInterfaces,
//! DescribeNetworkInterfaceAttribute, ModifyNetworkInterfaceAttribute.
//!
//! # The data-plane binding
//!
//! An AWS ENI lives on a hypervisor; a palisade ENI is a (port, VLAN, MAC)
//! on the appliance, which EC2's API has no parameter for. palisade takes
//! the binding from tags in `TagSpecification` (`ResourceType
//! network-interface`), so every AWS tool passes it unchanged:
//!
//! - `palisade:port` (required): the appliance port's name;
//! - `palisade:vlan` (optional): the 802.1Q VLAN, 1..=4094;
//! - `palisade:mac` (optional): the ENI's MAC; without it a
//!   locally-administered unicast MAC (`02:…`) is generated.
//!
//! The binding is fixed at creation. Describe reports it back as these
//! same tags (computed from the interface, so they cannot drift) and the
//! MAC as `macAddress`; CreateTags/DeleteTags refuse `palisade:` keys.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use palisade_policy::ConntrackTimeouts;

use super::common::{bool_text, created_id, mac_text, parse_mac, select};
use super::{apply_tags, check_paging, paginate, tag_filter, tag_specifications, unknown_filter};
use crate::api::{Context, Filter, Params, Xml};
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, EniChange, Model, NetworkInterface, NewNetworkInterface, Op};

/// The tag keys that carry the binding.
pub(super) const PORT_TAG: &str = "palisade:port";
/// See [`PORT_TAG`].
pub(super) const VLAN_TAG: &str = "palisade:vlan";
/// See [`PORT_TAG`].
pub(super) const MAC_TAG: &str = "palisade:mac";
/// The prefix palisade reserves in tag keys.
pub(super) const RESERVED_PREFIX: &str = "palisade:";

/// Parameters CreateNetworkInterface accepts.
pub(super) const CREATE_PARAMS: &[&str] = &[
    "SubnetId",
    "Description",
    "PrivateIpAddress",
    "PrivateIpAddresses",
    "SecondaryPrivateIpAddressCount",
    "Ipv6Addresses",
    "SecurityGroupId",
    "TagSpecification",
    "ConnectionTrackingSpecification",
    "ClientToken",
];

/// Parameters ModifyNetworkInterfaceAttribute accepts.
pub(super) const MODIFY_PARAMS: &[&str] = &[
    "NetworkInterfaceId",
    "Description",
    "SourceDestCheck",
    "SecurityGroupId",
    "ConnectionTrackingSpecification",
];

/// An interface's tags as clients see them: the stored ones plus its
/// binding.
pub(super) fn eni_tags(model: &Model, eni: &NetworkInterface) -> BTreeMap<String, String> {
    let mut tags = model.tags.get(eni.id.as_str()).cloned().unwrap_or_default();
    tags.insert(PORT_TAG.to_owned(), eni.port.clone());
    if let Some(vlan) = eni.vlan {
        tags.insert(VLAN_TAG.to_owned(), vlan.to_string());
    }
    tags.insert(MAC_TAG.to_owned(), mac_text(eni.mac));
    tags
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InvalidNetworkInterfaceIdNotFound,
        format!("The networkInterface ID '{id}' does not exist"),
    )
}

/// The binding read from the `palisade:` tags, and the other tags.
#[derive(Debug, PartialEq, Eq)]
struct Binding {
    port: String,
    vlan: Option<u16>,
    mac: Option<[u8; 6]>,
}

fn split_binding(
    tags: Vec<(String, String)>,
) -> Result<(Binding, Vec<(String, String)>), ApiError> {
    let (mut port, mut vlan, mut mac) = (None, None, None);
    let mut rest = Vec::new();
    for (key, value) in tags {
        match key.as_str() {
            PORT_TAG => port = Some(value),
            VLAN_TAG => {
                vlan = Some(
                    value
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|v| (1..=4094).contains(v))
                        .ok_or_else(|| {
                            ApiError::new(
                                Ec2ErrorCode::InvalidParameterValue,
                                format!(
                                    "Value ({value}) for tag {VLAN_TAG} is invalid. Expecting a VLAN id 1-4094."
                                ),
                            )
                        })?,
                );
            }
            MAC_TAG => mac = Some(parse_mac(value.trim())?),
            other if other.starts_with(RESERVED_PREFIX) => {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    format!(
                        "Unknown tag {other}: the palisade: keys of a network interface are {PORT_TAG}, {VLAN_TAG} and {MAC_TAG}"
                    ),
                ));
            }
            _ => rest.push((key, value)),
        }
    }
    let port = port.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::new(
            Ec2ErrorCode::MissingParameter,
            format!(
                "A palisade network interface needs the appliance port it is bound to: add the tag {PORT_TAG} in TagSpecification (ResourceType network-interface)"
            ),
        )
    })?;
    Ok((Binding { port, vlan, mac }, rest))
}

fn parse_ip(text: &str) -> Result<IpAddr, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Value ({text}) for parameter privateIpAddress is invalid. Not a valid IP address."
            ),
        )
    })
}

/// The addresses the request names, primary first, and how many more to
/// pick (`SecondaryPrivateIpAddressCount`, plus one if no primary).
fn requested_addresses(p: &Params) -> Result<(Vec<IpAddr>, usize), ApiError> {
    let mut primary: Option<IpAddr> = p.get("PrivateIpAddress").map(parse_ip).transpose()?;
    let mut secondary = Vec::new();
    for member in p.members("PrivateIpAddresses")? {
        let ip = parse_ip(member.required("PrivateIpAddress")?)?;
        if member.bool("Primary")? == Some(true) {
            if primary.is_some_and(|p| p != ip) {
                return Err(ApiError::new(
                    Ec2ErrorCode::InvalidParameterCombination,
                    "Only one primary private IP address can be given",
                ));
            }
            primary = Some(ip);
        } else if primary != Some(ip) {
            secondary.push(ip);
        }
    }
    let count = match p.int("SecondaryPrivateIpAddressCount")? {
        None => 0,
        Some(n) if (0..=49).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!("Value ({n}) for parameter secondaryPrivateIpAddressCount is invalid"),
            ));
        }
    };
    // Without a primary, the first secondary address is the primary; with
    // no IPv4 address at all one is picked.
    let mut ips: Vec<IpAddr> = primary.into_iter().collect();
    ips.extend(secondary);
    let extra = count + usize::from(ips.is_empty());
    for member in p.members("Ipv6Addresses")? {
        ips.push(parse_ip(member.required("Ipv6Address")?)?);
    }
    Ok((ips, extra))
}

/// Fills `wanted` free IPv4 addresses of the subnet (AWS's reserved five
/// skipped, addresses used in the VPC skipped). The primary goes first
/// when none was named. `None` when the subnet is unknown (the op then
/// fails with AWS's not-found error).
fn pick_addresses(
    model: &Model,
    subnet: &str,
    named: &[IpAddr],
    wanted: usize,
) -> Option<Result<Vec<IpAddr>, ApiError>> {
    let home = model.subnets.get(subnet)?;
    let used: Vec<IpAddr> = model
        .enis
        .values()
        .filter(|e| model.subnets.get(e.subnet.as_str()).map(|s| &s.vpc) == Some(&home.vpc))
        .flat_map(|e| e.private_ips.iter().copied())
        .chain(named.iter().copied())
        .collect();
    let (first, last) = home.cidr.range();
    let mut picked = Vec::new();
    let mut n = first.saturating_add(4);
    while picked.len() < wanted && n < last {
        let ip = IpAddr::V4(Ipv4Addr::from(n));
        if !used.contains(&ip) {
            picked.push(ip);
        }
        n += 1;
    }
    if picked.len() < wanted {
        return Some(Err(ApiError::new(
            Ec2ErrorCode::InsufficientFreeAddressesInSubnet,
            format!("The subnet {subnet} has not enough free addresses"),
        )));
    }
    let no_primary = !named.first().is_some_and(IpAddr::is_ipv4);
    let mut ips = Vec::with_capacity(named.len() + picked.len());
    if no_primary {
        ips.push(picked.remove(0));
    }
    ips.extend_from_slice(named);
    ips.extend(picked);
    Some(Ok(ips))
}

/// A locally-administered unicast MAC, random (the standard library's
/// per-process hash keys; uniqueness on the port is checked).
fn random_mac(salt: u64) -> [u8; 6] {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(salt);
    let bits = hasher.finish().to_be_bytes();
    [0x02, bits[0], bits[1], bits[2], bits[3], bits[4]]
}

/// The `ConnectionTrackingSpecification` timeouts over `base`.
fn timeouts(p: &Params, base: ConntrackTimeouts) -> Result<Option<ConntrackTimeouts>, ApiError> {
    let Some(spec) = p.structure("ConnectionTrackingSpecification") else {
        return Ok(None);
    };
    let field = |name: &str, range: core::ops::RangeInclusive<u32>, current: u32| match spec
        .int(name)?
    {
        None => Ok(current),
        Some(v) if v >= 0 && range.contains(&(v as u32)) => Ok(v as u32),
        Some(v) => Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "Value ({v}) for parameter {name} is invalid. Expecting a value between {} and {}.",
                range.start(),
                range.end()
            ),
        )),
    };
    Ok(Some(ConntrackTimeouts {
        tcp_established: field(
            "TcpEstablishedTimeout",
            ConntrackTimeouts::TCP_ESTABLISHED_RANGE,
            base.tcp_established,
        )?,
        udp_stream: field(
            "UdpStreamTimeout",
            ConntrackTimeouts::UDP_STREAM_RANGE,
            base.udp_stream,
        )?,
        udp: field("UdpTimeout", ConntrackTimeouts::UDP_RANGE, base.udp)?,
    }))
}

pub(super) fn create(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let subnet = p.required("SubnetId")?.to_owned();
    let description = p.get("Description").unwrap_or_default().to_owned();
    let (binding, tags) = split_binding(tag_specifications(p, "network-interface")?)?;
    if let Some(ports) = cx.port_names() {
        if !ports.contains(&binding.port) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({}) for tag {PORT_TAG} is invalid: this appliance's ports are {}",
                    binding.port,
                    ports.join(", ")
                ),
            ));
        }
    }
    let groups: Vec<String> = p
        .list("SecurityGroupId")?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let timeouts = timeouts(p, ConntrackTimeouts::default())?;
    let (named, wanted) = requested_addresses(p)?;
    let mut last_error = None;
    // A generated MAC or picked address can race another create; the model
    // refuses the loser, which then tries again with fresh choices.
    for attempt in 0..4u64 {
        let (private_ips, mac) = cx.read(|model| {
            let ips = pick_addresses(model, &subnet, &named, wanted)
                .transpose()?
                .unwrap_or_else(|| named.clone());
            let mac = binding.mac.unwrap_or_else(|| {
                let mut salt = attempt;
                loop {
                    let mac = random_mac(salt);
                    let taken = model
                        .enis
                        .values()
                        .any(|e| e.port == binding.port && e.vlan == binding.vlan && e.mac == mac);
                    if !taken {
                        break mac;
                    }
                    salt += 4;
                }
            });
            Ok::<_, ApiError>((ips, mac))
        })??;
        let op = Op::CreateNetworkInterfaceV2 {
            interface: NewNetworkInterface {
                subnet: subnet.clone(),
                mac,
                private_ips,
                groups: groups.clone(),
                port: binding.port.clone(),
                vlan: binding.vlan,
                description: description.clone(),
                timeouts,
            },
        };
        match cx.apply(&op) {
            Ok(outcome) => {
                let id = created_id(outcome)?;
                apply_tags(cx, &id, tags)?;
                return cx.read(|model| {
                    if let Some(eni) = model.enis.get(&id) {
                        out.element("networkInterface", |x| write_eni(x, cx, model, eni));
                    }
                });
            }
            Err(error)
                if (wanted > 0 && error.code == Ec2ErrorCode::InvalidIpAddressInUse)
                    || (binding.mac.is_none() && error.message.contains("MAC address")) =>
            {
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(crate::api::internal_error))
}

pub(super) fn delete(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let eni = p.required("NetworkInterfaceId")?.to_owned();
    cx.apply(&Op::DeleteNetworkInterface { eni })?;
    out.return_true();
    Ok(())
}

fn dns_name(cx: &Context<'_>, ip: &IpAddr) -> String {
    format!(
        "ip-{}.{}.compute.internal",
        ip.to_string().replace(['.', ':'], "-"),
        cx.region
    )
}

fn write_eni(out: &mut Xml, cx: &Context<'_>, model: &Model, eni: &NetworkInterface) {
    let vpc = model
        .subnets
        .get(eni.subnet.as_str())
        .map(|s| s.vpc.as_str())
        .unwrap_or_default();
    let primary = eni.private_ips.iter().find(|ip| ip.is_ipv4());
    out.leaf("networkInterfaceId", &eni.id)
        .leaf("subnetId", &eni.subnet)
        .leaf("vpcId", vpc)
        .leaf("availabilityZone", format_args!("{}a", cx.region))
        .leaf("description", &eni.description)
        .leaf("ownerId", cx.account_id())
        .leaf("requesterManaged", "false")
        .leaf("status", "available")
        .leaf("macAddress", mac_text(eni.mac))
        .leaf_opt("privateIpAddress", primary)
        .leaf_opt("privateDnsName", primary.map(|ip| dns_name(cx, ip)))
        .leaf("sourceDestCheck", bool_text(eni.source_dest_check))
        .leaf("interfaceType", "interface");
    write_groups(out, model, eni);
    out.list(
        "privateIpAddressesSet",
        eni.private_ips.iter().filter(|ip| ip.is_ipv4()),
        |x, ip| {
            x.leaf("privateIpAddress", ip)
                .leaf("privateDnsName", dns_name(cx, ip))
                .leaf("primary", bool_text(Some(ip) == primary));
        },
    );
    out.list(
        "ipv6AddressesSet",
        eni.private_ips.iter().filter(|ip| ip.is_ipv6()),
        |x, ip| {
            x.leaf("ipv6Address", ip).leaf("isPrimaryIpv6", "false");
        },
    );
    out.element("connectionTrackingConfiguration", |x| {
        x.leaf("tcpEstablishedTimeout", eni.timeouts.tcp_established)
            .leaf("udpStreamTimeout", eni.timeouts.udp_stream)
            .leaf("udpTimeout", eni.timeouts.udp);
    });
    let tags = eni_tags(model, eni);
    super::write_tags(out, Some(&tags));
}

fn write_groups(out: &mut Xml, model: &Model, eni: &NetworkInterface) {
    out.list("groupSet", &eni.groups, |x, g| {
        x.leaf("groupId", g).leaf(
            "groupName",
            model
                .security_groups
                .get(g.as_str())
                .map(|g| g.name.as_str())
                .unwrap_or_default(),
        );
    });
}

fn eni_matches(
    cx: &Context<'_>,
    model: &Model,
    eni: &NetworkInterface,
    filter: &Filter,
) -> Result<bool, ApiError> {
    let tags = eni_tags(model, eni);
    if let Some(m) = tag_filter(filter, Some(&tags)) {
        return Ok(m);
    }
    let texts = |ips: &mut dyn Iterator<Item = &IpAddr>| {
        filter.matches_any(
            ips.map(ToString::to_string)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
    };
    let vpc = model
        .subnets
        .get(eni.subnet.as_str())
        .map(|s| s.vpc.as_str())
        .unwrap_or_default();
    Ok(match filter.name.as_str() {
        "network-interface-id" => filter.matches(eni.id.as_str()),
        "subnet-id" => filter.matches(eni.subnet.as_str()),
        "vpc-id" => filter.matches(vpc),
        "group-id" => filter.matches_any(eni.groups.iter().map(palisade_policy::SgId::as_str)),
        "group-name" => filter.matches_any(
            eni.groups
                .iter()
                .filter_map(|g| model.security_groups.get(g.as_str()))
                .map(|g| g.name.as_str()),
        ),
        "private-ip-address" | "addresses.private-ip-address" => {
            texts(&mut eni.private_ips.iter().filter(|ip| ip.is_ipv4()))
        }
        "addresses.primary" => filter.matches("true"),
        "ipv6-addresses.ipv6-address" | "ipv6-address" => {
            texts(&mut eni.private_ips.iter().filter(|ip| ip.is_ipv6()))
        }
        "mac-address" => filter.matches(&mac_text(eni.mac)),
        "status" => filter.matches("available"),
        "description" => filter.matches(&eni.description),
        "source-dest-check" => filter.matches(bool_text(eni.source_dest_check)),
        "owner-id" => filter.matches(cx.account_id()),
        "availability-zone" => filter.matches(&format!("{}a", cx.region)),
        "interface-type" => filter.matches("interface"),
        "requester-managed" => filter.matches("false"),
        name => return Err(unknown_filter(name)),
    })
}

pub(super) fn describe(cx: &Context<'_>, p: &Params, out: &mut Xml) -> Result<(), ApiError> {
    let ids = p.list("NetworkInterfaceId")?;
    check_paging(p, !ids.is_empty())?;
    let filters = p.filters()?;
    cx.read(|model| -> Result<(), ApiError> {
        let ordered = model
            .eni_order
            .iter()
            .filter_map(|id| model.enis.get_key_value(id));
        let selected = select(ordered, &ids, not_found, &filters, |eni, filter| {
            eni_matches(cx, model, eni, filter)
        })?;
        let (page, next) = paginate(selected, p, 5, !ids.is_empty())?;
        out.list("networkInterfaceSet", page, |x, eni| {
            write_eni(x, cx, model, eni);
        });
        out.leaf_opt("nextToken", next);
        Ok(())
    })?
}

pub(super) fn describe_attribute(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let id = p.required("NetworkInterfaceId")?;
    let attribute = p.required("Attribute")?;
    if ![
        "description",
        "groupSet",
        "sourceDestCheck",
        "attachment",
        "associatePublicIpAddress",
    ]
    .contains(&attribute)
    {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!("Value ({attribute}) for parameter attribute is invalid. Unknown attribute."),
        ));
    }
    cx.read(|model| -> Result<(), ApiError> {
        let eni = model.enis.get(id).ok_or_else(|| not_found(id))?;
        out.leaf("networkInterfaceId", &eni.id);
        match attribute {
            "description" => {
                out.element("description", |x| {
                    x.leaf("value", &eni.description);
                });
            }
            "groupSet" => write_groups(out, model, eni),
            "sourceDestCheck" => {
                out.element("sourceDestCheck", |x| {
                    x.leaf("value", bool_text(eni.source_dest_check));
                });
            }
            "associatePublicIpAddress" => {
                out.leaf("associatePublicIpAddress", "false");
            }
            // Not attached to an instance: AWS answers without one.
            _ => {}
        }
        Ok(())
    })?
}

pub(super) fn modify_attribute(
    cx: &Context<'_>,
    p: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    let eni = p.required("NetworkInterfaceId")?.to_owned();
    let given: Vec<&str> = [
        "Description",
        "SourceDestCheck",
        "SecurityGroupId",
        "ConnectionTrackingSpecification",
    ]
    .into_iter()
    .filter(|name| p.has(name))
    .collect();
    if given.len() > 1 {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterCombination,
            format!(
                "Only one attribute can be modified at a time, got {}",
                given.join(", ")
            ),
        ));
    }
    let op = match given.first().copied() {
        None => {
            return Err(ApiError::new(
                Ec2ErrorCode::MissingParameter,
                "The request must contain one of Description, SourceDestCheck, SecurityGroupId or ConnectionTrackingSpecification",
            ));
        }
        Some("Description") => Op::SetNetworkInterfaceDescription {
            eni,
            description: p.required("Description.Value")?.to_owned(),
        },
        Some("SourceDestCheck") => Op::ModifyNetworkInterface {
            eni,
            change: EniChange {
                source_dest_check: Some(
                    p.bool("SourceDestCheck.Value")?
                        .ok_or_else(|| crate::api::params::missing("SourceDestCheck.Value"))?,
                ),
                ..EniChange::default()
            },
        },
        Some("SecurityGroupId") => Op::ModifyNetworkInterface {
            eni,
            change: EniChange {
                groups: Some(
                    p.list("SecurityGroupId")?
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                ),
                ..EniChange::default()
            },
        },
        Some(_) => {
            let current = cx
                .read(|model| model.enis.get(&eni).map(|e| e.timeouts))?
                .ok_or_else(|| not_found(&eni))?;
            let t = timeouts(p, current)?.unwrap_or(current);
            Op::ModifyNetworkInterface {
                eni,
                change: EniChange {
                    timeouts: Some((t.tcp_established, t.udp_stream, t.udp)),
                    ..EniChange::default()
                },
            }
        }
    };
    cx.apply(&op)?;
    out.return_true();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn binding_comes_from_palisade_tags_and_the_rest_stay_tags() {
        let (binding, rest) = split_binding(tags(&[
            ("Name", "web"),
            (PORT_TAG, "eni-a"),
            (VLAN_TAG, "42"),
            (MAC_TAG, "02:00:00:00:00:2a"),
        ]))
        .unwrap();
        assert_eq!(
            binding,
            Binding {
                port: "eni-a".into(),
                vlan: Some(42),
                mac: Some([2, 0, 0, 0, 0, 42]),
            }
        );
        assert_eq!(rest, tags(&[("Name", "web")]));
        let (binding, _) = split_binding(tags(&[(PORT_TAG, "p")])).unwrap();
        assert_eq!((binding.vlan, binding.mac), (None, None));
    }

    #[test]
    fn binding_refusals() {
        let code = |pairs: &[(&str, &str)]| split_binding(tags(pairs)).unwrap_err().code;
        assert_eq!(code(&[("Name", "x")]), "MissingParameter");
        assert_eq!(code(&[(PORT_TAG, "")]), "MissingParameter");
        assert_eq!(
            code(&[(PORT_TAG, "p"), (VLAN_TAG, "0")]),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(&[(PORT_TAG, "p"), (VLAN_TAG, "4095")]),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(&[(PORT_TAG, "p"), (VLAN_TAG, "x")]),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(&[(PORT_TAG, "p"), (MAC_TAG, "01:00:00:00:00:01")]),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(&[(PORT_TAG, "p"), ("palisade:prot", "x")]),
            "InvalidParameterValue"
        );
    }

    #[test]
    fn addresses_primary_first_and_counts() {
        let p = Params::parse(
            "PrivateIpAddresses.1.PrivateIpAddress=10.0.1.20\
             &PrivateIpAddresses.2.PrivateIpAddress=10.0.1.21&PrivateIpAddresses.2.Primary=true\
             &SecondaryPrivateIpAddressCount=2&Ipv6Addresses.1.Ipv6Address=2001%3Adb8%3A%3A5",
        )
        .unwrap();
        let (ips, extra) = requested_addresses(&p).unwrap();
        let want: Vec<IpAddr> = ["10.0.1.21", "10.0.1.20", "2001:db8::5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!((ips, extra), (want, 2));
        let (ips, extra) = requested_addresses(&Params::default()).unwrap();
        assert_eq!((ips.len(), extra), (0, 1), "no address: pick a primary");
        let two_primaries = Params::parse(
            "PrivateIpAddress=10.0.1.5&PrivateIpAddresses.1.PrivateIpAddress=10.0.1.6\
             &PrivateIpAddresses.1.Primary=true",
        )
        .unwrap();
        assert_eq!(
            requested_addresses(&two_primaries).unwrap_err().code,
            "InvalidParameterCombination"
        );
        let bad = Params::parse("PrivateIpAddress=10.0.1.500").unwrap();
        assert_eq!(
            requested_addresses(&bad).unwrap_err().code,
            "InvalidParameterValue"
        );
        let many = Params::parse("SecondaryPrivateIpAddressCount=50").unwrap();
        assert_eq!(
            requested_addresses(&many).unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn timeouts_fill_from_the_base_and_check_aws_bounds() {
        let base = ConntrackTimeouts::default();
        assert_eq!(timeouts(&Params::default(), base).unwrap(), None);
        let p = Params::parse("ConnectionTrackingSpecification.UdpTimeout=60").unwrap();
        assert_eq!(
            timeouts(&p, base).unwrap(),
            Some(ConntrackTimeouts { udp: 60, ..base })
        );
        for bad in [
            "TcpEstablishedTimeout=59",
            "TcpEstablishedTimeout=432001",
            "UdpStreamTimeout=181",
            "UdpTimeout=29",
            "UdpTimeout=-1",
        ] {
            let p = Params::parse(&format!("ConnectionTrackingSpecification.{bad}")).unwrap();
            assert_eq!(
                timeouts(&p, base).unwrap_err().code,
                "InvalidParameterValue",
                "{bad}"
            );
        }
    }

    #[test]
    fn picked_addresses_skip_reserved_and_used_ones() {
        let mut model = Model::default();
        let mut ids = crate::model::RandomIds::default();
        let Ok(crate::model::Outcome::Created(vpc)) = model.apply(
            &Op::CreateVpc {
                cidr: "10.0.0.0/16".into(),
                ipv6_cidr: None,
            },
            &mut ids,
        ) else {
            panic!("vpc")
        };
        let Ok(crate::model::Outcome::Created(subnet)) = model.apply(
            &Op::CreateSubnet {
                vpc: vpc[0].clone(),
                cidr: "10.0.1.0/28".into(),
            },
            &mut ids,
        ) else {
            panic!("subnet")
        };
        let subnet = &subnet[0];
        model
            .apply(
                &Op::CreateNetworkInterface {
                    subnet: subnet.clone(),
                    mac: [2, 0, 0, 0, 0, 1],
                    private_ips: vec!["10.0.1.4".parse().unwrap()],
                    groups: vec![],
                    port: "p".into(),
                    vlan: None,
                },
                &mut ids,
            )
            .unwrap();
        let named: Vec<IpAddr> = vec!["10.0.1.6".parse().unwrap()];
        let ips = pick_addresses(&model, subnet, &named, 1).unwrap().unwrap();
        assert_eq!(
            ips,
            named
                .iter()
                .copied()
                .chain(["10.0.1.5".parse().unwrap()])
                .collect::<Vec<_>>()
        );
        let ips = pick_addresses(&model, subnet, &[], 2).unwrap().unwrap();
        let want: Vec<IpAddr> = vec!["10.0.1.5".parse().unwrap(), "10.0.1.6".parse().unwrap()];
        assert_eq!(ips, want, "the first free one is the primary");
        // A /28 has 16 - 5 reserved = 11 assignable addresses; one is used.
        assert!(pick_addresses(&model, subnet, &[], 10).unwrap().is_ok());
        assert_eq!(
            pick_addresses(&model, subnet, &[], 11)
                .unwrap()
                .unwrap_err()
                .code,
            "InsufficientFreeAddressesInSubnet"
        );
        assert!(pick_addresses(&model, "subnet-00000000000000000", &[], 1).is_none());
    }
}
