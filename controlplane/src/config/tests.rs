//! Tests of the whole path: text → [`Config`] → [`PolicySpec`] → compiled
//! snapshot, against the testkit's demo world and a plain model.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use palisade_policy::{
    IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, NaclEntry, Peer, PolicySnapshot, PolicySpec, PortSpec,
    Protocol, SgRule,
};
use proptest::prelude::*;

use super::*;

/// Port ids of the tap-demo profile, looked up by name in the real file,
/// in file order (DPDK probes vdevs in argument order).
fn tap_demo_ports() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dpdk-config/tap-demo.toml");
    palisade_dpdk_config::Profile::load(&path)
        .expect("tap-demo.toml loads")
        .ports
        .into_iter()
        .map(|p| p.name)
        .collect()
}

fn port_of(ports: &[String]) -> impl Fn(&str) -> Option<u16> + '_ {
    move |name| {
        ports
            .iter()
            .position(|p| p == name)
            .map(|i| u16::try_from(i).expect("few ports"))
    }
}

/// `p0`, `p1`, … → 0, 1, …
fn numbered_port(name: &str) -> Option<u16> {
    name.strip_prefix('p')?.parse().ok()
}

/// A rule by content, group peers named by `names` (id → name).
type RuleContent = (Protocol, PortSpec, String);

fn content(rule: &SgRule, names: &BTreeMap<String, String>) -> RuleContent {
    let peer = match &rule.peer {
        Peer::Cidr4(c) => c.to_string(),
        Peer::Cidr6(c) => c.to_string(),
        Peer::PrefixList(id) => format!("pl:{id}"),
        Peer::Group(id) => format!("group:{}", names.get(id.as_str()).unwrap_or(&id.0)),
    };
    (rule.protocol, rule.ports, peer)
}

fn rule_set(rules: &[SgRule], names: &BTreeMap<String, String>) -> HashSet<RuleContent> {
    rules.iter().map(|r| content(r, names)).collect()
}

/// An ENI without ids: port, VLAN, addresses, subnet block, group names,
/// source/dest check.
type EniView = (
    u16,
    Option<u16>,
    Vec<IpAddr>,
    Ipv4Cidr,
    BTreeSet<String>,
    bool,
);
/// A subnet without ids: its IPv6 block and its ACL's entries as
/// (egress, number, block, allow).
type SubnetView = (Option<Ipv6Cidr>, Vec<(bool, u16, IpCidr, bool)>);

/// The parts of a spec that do not depend on ids: per group name its rule
/// contents; per ENI MAC its port, addresses, subnet block and group names;
/// subnet blocks with their ACL entries.
#[derive(Debug, PartialEq)]
struct World {
    vpcs: Vec<(Ipv4Cidr, Option<Ipv6Cidr>)>,
    groups: BTreeMap<String, (HashSet<RuleContent>, HashSet<RuleContent>)>,
    enis: BTreeMap<[u8; 6], EniView>,
    subnets: BTreeMap<Ipv4Cidr, SubnetView>,
    router_mac: [u8; 6],
}

fn world(spec: &PolicySpec, group_names: &BTreeMap<String, String>) -> World {
    let groups = spec
        .security_groups
        .iter()
        .map(|g| {
            (
                group_names[g.id.as_str()].clone(),
                (
                    rule_set(&g.ingress, group_names),
                    rule_set(&g.egress, group_names),
                ),
            )
        })
        .collect();
    let subnet_block = |id: &palisade_policy::SubnetId| {
        spec.subnets
            .iter()
            .find(|s| &s.id == id)
            .expect("subnet exists")
            .ipv4_cidr
    };
    let enis = spec
        .enis
        .iter()
        .map(|e| {
            (
                e.mac,
                (
                    e.port,
                    e.vlan,
                    e.private_ips.clone(),
                    subnet_block(&e.subnet),
                    e.groups
                        .iter()
                        .map(|g| group_names[g.as_str()].clone())
                        .collect(),
                    e.source_dest_check,
                ),
            )
        })
        .collect();
    let subnets = spec
        .subnets
        .iter()
        .map(|s| {
            let acl = spec.nacls.iter().find(|n| n.id == s.nacl).expect("acl");
            let mut entries: Vec<_> = acl
                .entries
                .iter()
                .map(|e: &NaclEntry| {
                    assert_eq!((e.protocol, e.ports), (Protocol::All, PortSpec::Any));
                    (
                        e.egress,
                        e.rule_number,
                        e.cidr,
                        e.action == NaclAction::Allow,
                    )
                })
                .collect();
            entries.sort();
            (s.ipv4_cidr, (s.ipv6_cidr, entries))
        })
        .collect();
    World {
        vpcs: spec
            .vpcs
            .iter()
            .map(|v| (v.ipv4_cidr, v.ipv6_cidr))
            .collect(),
        groups,
        enis,
        subnets,
        router_mac: spec.router_mac,
    }
}

#[test]
fn the_demo_describes_the_testkit_world_on_the_tap_demo_ports() {
    let config = Config::demo();
    let ports = tap_demo_ports();
    assert_eq!(ports, ["eni-a", "eni-b", "eni-c"], "tap-demo's port names");
    let spec = config
        .to_spec(&port_of(&ports))
        .expect("every port resolves");
    PolicySnapshot::compile(&spec, 1).expect("the demo compiles");

    let expected = palisade_dataplane::testkit::demo_spec();
    // The testkit names its groups by id; ours are named in the file.
    let expected_names: BTreeMap<String, String> = expected
        .security_groups
        .iter()
        .map(|g| (g.id.0.clone(), g.id.0.clone()))
        .collect();
    let our_names: BTreeMap<String, String> = config
        .security_groups
        .iter()
        .map(|g| (g.id.0.clone(), g.name.clone()))
        .collect();
    assert_eq!(world(&spec, &our_names), world(&expected, &expected_names));
    // Same shape beyond the world: no peerings, lists or uplink.
    assert!(spec.peerings.is_empty() && spec.prefix_lists.is_empty() && spec.uplink.is_none());
    assert_eq!(spec.nacls.len(), expected.nacls.len());
    assert_eq!(spec.enis.len(), 3);
    for (ours, theirs) in spec.enis.iter().zip(&expected.enis) {
        assert_eq!(ours.timeouts, theirs.timeouts);
        assert_eq!(ours.port, theirs.port, "ENI order follows port order");
    }
    // The demo spells out every default but one: it is the test kit's
    // world exactly, so it goes without the account's default VPC.
    assert_eq!(
        config.appliance,
        ApplianceSettings {
            default_vpc: false,
            ..ApplianceSettings::default()
        }
    );
}

#[test]
fn the_demo_file_and_its_parse_agree_on_ids() {
    let config = Config::demo();
    let web = config
        .id_of(ObjectKind::SecurityGroup, "demo/web")
        .expect("web exists");
    assert_eq!(config.id_of(ObjectKind::SecurityGroup, "web"), Some(web));
    assert_eq!(web, object_id(ObjectKind::SecurityGroup, "demo/web"));
    let eni_b = config
        .enis
        .iter()
        .find(|e| e.name == "eni-b")
        .expect("eni-b");
    assert_eq!(
        eni_b
            .groups
            .iter()
            .map(palisade_policy::SgId::as_str)
            .collect::<Vec<_>>(),
        [
            web,
            config.id_of(ObjectKind::SecurityGroup, "ssh").expect("ssh")
        ]
    );
    assert_eq!(config.id_of(ObjectKind::Vpc, "nope"), None);
}

const BASE: &str = r#"
[[vpc]]
name = "main"
cidr = "10.0.0.0/16"
ipv6_cidr = "fd00::/56"

[[subnet]]
name = "a"
vpc = "main"
cidr = "10.0.1.0/24"
ipv6_cidr = "fd00:0:0:1::/64"

[[security_group]]
name = "web"
vpc = "main"
description = "web"

[[security_group.ingress]]
protocol = "tcp"
from_port = 80
to_port = 80
cidr = "0.0.0.0/0"

[[eni]]
name = "e0"
subnet = "a"
port = "p0"
mac = "02:00:00:00:00:10"
ips = ["10.0.1.10"]
"#;

fn problems_of(text: &str) -> Vec<Problem> {
    match Config::from_toml_str(text, "case.toml") {
        Ok(_) => panic!("expected problems for\n{text}"),
        Err(error) => {
            assert!(
                !error.problems().is_empty(),
                "expected an Invalid error for\n{text}\ngot {error}"
            );
            error.problems().to_vec()
        }
    }
}

#[test]
fn the_base_case_is_valid() {
    let config = Config::from_toml_str(BASE, "base.toml").expect("valid");
    let spec = config.to_spec(&numbered_port).expect("ports resolve");
    PolicySnapshot::compile(&spec, 1).expect("compiles");
}

#[test]
fn malformed_configurations_are_reported_at_their_key() {
    let rule = |body: &str| format!("{BASE}\n[[security_group.ingress]]\n{body}\n");
    let eni = |body: &str| {
        format!("{BASE}\n[[eni]]\nname = \"e1\"\nsubnet = \"a\"\nport = \"p1\"\n{body}\n")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("bogus = 1\n{BASE}"),
            "bogus",
            "unknown key; expected one of appliance, quotas, vpc",
        ),
        (
            format!("{BASE}\nbogus = 1\n"),
            "eni[0].bogus",
            "unknown key; expected one of name, subnet, port",
        ),
        (
            BASE.replace("from_port = 80", "from_prot = 80"),
            "security_group[0].ingress[0].from_prot",
            "did you mean `from_port`?",
        ),
        (
            BASE.replace("cidr = \"10.0.0.0/16\"", "cidr = \"10.0.0.1/16\""),
            "vpc[0].cidr",
            "The CIDR '10.0.0.1/16' is invalid: 10.0.0.1/16 has host bits set after the prefix (did you mean 10.0.0.0/16?)",
        ),
        (
            BASE.replace("cidr = \"10.0.0.0/16\"", "cidr = \"10.0.0.0/8\""),
            "vpc[0].cidr",
            "between /16 and /28",
        ),
        (
            BASE.replace("cidr = \"10.0.1.0/24\"", "cidr = \"10.1.1.0/24\""),
            "subnet[0].cidr",
            "not within VPC \"main\"'s 10.0.0.0/16",
        ),
        (
            BASE.replace("fd00:0:0:1::/64", "fd01:0:0:1::/64"),
            "subnet[0].ipv6_cidr",
            "not within",
        ),
        (
            format!("{BASE}\n[[subnet]]\nname = \"b\"\nvpc = \"main\"\ncidr = \"10.0.1.128/25\"\n"),
            "subnet[1].cidr",
            "overlaps subnet[0]'s 10.0.1.0/24",
        ),
        (
            format!("{BASE}\n[[subnet]]\nname = \"a\"\nvpc = \"main\"\ncidr = \"10.0.2.0/24\"\n"),
            "subnet[1].name",
            "duplicate subnet name \"a\"",
        ),
        (
            BASE.replace("vpc = \"main\"\ndescription", "vpc = \"mian\"\ndescription"),
            "security_group[0].vpc",
            "no VPC named \"mian\"",
        ),
        (
            BASE.replace("ips = [\"10.0.1.10\"]", "ips = [\"10.0.2.10\"]"),
            "eni[0].ips[0]",
            "is not in subnet \"a\"'s 10.0.1.0/24",
        ),
        (
            BASE.replace("ips = [\"10.0.1.10\"]", "ips = [\"10.0.1.3\"]"),
            "eni[0].ips[0]",
            "reserved by AWS",
        ),
        (
            BASE.replace("ips = [\"10.0.1.10\"]", "ips = [\"10.0.1.255\"]"),
            "eni[0].ips[0]",
            "reserved by AWS",
        ),
        (
            BASE.replace(
                "ips = [\"10.0.1.10\"]",
                "ips = [\"10.0.1.10\", \"fd00:0:0:1::2\"]",
            ),
            "eni[0].ips[1]",
            "reserved by AWS",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.10\"]"),
            "eni[1].ips[0]",
            "already assigned at eni[0].ips[0]",
        ),
        (
            BASE.replace("ips = [\"10.0.1.10\"]", "ips = [\"fd00:0:0:1::10\"]"),
            "eni[0].ips",
            "primary private IPv4",
        ),
        (
            eni("mac = \"02:00:00:00:00:10\"\nport = \"p0\"\nips = [\"10.0.1.11\"]")
                .replace("port = \"p1\"\n", ""),
            "eni[1].mac",
            "already used by eni[0]",
        ),
        (
            eni("mac = \"03:00:00:00:00:11\"\nips = [\"10.0.1.11\"]"),
            "eni[1].mac",
            "multicast",
        ),
        (
            eni("mac = \"02:00:00:00:00\"\nips = [\"10.0.1.11\"]"),
            "eni[1].mac",
            "not a MAC address",
        ),
        (
            eni("mac = \"02:50:41:4c:00:01\"\nips = [\"10.0.1.11\"]"),
            "eni[1].mac",
            "router's MAC",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\nvlan = 4095"),
            "eni[1].vlan",
            "outside 1..4094",
        ),
        (
            format!("{BASE}\n[uplink]\nport = \"p0\"\nmac = \"02:00:00:00:00:10\"\n"),
            "uplink.mac",
            "already used by eni[0]",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\ngroups = [\"webb\"]"),
            "eni[1].groups[0]",
            "no security group named \"webb\" in VPC \"main\" (InvalidGroup.NotFound)",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\ngroups = [\"web\", \"web\"]"),
            "eni[1].groups[1]",
            "listed twice",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\ngroups = []"),
            "eni[1].groups",
            "at least one group",
        ),
        (
            eni("mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\n[eni.conntrack]\nudp = 61"),
            "eni[1].conntrack.udp",
            "outside 30..60 s (UdpTimeout)",
        ),
        (
            rule("protocol = \"tcp\"\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].from_port",
            "tcp needs from_port and to_port",
        ),
        (
            rule("protocol = \"udp\"\nfrom_port = 53\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].to_port",
            "udp needs from_port and to_port",
        ),
        (
            rule("protocol = \"tcp\"\nfrom_port = 90\nto_port = 80\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].from_port",
            "from_port 90 is above to_port 80",
        ),
        (
            rule("protocol = \"tcp\"\nfrom_port = 1\nto_port = 70000\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].to_port",
            "outside 0..65535",
        ),
        (
            rule("protocol = \"icmp\"\nfrom_port = -1\nto_port = 0\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].to_port",
            "an ICMP type of -1 (all types) needs a to_port of -1",
        ),
        (
            rule("protocol = \"icmp\"\nfrom_port = 8\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].to_port",
            "give both from_port",
        ),
        (
            rule("protocol = \"gre\"\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].protocol",
            "unknown protocol \"gre\"",
        ),
        (
            rule("protocol = 256\ncidr = \"10.0.0.0/8\""),
            "security_group[0].ingress[1].protocol",
            "unknown protocol 256",
        ),
        (
            rule("protocol = \"-1\""),
            "security_group[0].ingress[1]",
            "needs exactly one peer",
        ),
        (
            rule("protocol = \"-1\"\ncidr = \"10.0.0.0/8\"\ngroup = \"web\""),
            "security_group[0].ingress[1]",
            "got 2",
        ),
        (
            rule("protocol = \"-1\"\ncidr = \"::/0\""),
            "security_group[0].ingress[1].cidr",
            "write it as ipv6_cidr",
        ),
        (
            rule("protocol = \"6\"\nfrom_port = 80\nto_port = 80\ncidr = \"0.0.0.0/0\""),
            "security_group[0].ingress[1]",
            "the same permission as ingress[0] (InvalidPermission.Duplicate)",
        ),
        (
            rule("protocol = \"-1\"\nprefix_list = \"corp\""),
            "security_group[0].ingress[1].prefix_list",
            "no prefix list named \"corp\"",
        ),
        (
            rule("protocol = \"-1\"\ngroup = \"other/web\""),
            "security_group[0].ingress[1].group",
            "no VPC named \"other\"",
        ),
        (
            format!(
                "{}\n[[vpc]]\nname = \"other\"\ncidr = \"10.1.0.0/16\"\n[[security_group]]\nname = \"x\"\nvpc = \"other\"\ndescription = \"x\"\n",
                rule("protocol = \"-1\"\ngroup = \"other/x\"")
            ),
            "security_group[0].ingress[1].group",
            "is not peered with \"other\"",
        ),
        (
            rule(&format!(
                "protocol = \"-1\"\ncidr = \"10.0.0.0/8\"\ndescription = \"{}\"",
                "d".repeat(256)
            )),
            "security_group[0].ingress[1].description",
            "longer than 255",
        ),
        (
            BASE.replace("name = \"web\"", "name = \"sg-web\"")
                .replace("[[eni]]", "[[eni]]\ngroups = [\"default\"]"),
            "security_group[0].name",
            "cannot start with \"sg-\"",
        ),
        (
            format!("{BASE}\n[[security_group]]\nname = \"web\"\nvpc = \"main\"\n"),
            "security_group[1].name",
            "duplicate security group name \"web\"",
        ),
        (
            format!(
                "{BASE}\n[[network_acl]]\nname = \"strict\"\nvpc = \"main\"\n[[network_acl.entry]]\nrule_number = 0\negress = false\nprotocol = \"-1\"\ncidr = \"0.0.0.0/0\"\naction = \"deny\"\n"
            ),
            "network_acl[0].entry[0].rule_number",
            "outside 1..32766",
        ),
        (
            format!(
                "{BASE}\n[[network_acl]]\nname = \"strict\"\nvpc = \"main\"\n\
                 [[network_acl.entry]]\nrule_number = 10\negress = true\nprotocol = \"-1\"\ncidr = \"0.0.0.0/0\"\naction = \"deny\"\n\
                 [[network_acl.entry]]\nrule_number = 10\negress = true\nprotocol = \"-1\"\nipv6_cidr = \"::/0\"\naction = \"deny\"\n"
            ),
            "network_acl[0].entry[1].rule_number",
            "already used by egress entry[0]",
        ),
        (
            format!(
                "{BASE}\n[[network_acl]]\nname = \"strict\"\nvpc = \"main\"\n[[network_acl.entry]]\nrule_number = 1\negress = false\nprotocol = \"tcp\"\ncidr = \"0.0.0.0/0\"\naction = \"allow\"\n"
            ),
            "network_acl[0].entry[0].from_port",
            "tcp needs from_port and to_port",
        ),
        (
            format!(
                "{BASE}\n[[network_acl]]\nname = \"strict\"\nvpc = \"main\"\n[[network_acl.entry]]\nrule_number = 1\negress = false\nprotocol = \"-1\"\ncidr = \"0.0.0.0/0\"\naction = \"maybe\"\n"
            ),
            "network_acl[0].entry[0].action",
            "unknown value \"maybe\"; expected one of \"allow\", \"deny\"",
        ),
        (
            format!("{BASE}\n[[network_acl]]\nname = \"x\"\nvpc = \"main\"\nsubnets = [\"zz\"]\n"),
            "network_acl[0].subnets[0]",
            "no subnet named \"zz\"",
        ),
        (
            format!(
                "{BASE}\n[[network_acl]]\nname = \"x\"\nvpc = \"main\"\nsubnets = [\"a\"]\n[[network_acl]]\nname = \"y\"\nvpc = \"main\"\nsubnets = [\"a\"]\n"
            ),
            "network_acl[1].subnets[0]",
            "exactly one network ACL",
        ),
        (
            BASE.replace("ipv6_cidr = \"fd00:0:0:1::/64\"", "network_acl = \"nope\""),
            "subnet[0].network_acl",
            "no network ACL named \"nope\"",
        ),
        (
            format!("{BASE}\n[[peering]]\nname = \"self\"\nvpcs = [\"main\", \"main\"]\n"),
            "peering[0].vpcs",
            "cannot be peered with itself",
        ),
        (
            format!(
                "{BASE}\n[[prefix_list]]\nname = \"corp\"\ncidrs = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\nmax_entries = 1\n"
            ),
            "prefix_list[0].max_entries",
            "more than its max_entries 1",
        ),
        (
            format!(
                "{BASE}\n[[prefix_list]]\nname = \"corp\"\ncidrs = [\"10.0.0.0/8\", \"fd00::/8\"]\nmax_entries = 5\n"
            ),
            "prefix_list[0].cidrs",
            "one address family",
        ),
        (
            format!("[appliance]\napi_listen = \"localhost\"\n{BASE}"),
            "appliance.api_listen",
            "not an ADDRESS:PORT",
        ),
        (
            format!("[appliance]\nprofile = \"builtin:nope\"\n{BASE}"),
            "appliance.profile",
            "no built-in profile \"nope\"",
        ),
        (
            format!("[appliance]\naccount_id = \"12\"\n{BASE}"),
            "appliance.account_id",
            "12 digits",
        ),
        (
            format!("[appliance]\naccess_key_id = \"AKIAX\"\n{BASE}"),
            "appliance.secret_access_key",
            "both or neither",
        ),
        (
            format!("[appliance]\nsecret_access_key = \"s\"\n{BASE}"),
            "appliance.access_key_id",
            "both or neither",
        ),
        (
            format!("[appliance]\naccess_key_id = \"AKIA X\"\nsecret_access_key = \"s\"\n{BASE}"),
            "appliance.access_key_id",
            "letters and digits",
        ),
        (
            format!("[quotas]\ngroups_per_eni = 17\n{BASE}"),
            "quotas.groups_per_eni",
            "between 1 and 16",
        ),
        (
            format!(
                "[quotas]\nrules_per_group = 1\n{}",
                rule("protocol = \"-1\"\ncidr = \"10.0.0.0/8\"")
            ),
            "security_group[0].ingress",
            "2 IPv4 ingress rules",
        ),
        (
            format!(
                "[quotas]\ngroups_per_eni = 1\n{}",
                eni(
                    "mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\ngroups = [\"web\", \"default\"]"
                )
            ),
            "eni[1].groups",
            "the quota is 1 per ENI",
        ),
        (
            format!(
                "[quotas]\nrules_per_eni = 1\n{}",
                eni(
                    "mac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\ngroups = [\"web\", \"default\"]"
                )
            ),
            "eni[1].groups",
            "2 IPv4 ingress rules together; the quota is 1 per ENI",
        ),
        (
            {
                let mut text = format!(
                    "[quotas]\nrules_per_network_acl = 2\n{BASE}\n[[network_acl]]\nname = \"x\"\nvpc = \"main\"\n"
                );
                for n in 1..=3 {
                    write!(text, "[[network_acl.entry]]\nrule_number = {n}\negress = false\nprotocol = \"-1\"\ncidr = \"10.{n}.0.0/16\"\naction = \"deny\"\n").expect("string");
                }
                text
            },
            "network_acl[0].entry",
            "3 IPv4 ingress entries; the quota is 2",
        ),
    ];
    for (text, key, fragment) in &cases {
        let problems = problems_of(text);
        assert!(
            problems
                .iter()
                .any(|problem| problem.key == *key && problem.message.contains(fragment)),
            "for\n{text}\nexpected `{key}: ...{fragment}...`, got {problems:#?}"
        );
        assert!(
            problems.iter().all(|p| p.line.is_some()
                || p.key.is_empty()
                || p.key == "security_group"
                || p.key == "network_acl"),
            "every problem has a line: {problems:#?}"
        );
    }
}

#[test]
fn all_problems_are_listed_one_per_line_in_file_order() {
    let text = BASE
        .replace("cidr = \"10.0.0.0/16\"", "cidr = \"10.0.0.1/16\"")
        .replace("from_port = 80", "from_port = 90");
    let error = Config::from_toml_str(&text, "demo.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "demo.toml:4: vpc[0].cidr: The CIDR '10.0.0.1/16' is invalid: 10.0.0.1/16 has host bits set after the prefix (did you mean 10.0.0.0/16?)\n\
         demo.toml:20: security_group[0].ingress[0].from_port: from_port 90 is above to_port 80"
    );
}

#[test]
fn syntax_and_read_errors_name_the_origin() {
    let error = Config::from_toml_str("[[vpc]]\nname = \"x\n", "bad.toml").unwrap_err();
    assert!(
        matches!(&error, ConfigError::Syntax { origin, line: 2, .. } if origin == "bad.toml"),
        "{error:?}"
    );
    assert!(error.problems().is_empty());
    let error = Config::load(Path::new("/nonexistent/palisade.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/palisade.toml: cannot read")
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("site.toml");
    std::fs::write(&path, BASE).expect("write");
    let config = Config::load(&path).expect("valid");
    assert_eq!(config.origin(), "site.toml");
    let error = config.to_spec(&|_| None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "site.toml:27: eni[0].port: no port named \"p0\" in the DPDK profile"
    );
}

#[test]
fn unknown_ports_are_all_reported_by_to_spec() {
    let text = format!(
        "{BASE}\n[[eni]]\nname = \"e1\"\nsubnet = \"a\"\nport = \"p1\"\nmac = \"02:00:00:00:00:11\"\nips = [\"10.0.1.11\"]\n[uplink]\nport = \"p2\"\nmac = \"02:00:00:00:00:99\"\n"
    );
    let config = Config::from_toml_str(&text, "x.toml").expect("valid");
    let error = config
        .to_spec(&|name| (name == "p0").then_some(0))
        .unwrap_err();
    let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["eni[1].port", "uplink.port"]);
    let spec = config.to_spec(&numbered_port).expect("resolves");
    assert_eq!(spec.enis[1].port, 1);
    assert_eq!(spec.uplink.map(|u| u.port), Some(2));
}

#[test]
fn check_ports_reports_what_to_spec_reports_without_a_spec() {
    let text = format!("{BASE}\n[uplink]\nport = \"p2\"\nmac = \"02:00:00:00:00:99\"\n");
    let config = Config::from_toml_str(&text, "x.toml").expect("valid");
    let only_p0 = |name: &str| (name == "p0").then_some(0);
    let checked = config.check_ports(&only_p0).unwrap_err();
    let built = config.to_spec(&only_p0).unwrap_err();
    assert_eq!(checked.to_string(), built.to_string());
    assert!(checked.to_string().contains("uplink.port"), "{checked}");
    config
        .check_ports(&numbered_port)
        .expect("every port resolves");
}

fn any4() -> Peer {
    Peer::Cidr4(Ipv4Cidr::ANY)
}
fn any6() -> Peer {
    Peer::Cidr6(Ipv6Cidr::ANY)
}
fn all_to(peer: Peer) -> (Protocol, PortSpec, Peer) {
    (Protocol::All, PortSpec::Any, peer)
}
fn contents(rules: &[SgRule]) -> Vec<(Protocol, PortSpec, Peer)> {
    rules
        .iter()
        .map(|r| (r.protocol, r.ports, r.peer.clone()))
        .collect()
}

#[test]
fn aws_defaults_are_applied() {
    let text = format!(
        "{BASE}\n[[vpc]]\nname = \"v4only\"\ncidr = \"10.9.0.0/16\"\n\
         [[subnet]]\nname = \"z\"\nvpc = \"v4only\"\ncidr = \"10.9.0.0/24\"\n\
         [[eni]]\nname = \"z0\"\nsubnet = \"z\"\nport = \"p1\"\nmac = \"02:00:00:00:00:20\"\nips = [\"10.9.0.4\"]\n"
    );
    let config = Config::from_toml_str(&text, "d.toml").expect("valid");
    let group = |vpc: &str, name: &str| {
        let id = config
            .id_of(ObjectKind::SecurityGroup, &format!("{vpc}/{name}"))
            .expect("exists");
        config
            .security_groups
            .iter()
            .find(|g| g.id.as_str() == id)
            .expect("group")
    };
    // The default group: all from itself; all out to 0.0.0.0/0, and ::/0
    // only in the VPC with IPv6.
    let main_default = group("main", "default");
    assert!(main_default.is_default);
    assert_eq!(main_default.description, "default VPC security group");
    assert_eq!(
        contents(&main_default.ingress),
        [all_to(Peer::Group(main_default.id.clone()))]
    );
    assert_eq!(
        contents(&main_default.egress),
        [all_to(any4()), all_to(any6())]
    );
    let v4_default = group("v4only", "default");
    assert_eq!(contents(&v4_default.egress), [all_to(any4())]);
    assert_ne!(main_default.id, v4_default.id, "one default group per VPC");
    // A declared group without egress gets all to 0.0.0.0/0 only.
    let web = group("main", "web");
    assert!(!web.is_default);
    assert_eq!(contents(&web.egress), [all_to(any4())]);
    // ENIs without groups get their VPC's default group.
    assert_eq!(
        config.enis[0].groups,
        std::slice::from_ref(&main_default.id)
    );
    assert_eq!(config.enis[1].groups, std::slice::from_ref(&v4_default.id));
    // Default ACLs: allow all, rule 100 (IPv4) and 101 (IPv6 when the VPC has it).
    let entries = |vpc: &palisade_policy::VpcId| {
        let acl = config
            .network_acls
            .iter()
            .find(|a| &a.vpc == vpc && a.is_default)
            .expect("default ACL");
        acl.entries
            .iter()
            .map(|e| (e.egress, e.rule_number, e.cidr.to_string(), e.action))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        entries(&config.vpcs[0].id),
        [
            (false, 100, "0.0.0.0/0".to_owned(), NaclAction::Allow),
            (false, 101, "::/0".to_owned(), NaclAction::Allow),
            (true, 100, "0.0.0.0/0".to_owned(), NaclAction::Allow),
            (true, 101, "::/0".to_owned(), NaclAction::Allow),
        ]
    );
    assert_eq!(entries(&config.vpcs[1].id).len(), 2);
    assert_eq!(
        config.subnets[1].network_acl,
        config.vpcs[1].default_network_acl
    );
    // And it all compiles.
    let spec = config.to_spec(&numbered_port).expect("ports");
    PolicySnapshot::compile(&spec, 1).expect("compiles");
}

#[test]
fn written_rule_lists_replace_defaults_and_an_empty_list_means_none() {
    let text = format!(
        "{BASE}\n[[security_group]]\nname = \"default\"\nvpc = \"main\"\ningress = []\n\
         [[security_group]]\nname = \"quiet\"\nvpc = \"main\"\ndescription = \"q\"\negress = []\n\
         [[network_acl]]\nname = \"closed\"\nvpc = \"main\"\nsubnets = [\"a\"]\n"
    );
    let config = Config::from_toml_str(&text, "d.toml").expect("valid");
    let default = config
        .security_groups
        .iter()
        .find(|g| g.is_default)
        .expect("default");
    assert!(
        default.ingress.is_empty(),
        "ingress = [] removes the self rule"
    );
    assert_eq!(default.egress.len(), 2, "absent egress keeps the default's");
    assert_eq!(
        config
            .security_groups
            .iter()
            .filter(|g| g.name == "default")
            .count(),
        1,
        "declaring default replaces it, not adds one"
    );
    let quiet = config
        .security_groups
        .iter()
        .find(|g| g.name == "quiet")
        .expect("quiet");
    assert!(quiet.ingress.is_empty() && quiet.egress.is_empty());
    let closed = config
        .network_acls
        .iter()
        .find(|a| a.name == "closed")
        .expect("closed");
    assert!(closed.entries.is_empty(), "a new custom ACL denies all");
    assert_eq!(config.subnets[0].network_acl, closed.id);
}

#[test]
fn ids_are_deterministic_aws_shaped_and_distinct() {
    let a = Config::demo();
    let b = Config::from_toml_str(DEMO_TOML, "again").expect("valid");
    let ports = tap_demo_ports();
    let spec_a = a.to_spec(&port_of(&ports)).expect("ports");
    let spec_b = b.to_spec(&port_of(&ports)).expect("ports");
    assert_eq!(spec_a, spec_b, "same text, same ids");
    let mut seen = BTreeSet::new();
    let mut check = |kind: ObjectKind, id: &str| {
        assert!(
            is_aws_shaped(kind, id),
            "{id} is not {}-[0-9a-f]{{17}}",
            kind.prefix()
        );
        assert!(seen.insert(id.to_owned()), "{id} is used twice");
    };
    for v in &spec_a.vpcs {
        check(ObjectKind::Vpc, v.id.as_str());
    }
    for s in &spec_a.subnets {
        check(ObjectKind::Subnet, s.id.as_str());
    }
    for g in &spec_a.security_groups {
        check(ObjectKind::SecurityGroup, g.id.as_str());
        for r in g.ingress.iter().chain(&g.egress) {
            check(ObjectKind::SecurityGroupRule, r.id.as_str());
        }
    }
    for e in &spec_a.enis {
        check(ObjectKind::NetworkInterface, e.id.as_str());
    }
    for n in &spec_a.nacls {
        check(ObjectKind::NetworkAcl, n.id.as_str());
    }
    // Renaming an object changes its id and nothing else's.
    let renamed = Config::from_toml_str(
        &DEMO_TOML.replace("name = \"eni-c\"", "name = \"eni-z\""),
        "r",
    )
    .expect("valid");
    let spec_r = renamed.to_spec(&port_of(&ports)).expect("ports");
    assert_eq!(spec_r.enis[0].id, spec_a.enis[0].id);
    assert_ne!(spec_r.enis[2].id, spec_a.enis[2].id);
    assert_eq!(spec_r.security_groups, spec_a.security_groups);
    // Rule ids follow (vpc, group, direction, position).
    let web = &spec_a.security_groups[1];
    assert_eq!(
        web.ingress[1].id.as_str(),
        object_id(ObjectKind::SecurityGroupRule, "demo/web/ingress/1")
    );
    assert_eq!(
        a.id_of(ObjectKind::SecurityGroupRule, "demo/web/ingress/1"),
        Some(web.ingress[1].id.as_str())
    );
}

#[test]
fn peered_group_references_and_prefix_lists_resolve() {
    let text = format!(
        "{BASE}\n[[vpc]]\nname = \"other\"\ncidr = \"10.1.0.0/16\"\n\
         [[security_group]]\nname = \"db\"\nvpc = \"other\"\ndescription = \"db\"\n\
         [[security_group.ingress]]\nprotocol = \"tcp\"\nfrom_port = 5432\nto_port = 5432\ngroup = \"main/web\"\n\
         [[security_group.ingress]]\nprotocol = 6\nfrom_port = 22\nto_port = 22\nprefix_list = \"admins\"\n\
         [[peering]]\nname = \"main-other\"\nvpcs = [\"main\", \"other\"]\nactive = false\n\
         [[prefix_list]]\nname = \"admins\"\ncidrs = [\"192.0.2.0/24\"]\nmax_entries = 10\n"
    );
    let config = Config::from_toml_str(&text, "p.toml").expect("valid");
    let db = config
        .security_groups
        .iter()
        .find(|g| g.name == "db")
        .expect("db");
    let web = config
        .id_of(ObjectKind::SecurityGroup, "main/web")
        .expect("web");
    assert_eq!(db.ingress[0].peer, Peer::Group(web.into()));
    assert_eq!(db.ingress[1].protocol, Protocol::Tcp, "6 is tcp");
    let admins = config.id_of(ObjectKind::PrefixList, "admins").expect("pl");
    assert_eq!(db.ingress[1].peer, Peer::PrefixList(admins.into()));
    assert!(!config.peerings[0].active);
    let spec = config.to_spec(&numbered_port).expect("ports");
    PolicySnapshot::compile(&spec, 1).expect("compiles");
}

// ----- property tests -----

/// A plain model of a world: per VPC, whether it has IPv6, its subnets'
/// ENI counts, its groups with their written rules, and per ENI the
/// indices of its groups (None = the key left out).
#[derive(Debug, Clone)]
struct ModelVpc {
    ipv6: bool,
    groups: Vec<ModelGroup>,
    subnets: Vec<Vec<Option<Vec<usize>>>>,
}

#[derive(Debug, Clone)]
struct ModelGroup {
    ingress: Vec<ModelRule>,
    egress: Option<Vec<ModelRule>>,
}

#[derive(Debug, Clone, PartialEq)]
enum ModelRule {
    Tcp(u16, u16, u8),
    Icmp(Option<u8>, Option<u8>, u8),
    All(u8),
    /// A rule allowing `-1` from group `index` of the same VPC.
    FromGroup(usize),
}

fn model_rule() -> impl Strategy<Value = ModelRule> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), 8u8..=32).prop_map(|(a, b, len)| ModelRule::Tcp(
            a.min(b),
            a.max(b),
            len
        )),
        (
            proptest::option::of(0u8..20),
            proptest::option::of(0u8..5),
            8u8..=32
        )
            .prop_map(|(t, c, len)| ModelRule::Icmp(
                t,
                if t.is_none() { None } else { c },
                len
            )),
        (0u8..=32).prop_map(ModelRule::All),
        (0usize..3).prop_map(ModelRule::FromGroup),
    ]
}

fn model_vpc() -> impl Strategy<Value = ModelVpc> {
    let group = (
        proptest::collection::vec(model_rule(), 0..4),
        proptest::option::of(proptest::collection::vec(model_rule(), 0..3)),
    )
        .prop_map(|(ingress, egress)| ModelGroup { ingress, egress });
    (
        any::<bool>(),
        proptest::collection::vec(group, 1..4),
        proptest::collection::vec(
            proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(0usize..3, 1..3)),
                0..3,
            ),
            1..3,
        ),
    )
        .prop_map(|(ipv6, groups, subnets)| ModelVpc {
            ipv6,
            groups,
            subnets,
        })
}

impl ModelRule {
    /// The rule as the config should hold it, group peers by model name.
    fn expected(&self, vpc: usize, groups: usize) -> (Protocol, PortSpec, String) {
        let cidr = |len: u8| {
            Ipv4Cidr::truncating(std::net::Ipv4Addr::new(10, 20, 30, 40), len).to_string()
        };
        match *self {
            Self::Tcp(from, to, len) => (Protocol::Tcp, PortSpec::Range { from, to }, cidr(len)),
            Self::Icmp(icmp_type, code, len) => (
                Protocol::Icmp,
                PortSpec::Icmp { icmp_type, code },
                cidr(len),
            ),
            Self::All(len) => (Protocol::All, PortSpec::Any, cidr(len)),
            Self::FromGroup(g) => (
                Protocol::All,
                PortSpec::Any,
                format!("group:v{vpc}/g{}", g % groups),
            ),
        }
    }

    fn toml(&self, groups: usize) -> String {
        let cidr = |len: u8| {
            Ipv4Cidr::truncating(std::net::Ipv4Addr::new(10, 20, 30, 40), len).to_string()
        };
        match *self {
            Self::Tcp(from, to, len) => format!(
                "protocol = \"tcp\"\nfrom_port = {from}\nto_port = {to}\ncidr = \"{}\"\n",
                cidr(len)
            ),
            Self::Icmp(t, c, len) => format!(
                "protocol = \"icmp\"\nfrom_port = {}\nto_port = {}\ncidr = \"{}\"\n",
                t.map_or(-1, i32::from),
                c.map_or(-1, i32::from),
                cidr(len)
            ),
            Self::All(len) => format!("protocol = \"-1\"\ncidr = \"{}\"\n", cidr(len)),
            Self::FromGroup(g) => format!("protocol = \"all\"\ngroup = \"g{}\"\n", g % groups),
        }
    }
}

/// Drops later duplicates (by expected content), as a user fixing
/// `InvalidPermission.Duplicate` would.
fn dedup_rules(rules: &[ModelRule], vpc: usize, groups: usize) -> Vec<ModelRule> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for rule in rules {
        let content = rule.expected(vpc, groups);
        if !seen.contains(&content) {
            seen.push(content);
            out.push(rule.clone());
        }
    }
    out
}

fn render(model: &[ModelVpc]) -> String {
    let mut text = String::new();
    let mut mac = 0x10u32;
    for (v, vpc) in model.iter().enumerate() {
        write!(text, "[[vpc]]\nname = \"v{v}\"\ncidr = \"10.{v}.0.0/16\"\n").expect("string");
        if vpc.ipv6 {
            writeln!(text, "ipv6_cidr = \"fd{v:02x}::/56\"").expect("string");
        }
        for (g, group) in vpc.groups.iter().enumerate() {
            write!(
                text,
                "[[security_group]]\nname = \"g{g}\"\nvpc = \"v{v}\"\ndescription = \"group {g}\"\n"
            )
            .expect("string");
            let n = vpc.groups.len();
            if group.ingress.is_empty() {
                text.push_str("ingress = []\n");
            }
            if group.egress.as_ref().is_some_and(Vec::is_empty) {
                text.push_str("egress = []\n");
            }
            for rule in dedup_rules(&group.ingress, v, n) {
                write!(text, "[[security_group.ingress]]\n{}", rule.toml(n)).expect("string");
            }
            for rule in dedup_rules(group.egress.as_deref().unwrap_or_default(), v, n) {
                write!(text, "[[security_group.egress]]\n{}", rule.toml(n)).expect("string");
            }
        }
        for (s, enis) in vpc.subnets.iter().enumerate() {
            write!(
                text,
                "[[subnet]]\nname = \"v{v}s{s}\"\nvpc = \"v{v}\"\ncidr = \"10.{v}.{s}.0/24\"\n"
            )
            .expect("string");
            if vpc.ipv6 {
                writeln!(text, "ipv6_cidr = \"fd{v:02x}:0:0:{s:x}::/64\"").expect("string");
            }
            for (e, groups) in enis.iter().enumerate() {
                mac += 1;
                let [_, _, b2, b3] = mac.to_be_bytes();
                write!(
                    text,
                    "[[eni]]\nname = \"v{v}s{s}e{e}\"\nsubnet = \"v{v}s{s}\"\nport = \"p{}\"\nmac = \"02:00:00:00:{b2:02x}:{b3:02x}\"\nips = [\"10.{v}.{s}.{}\"]\n",
                    e % 3,
                    10 + e
                )
                .expect("string");
                if let Some(groups) = groups {
                    let mut names: Vec<String> = groups
                        .iter()
                        .map(|g| format!("\"g{}\"", g % vpc.groups.len()))
                        .collect();
                    names.dedup();
                    names.sort();
                    names.dedup();
                    writeln!(text, "groups = [{}]", names.join(", ")).expect("string");
                }
            }
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Differential: the configuration of a random world holds exactly the
    /// model's rules (defaults where the model leaves a list out), the
    /// model's group attachments (the default group where it leaves them
    /// out), and its spec compiles.
    #[test]
    fn random_worlds_load_as_modelled_and_compile(model in proptest::collection::vec(model_vpc(), 1..3)) {
        let text = render(&model);
        let config = Config::from_toml_str(&text, "model.toml")
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let names: BTreeMap<String, String> = config
            .security_groups
            .iter()
            .map(|g| {
                let vpc = config.vpcs.iter().find(|v| v.id == g.vpc).expect("vpc");
                (g.id.0.clone(), format!("{}/{}", vpc.name, g.name))
            })
            .collect();
        for (v, vpc) in model.iter().enumerate() {
            let n = vpc.groups.len();
            for (g, group) in vpc.groups.iter().enumerate() {
                let id = config.id_of(ObjectKind::SecurityGroup, &format!("v{v}/g{g}")).expect("group");
                let ours = config.security_groups.iter().find(|x| x.id.as_str() == id).expect("group");
                let expected_in: HashSet<_> = group.ingress.iter().map(|r| r.expected(v, n)).collect();
                prop_assert_eq!(rule_set(&ours.ingress, &names), expected_in);
                let expected_out: HashSet<_> = match &group.egress {
                    Some(rules) => rules.iter().map(|r| r.expected(v, n)).collect(),
                    None => HashSet::from([(Protocol::All, PortSpec::Any, "0.0.0.0/0".to_owned())]),
                };
                prop_assert_eq!(rule_set(&ours.egress, &names), expected_out);
            }
            let default = config.id_of(ObjectKind::SecurityGroup, &format!("v{v}/default")).expect("default");
            for (s, enis) in vpc.subnets.iter().enumerate() {
                for (e, groups) in enis.iter().enumerate() {
                    let eni = config.enis.iter().find(|x| x.name == format!("v{v}s{s}e{e}")).expect("eni");
                    let expected: BTreeSet<String> = match groups {
                        Some(gs) => gs.iter().map(|g| config.id_of(ObjectKind::SecurityGroup, &format!("v{v}/g{}", g % n)).expect("g").to_owned()).collect(),
                        None => BTreeSet::from([default.to_owned()]),
                    };
                    let got: BTreeSet<String> = eni.groups.iter().map(|g| g.0.clone()).collect();
                    prop_assert_eq!(got, expected);
                }
            }
        }
        let spec = config.to_spec(&numbered_port).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(PolicySnapshot::compile(&spec, 1).is_ok());
    }

    /// Whatever the text, loading returns a configuration or an error,
    /// never a panic; an error always names the origin.
    #[test]
    fn arbitrary_text_never_panics(text in "[\\[\\]a-z_=\"0-9,.:/\n \\-]{0,200}") {
        if let Err(error) = Config::from_toml_str(&text, "fuzz.toml") {
            prop_assert!(error.to_string().starts_with("fuzz.toml"));
        }
    }

    /// Cutting a piece out of the demo gives a configuration or an error,
    /// never a panic, and every problem of an error names the origin.
    #[test]
    fn damaged_demo_never_panics(start in 0usize..6000, length in 0usize..64) {
        let original = DEMO_TOML.as_bytes();
        let start = start.min(original.len());
        let end = (start + length).min(original.len());
        let mut damaged = original[..start].to_vec();
        damaged.extend_from_slice(&original[end..]);
        let text = String::from_utf8_lossy(&damaged);
        match Config::from_toml_str(&text, "damaged.toml") {
            Ok(config) => {
                let _ = config.to_spec(&|_| Some(0));
            }
            Err(error) => {
                for line in error.to_string().lines() {
                    prop_assert!(line.starts_with("damaged.toml"), "{}", line);
                }
            }
        }
    }
}

#[test]
fn an_access_key_pair_in_the_file_is_kept_and_absent_by_default() {
    let with = Config::from_toml_str(
        &format!(
            "[appliance]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"wJalr/K7+x\"\n{BASE}"
        ),
        "test",
    )
    .unwrap();
    assert_eq!(
        with.appliance.access_key,
        Some(("AKIAIOSFODNN7EXAMPLE".to_owned(), "wJalr/K7+x".to_owned()))
    );
    let without = Config::from_toml_str(BASE, "test").unwrap();
    assert_eq!(without.appliance.access_key, None);
}
