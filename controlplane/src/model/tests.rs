use std::net::IpAddr;

use palisade_policy::{
    ConntrackTimeouts, IpCidr, Ipv4Cidr, Ipv6Cidr, NaclAction, Peer, PortSpec, Protocol, SgId,
};

use super::*;
use crate::config::Config;

/// Sequential ids so tests can name objects they did not get back.
#[derive(Debug, Default)]
pub(crate) struct CountingIds(u64);

impl IdSource for CountingIds {
    fn fresh_id(&mut self, kind: ObjectKind) -> String {
        self.0 += 1;
        format!("{}-{:017x}", kind.prefix(), self.0)
    }
}

struct World {
    model: Model,
    ids: CountingIds,
    vpc: String,
    subnet: String,
    default_group: String,
}

impl World {
    fn new() -> Self {
        Self::with_quotas(Quotas::default())
    }

    fn with_quotas(quotas: Quotas) -> Self {
        let mut model = Model::new(quotas, [2, 0, 0, 0, 0, 1]);
        let mut ids = CountingIds::default();
        let vpc = created(model.apply(
            &Op::CreateVpc {
                cidr: "10.0.0.0/16".into(),
                ipv6_cidr: None,
            },
            &mut ids,
        ));
        let subnet = created(model.apply(
            &Op::CreateSubnet {
                vpc: vpc.clone(),
                cidr: "10.0.1.0/24".into(),
            },
            &mut ids,
        ));
        let default_group = model.vpcs[&vpc].default_group.0.clone();
        Self {
            model,
            ids,
            vpc,
            subnet,
            default_group,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Outcome, ApiError> {
        let before = self.model.clone();
        let result = self.model.apply(op, &mut self.ids);
        if result.is_err() {
            assert_eq!(self.model, before, "a failed op changed the model: {op:?}");
        }
        result
    }

    fn group(&mut self, name: &str) -> String {
        created(self.apply(&Op::CreateSecurityGroup {
            vpc: self.vpc.clone(),
            name: name.into(),
            description: "test".into(),
        }))
    }

    fn eni(&mut self, ip: &str, groups: Vec<String>) -> String {
        let ip: IpAddr = ip.parse().unwrap();
        let IpAddr::V4(v4) = ip else {
            panic!("tests use IPv4 ENIs")
        };
        let [_, _, c, d] = v4.octets();
        created(self.apply(&Op::CreateNetworkInterface {
            subnet: self.subnet.clone(),
            mac: [2, 0, 0, 0, c, d],
            private_ips: vec![ip],
            groups,
            port: "p0".into(),
            vlan: None,
        }))
    }
}

fn created(result: Result<Outcome, ApiError>) -> String {
    match result {
        Ok(Outcome::Created(ids)) => ids[0].clone(),
        other => panic!("expected a created object, got {other:?}"),
    }
}

fn tcp(port: i32, peer: PeerRequest) -> Permission {
    Permission {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        peer,
        description: String::new(),
    }
}

fn cidr(text: &str) -> PeerRequest {
    PeerRequest::Cidr(text.into())
}

fn authorize(group: &str, permission: Permission) -> Op {
    Op::Authorize {
        group: group.into(),
        egress: false,
        permissions: vec![permission],
    }
}

#[test]
fn vpc_gets_default_group_with_aws_rules_and_default_acl() {
    let w = World::new();
    let group = &w.model.security_groups[&w.default_group];
    assert!(group.is_default);
    assert_eq!(group.name, "default");
    assert_eq!(group.ingress.len(), 1);
    assert_eq!(
        group.ingress[0].peer,
        Peer::Group(SgId(w.default_group.clone()))
    );
    assert_eq!(group.egress.len(), 1);
    assert_eq!(group.egress[0].peer, Peer::Cidr4(Ipv4Cidr::ANY));
    assert!(group.egress[0].id.as_str().starts_with("sgr-"));
    let acl = &w.model.network_acls[w.model.vpcs[&w.vpc].default_network_acl.as_str()];
    assert!(acl.is_default);
    assert!(acl.entries.iter().all(|e| e.action == NaclAction::Allow));
    assert_eq!(w.model.subnets[&w.subnet].network_acl, acl.id);
}

#[test]
fn ipv6_vpc_default_group_also_allows_ipv6_egress() {
    let mut model = Model::default();
    let mut ids = CountingIds::default();
    let vpc = created(model.apply(
        &Op::CreateVpc {
            cidr: "10.1.0.0/16".into(),
            ipv6_cidr: Some("2001:db8::/56".into()),
        },
        &mut ids,
    ));
    let group = &model.security_groups[model.vpcs[&vpc].default_group.as_str()];
    assert!(
        group
            .egress
            .iter()
            .any(|r| r.peer == Peer::Cidr6(Ipv6Cidr::ANY))
    );
}

#[test]
fn new_group_has_no_ingress_and_egress_allow_all() {
    let mut w = World::new();
    let sg = w.group("web");
    let group = &w.model.security_groups[&sg];
    assert!(group.ingress.is_empty());
    assert_eq!(group.egress.len(), 1);
    assert_eq!(group.egress[0].protocol, Protocol::All);
    assert_eq!(group.egress[0].peer, Peer::Cidr4(Ipv4Cidr::ANY));
}

#[test]
fn eni_without_groups_gets_the_default_group() {
    let mut w = World::new();
    let eni = w.eni("10.0.1.10", vec![]);
    assert_eq!(
        w.model.enis[&eni].groups,
        vec![SgId(w.default_group.clone())]
    );
}

#[test]
fn random_ids_are_aws_shaped_and_distinct() {
    let mut ids = RandomIds::default();
    let a = ids.fresh_id(ObjectKind::SecurityGroup);
    let b = ids.fresh_id(ObjectKind::SecurityGroup);
    assert!(is_aws_shaped(ObjectKind::SecurityGroup, &a), "{a}");
    assert!(is_aws_shaped(
        ObjectKind::SecurityGroupRule,
        &ids.fresh_id(ObjectKind::SecurityGroupRule)
    ));
    assert_ne!(a, b);
}

/// Each case: a setup-independent op on a fresh world and the AWS code it
/// must fail with.
#[test]
fn error_codes_table() {
    type Case = (&'static str, fn(&mut World) -> Op, &'static str);
    let cases: &[Case] = &[
        (
            "vpc host bits",
            |_| Op::CreateVpc {
                cidr: "10.0.0.1/16".into(),
                ipv6_cidr: None,
            },
            "InvalidParameterValue",
        ),
        (
            "vpc too big",
            |_| Op::CreateVpc {
                cidr: "10.0.0.0/8".into(),
                ipv6_cidr: None,
            },
            "InvalidVpc.Range",
        ),
        (
            "delete unknown vpc",
            |_| Op::DeleteVpc {
                vpc: "vpc-00000000000000bad".into(),
            },
            "InvalidVpcID.NotFound",
        ),
        (
            "delete vpc with subnet",
            |w| Op::DeleteVpc { vpc: w.vpc.clone() },
            "DependencyViolation",
        ),
        (
            "subnet in unknown vpc",
            |_| Op::CreateSubnet {
                vpc: "vpc-00000000000000bad".into(),
                cidr: "10.0.2.0/24".into(),
            },
            "InvalidVpcID.NotFound",
        ),
        (
            "subnet outside vpc",
            |w| Op::CreateSubnet {
                vpc: w.vpc.clone(),
                cidr: "10.9.0.0/24".into(),
            },
            "InvalidSubnet.Range",
        ),
        (
            "subnet overlap",
            |w| Op::CreateSubnet {
                vpc: w.vpc.clone(),
                cidr: "10.0.1.0/25".into(),
            },
            "InvalidSubnet.Conflict",
        ),
        (
            "group name sg-",
            |w| Op::CreateSecurityGroup {
                vpc: w.vpc.clone(),
                name: "sg-x".into(),
                description: "d".into(),
            },
            "InvalidParameterValue",
        ),
        (
            "group name 256",
            |w| Op::CreateSecurityGroup {
                vpc: w.vpc.clone(),
                name: "n".repeat(256),
                description: "d".into(),
            },
            "InvalidParameterValue",
        ),
        (
            "group name duplicate",
            |w| Op::CreateSecurityGroup {
                vpc: w.vpc.clone(),
                name: "default".into(),
                description: "d".into(),
            },
            "InvalidGroup.Duplicate",
        ),
        (
            "group in unknown vpc",
            |_| Op::CreateSecurityGroup {
                vpc: "vpc-00000000000000bad".into(),
                name: "x".into(),
                description: "d".into(),
            },
            "InvalidVpcID.NotFound",
        ),
        (
            "delete default group",
            |w| Op::DeleteSecurityGroup {
                group: w.default_group.clone(),
            },
            "CannotDelete",
        ),
        (
            "delete unknown group",
            |_| Op::DeleteSecurityGroup {
                group: "sg-00000000000000bad".into(),
            },
            "InvalidGroup.NotFound",
        ),
        (
            "malformed group id",
            |_| Op::DeleteSecurityGroup {
                group: "web".into(),
            },
            "InvalidGroupId.Malformed",
        ),
        (
            "authorize duplicate",
            |w| {
                let sg = w.group("a");
                w.apply(&authorize(&sg, tcp(22, cidr("10.0.0.0/8"))))
                    .unwrap();
                authorize(&sg, tcp(22, cidr("10.0.0.0/8")))
            },
            "InvalidPermission.Duplicate",
        ),
        (
            "authorize duplicate default egress",
            |w| {
                let sg = w.group("a");
                Op::Authorize {
                    group: sg,
                    egress: true,
                    permissions: vec![Permission {
                        protocol: "-1".into(),
                        from_port: None,
                        to_port: None,
                        peer: cidr("0.0.0.0/0"),
                        description: "other text".into(),
                    }],
                }
            },
            "InvalidPermission.Duplicate",
        ),
        (
            "authorize host bits",
            |w| {
                let sg = w.group("a");
                authorize(&sg, tcp(22, cidr("10.0.0.1/8")))
            },
            "InvalidParameterValue",
        ),
        (
            "authorize bad protocol",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        protocol: "bogus".into(),
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "InvalidParameterValue",
        ),
        (
            "tcp without ports",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        from_port: None,
                        to_port: None,
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "MissingParameter",
        ),
        (
            "tcp reversed range",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        from_port: Some(90),
                        to_port: Some(80),
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "InvalidParameterValue",
        ),
        (
            "icmp type -1 code 3",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        protocol: "icmp".into(),
                        from_port: Some(-1),
                        to_port: Some(3),
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "InvalidParameterValue",
        ),
        (
            "icmp type 300",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        protocol: "icmp".into(),
                        from_port: Some(300),
                        to_port: Some(-1),
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "InvalidParameterValue",
        ),
        (
            "description 256",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    Permission {
                        description: "d".repeat(256),
                        ..tcp(1, cidr("10.0.0.0/8"))
                    },
                )
            },
            "InvalidParameterValue",
        ),
        (
            "authorize unknown peer group",
            |w| {
                let sg = w.group("a");
                authorize(
                    &sg,
                    tcp(1, PeerRequest::Group("sg-00000000000000bad".into())),
                )
            },
            "InvalidGroup.NotFound",
        ),
        (
            "authorize unknown group",
            |_| authorize("sg-00000000000000bad", tcp(1, cidr("10.0.0.0/8"))),
            "InvalidGroup.NotFound",
        ),
        (
            "revoke missing",
            |w| {
                let sg = w.group("a");
                Op::Revoke {
                    group: sg,
                    egress: false,
                    permissions: vec![tcp(22, cidr("10.0.0.0/8"))],
                }
            },
            "InvalidPermission.NotFound",
        ),
        (
            "revoke unknown rule id",
            |w| {
                let sg = w.group("a");
                Op::RevokeRuleIds {
                    group: sg,
                    egress: true,
                    rule_ids: vec!["sgr-00000000000000bad".into()],
                }
            },
            "InvalidSecurityGroupRuleId.NotFound",
        ),
        (
            "modify unknown rule id",
            |w| {
                let sg = w.group("a");
                Op::ModifySecurityGroupRules {
                    group: sg,
                    rules: vec![("sgr-00000000000000bad".into(), tcp(1, cidr("10.0.0.0/8")))],
                }
            },
            "InvalidSecurityGroupRuleId.NotFound",
        ),
        (
            "delete attached group",
            |w| {
                let sg = w.group("a");
                w.eni("10.0.1.5", vec![sg.clone()]);
                Op::DeleteSecurityGroup { group: sg }
            },
            "DependencyViolation",
        ),
        (
            "delete referenced group",
            |w| {
                let a = w.group("a");
                let b = w.group("b");
                w.apply(&authorize(&b, tcp(5, PeerRequest::Group(a.clone()))))
                    .unwrap();
                Op::DeleteSecurityGroup { group: a }
            },
            "DependencyViolation",
        ),
        (
            "eni in unknown subnet",
            |_| Op::CreateNetworkInterface {
                subnet: "subnet-00000000000000bad".into(),
                mac: [0; 6],
                private_ips: vec![],
                groups: vec![],
                port: "p".into(),
                vlan: None,
            },
            "InvalidSubnetID.NotFound",
        ),
        (
            "eni ip outside subnet",
            |w| Op::CreateNetworkInterface {
                subnet: w.subnet.clone(),
                mac: [0; 6],
                private_ips: vec!["10.0.2.1".parse().unwrap()],
                groups: vec![],
                port: "p".into(),
                vlan: None,
            },
            "InvalidParameterValue",
        ),
        (
            "eni ip in use",
            |w| {
                w.eni("10.0.1.7", vec![]);
                Op::CreateNetworkInterface {
                    subnet: w.subnet.clone(),
                    mac: [0; 6],
                    private_ips: vec!["10.0.1.7".parse().unwrap()],
                    groups: vec![],
                    port: "p".into(),
                    vlan: None,
                }
            },
            "InvalidIPAddress.InUse",
        ),
        (
            "eni same port vlan mac",
            |w| {
                w.eni("10.0.1.7", vec![]);
                Op::CreateNetworkInterface {
                    subnet: w.subnet.clone(),
                    mac: [2, 0, 0, 0, 1, 7],
                    private_ips: vec![],
                    groups: vec![],
                    port: "p0".into(),
                    vlan: None,
                }
            },
            "InvalidParameterValue",
        ),
        (
            "modify unknown eni",
            |_| Op::ModifyNetworkInterface {
                eni: "eni-00000000000000bad".into(),
                change: EniChange::default(),
            },
            "InvalidNetworkInterfaceID.NotFound",
        ),
        (
            "eni timeouts out of range",
            |w| {
                let e = w.eni("10.0.1.8", vec![]);
                Op::ModifyNetworkInterface {
                    eni: e,
                    change: EniChange {
                        timeouts: Some((59, 180, 30)),
                        ..EniChange::default()
                    },
                }
            },
            "InvalidParameterValue",
        ),
        (
            "eni too many groups",
            |w| {
                let groups: Vec<String> = (0..6).map(|i| w.group(&format!("g{i}"))).collect();
                let e = w.eni("10.0.1.9", vec![]);
                Op::ModifyNetworkInterface {
                    eni: e,
                    change: EniChange {
                        groups: Some(groups),
                        ..EniChange::default()
                    },
                }
            },
            "SecurityGroupsPerInterfaceLimitExceeded",
        ),
        (
            "nacl entry duplicate",
            |w| {
                let acl = w.model.vpcs[&w.vpc].default_network_acl.0.clone();
                Op::PutNetworkAclEntry {
                    acl,
                    replace: false,
                    entry: NaclEntryRequest {
                        rule_number: 100,
                        egress: false,
                        protocol: "-1".into(),
                        cidr: "0.0.0.0/0".into(),
                        from_port: None,
                        to_port: None,
                        allow: true,
                    },
                }
            },
            "NetworkAclEntryAlreadyExists",
        ),
        (
            "nacl rule number 0",
            |w| {
                let acl = w.model.vpcs[&w.vpc].default_network_acl.0.clone();
                Op::PutNetworkAclEntry {
                    acl,
                    replace: false,
                    entry: NaclEntryRequest {
                        rule_number: 0,
                        egress: false,
                        protocol: "-1".into(),
                        cidr: "0.0.0.0/0".into(),
                        from_port: None,
                        to_port: None,
                        allow: true,
                    },
                }
            },
            "InvalidParameterValue",
        ),
        (
            "nacl replace missing",
            |w| {
                let acl = w.model.vpcs[&w.vpc].default_network_acl.0.clone();
                Op::PutNetworkAclEntry {
                    acl,
                    replace: true,
                    entry: NaclEntryRequest {
                        rule_number: 7,
                        egress: false,
                        protocol: "-1".into(),
                        cidr: "0.0.0.0/0".into(),
                        from_port: None,
                        to_port: None,
                        allow: true,
                    },
                }
            },
            "InvalidNetworkAclEntry.NotFound",
        ),
        (
            "peering same vpc",
            |w| Op::RequestPeering {
                vpc: w.vpc.clone(),
                peer_vpc: w.vpc.clone(),
            },
            "InvalidVpcPeeringConnection.Overlap",
        ),
        (
            "prefix list over max",
            |_| Op::CreatePrefixList {
                name: "p".into(),
                max_entries: 1,
                cidrs: vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
            },
            "PrefixListMaxEntriesExceeded",
        ),
        (
            "tag unknown resource",
            |_| Op::CreateTags {
                resources: vec!["sg-00000000000000bad".into()],
                tags: vec![("k".into(), "v".into())],
            },
            "InvalidID",
        ),
    ];
    for (name, make, code) in cases {
        let mut w = World::new();
        let op = make(&mut w);
        match w.apply(&op) {
            Err(error) => assert_eq!(error.code, *code, "case {name}: {error}"),
            Ok(outcome) => panic!("case {name}: expected {code}, got {outcome:?}"),
        }
    }
}

#[test]
fn rule_quota_counts_families_separately_and_prefix_lists_by_max_size() {
    let quotas = Quotas {
        rules_per_group: 2,
        ..Quotas::default()
    };
    let mut w = World::with_quotas(quotas);
    let sg = w.group("q");
    w.apply(&authorize(&sg, tcp(1, cidr("10.0.0.0/8"))))
        .unwrap();
    w.apply(&authorize(&sg, tcp(2, cidr("10.0.0.0/8"))))
        .unwrap();
    w.apply(&authorize(&sg, tcp(3, cidr("::/0")))).unwrap();
    let error = w
        .apply(&authorize(&sg, tcp(4, cidr("10.0.0.0/8"))))
        .unwrap_err();
    assert_eq!(error.code, "RulesPerSecurityGroupLimitExceeded");
    let sg2 = w.group("q2");
    let pl = created(w.apply(&Op::CreatePrefixList {
        name: "big".into(),
        max_entries: 3,
        cidrs: vec![],
    }));
    let error = w
        .apply(&authorize(&sg2, tcp(1, PeerRequest::PrefixList(pl))))
        .unwrap_err();
    assert_eq!(error.code, "RulesPerSecurityGroupLimitExceeded");
}

#[test]
fn group_quota_per_vpc() {
    let quotas = Quotas {
        groups_per_vpc: 2,
        ..Quotas::default()
    };
    let mut w = World::with_quotas(quotas);
    w.group("one");
    let error = w
        .apply(&Op::CreateSecurityGroup {
            vpc: w.vpc.clone(),
            name: "two".into(),
            description: String::new(),
        })
        .unwrap_err();
    assert_eq!(error.code, "SecurityGroupLimitExceeded");
}

#[test]
fn revoke_by_permission_and_by_id_and_modify_keep_ids() {
    let mut w = World::new();
    let sg = w.group("r");
    let Outcome::Created(rule_ids) = w
        .apply(&Op::Authorize {
            group: sg.clone(),
            egress: false,
            permissions: vec![tcp(22, cidr("10.0.0.0/8")), tcp(80, cidr("10.0.0.0/8"))],
        })
        .unwrap()
    else {
        panic!("authorize names its rules")
    };
    assert_eq!(rule_ids.len(), 2);
    w.apply(&Op::ModifySecurityGroupRules {
        group: sg.clone(),
        rules: vec![(rule_ids[1].clone(), tcp(443, cidr("10.0.0.0/8")))],
    })
    .unwrap();
    let ingress = &w.model.security_groups[&sg].ingress;
    assert_eq!(ingress[1].id.as_str(), rule_ids[1]);
    assert_eq!(ingress[1].ports, PortSpec::Range { from: 443, to: 443 });
    w.apply(&Op::Revoke {
        group: sg.clone(),
        egress: false,
        permissions: vec![tcp(22, cidr("10.0.0.0/8"))],
    })
    .unwrap();
    w.apply(&Op::RevokeRuleIds {
        group: sg.clone(),
        egress: false,
        rule_ids: vec![rule_ids[1].clone()],
    })
    .unwrap();
    assert!(w.model.security_groups[&sg].ingress.is_empty());
    // Default group rules can be removed too.
    let egress_id = w.model.security_groups[&w.default_group].egress[0]
        .id
        .0
        .clone();
    w.apply(&Op::RevokeRuleIds {
        group: w.default_group.clone(),
        egress: true,
        rule_ids: vec![egress_id],
    })
    .unwrap();
    assert!(w.model.security_groups[&w.default_group].egress.is_empty());
}

#[test]
fn deleting_a_peering_leaves_a_stale_reference_that_the_spec_keeps_inactive() {
    let mut w = World::new();
    let other = created(w.apply(&Op::CreateVpc {
        cidr: "10.1.0.0/16".into(),
        ipv6_cidr: None,
    }));
    let remote = created(w.apply(&Op::CreateSecurityGroup {
        vpc: other.clone(),
        name: "remote".into(),
        description: String::new(),
    }));
    let local = w.group("local");
    let refer = authorize(&local, tcp(5432, PeerRequest::Group(remote.clone())));
    assert_eq!(w.apply(&refer).unwrap_err().code, "InvalidGroup.NotFound");
    let pcx = created(w.apply(&Op::RequestPeering {
        vpc: w.vpc.clone(),
        peer_vpc: other,
    }));
    assert_eq!(w.apply(&refer).unwrap_err().code, "InvalidGroup.NotFound");
    w.apply(&Op::AcceptPeering {
        peering: pcx.clone(),
    })
    .unwrap();
    w.apply(&refer).unwrap();
    w.apply(&Op::DeletePeering {
        peering: pcx.clone(),
    })
    .unwrap();
    // The rule stays (stale) and the spec no longer has the peering.
    let spec = w.model.to_spec(&|_| Some(0));
    assert!(spec.peerings.is_empty());
    let group = spec
        .security_groups
        .iter()
        .find(|g| g.id.as_str() == local)
        .unwrap();
    assert_eq!(group.ingress[0].peer, Peer::Group(SgId(remote)));
    assert_eq!(w.model.peerings[&pcx].state, PeeringState::Deleted);
}

#[test]
fn spec_compiles_in_the_data_plane() {
    let mut w = World::new();
    let sg = w.group("web");
    w.apply(&authorize(&sg, tcp(80, cidr("0.0.0.0/0"))))
        .unwrap();
    w.eni("10.0.1.10", vec![sg]);
    w.eni("10.0.1.11", vec![]);
    let spec = w.model.to_spec(&|name| (name == "p0").then_some(3));
    assert_eq!(spec.enis[0].port, 3);
    palisade_policy::PolicySnapshot::compile(&spec, 1).expect("the model's spec compiles");
}

#[test]
fn model_from_demo_config_matches_its_spec() {
    let config = Config::demo();
    let model = Model::from_config(&config);
    let port = |name: &str| Some(name.len() as u16);
    let from_config = config.to_spec(&port).unwrap();
    assert_eq!(
        model.to_spec(&port).security_groups,
        from_config.security_groups
    );
    assert_eq!(model.to_spec(&port).enis, from_config.enis);
}

#[test]
fn custom_nacl_entries_and_association() {
    let mut w = World::new();
    let acl = created(w.apply(&Op::CreateNetworkAcl { vpc: w.vpc.clone() }));
    assert!(
        w.model.network_acls[&acl].entries.is_empty(),
        "a custom ACL starts deny-all"
    );
    let entry = |rule_number, allow| NaclEntryRequest {
        rule_number,
        egress: false,
        protocol: "tcp".into(),
        cidr: "10.0.0.0/8".into(),
        from_port: Some(22),
        to_port: Some(22),
        allow,
    };
    w.apply(&Op::PutNetworkAclEntry {
        acl: acl.clone(),
        replace: false,
        entry: entry(10, true),
    })
    .unwrap();
    w.apply(&Op::PutNetworkAclEntry {
        acl: acl.clone(),
        replace: true,
        entry: entry(10, false),
    })
    .unwrap();
    assert_eq!(w.model.network_acls[&acl].entries.len(), 1);
    assert_eq!(
        w.model.network_acls[&acl].entries[0].action,
        NaclAction::Deny
    );
    w.apply(&Op::AssociateNetworkAcl {
        subnet: w.subnet.clone(),
        acl: acl.clone(),
    })
    .unwrap();
    assert_eq!(w.model.subnets[&w.subnet].network_acl.as_str(), acl);
    let spec = w.model.to_spec(&|_| Some(0));
    assert_eq!(spec.subnets[0].nacl.as_str(), acl);
    w.apply(&Op::DeleteNetworkAclEntry {
        acl: acl.clone(),
        rule_number: 10,
        egress: false,
    })
    .unwrap();
    let again = w.apply(&Op::DeleteNetworkAclEntry {
        acl,
        rule_number: 10,
        egress: false,
    });
    assert_eq!(again.unwrap_err().code, "InvalidNetworkAclEntry.NotFound");
}

#[test]
fn nacl_entry_quota_per_direction() {
    let quotas = Quotas {
        rules_per_network_acl: 2,
        ..Quotas::default()
    };
    let mut w = World::with_quotas(quotas);
    let acl = created(w.apply(&Op::CreateNetworkAcl { vpc: w.vpc.clone() }));
    for (rule_number, egress, code) in [
        (1, false, None),
        (2, false, None),
        (3, true, None),
        (4, false, Some("NetworkAclEntryLimitExceeded")),
    ] {
        let result = w.apply(&Op::PutNetworkAclEntry {
            acl: acl.clone(),
            replace: false,
            entry: NaclEntryRequest {
                rule_number,
                egress,
                protocol: "-1".into(),
                cidr: "0.0.0.0/0".into(),
                from_port: None,
                to_port: None,
                allow: true,
            },
        });
        assert_eq!(
            result.err().map(|e| e.code.as_str()),
            code,
            "rule {rule_number}"
        );
    }
}

#[test]
fn tags_create_overwrite_and_delete() {
    let mut w = World::new();
    let sg = w.group("t");
    let tag = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    w.apply(&Op::CreateTags {
        resources: vec![sg.clone(), w.vpc.clone()],
        tags: vec![tag("Name", "a"), tag("env", "x")],
    })
    .unwrap();
    w.apply(&Op::CreateTags {
        resources: vec![sg.clone()],
        tags: vec![tag("Name", "b")],
    })
    .unwrap();
    assert_eq!(w.model.tags[&sg]["Name"], "b");
    assert_eq!(w.model.tags[&w.vpc]["Name"], "a");
    w.apply(&Op::DeleteTags {
        resources: vec![sg.clone()],
        keys: vec!["Name".into(), "env".into()],
    })
    .unwrap();
    assert!(!w.model.tags.contains_key(&sg));
}

#[test]
fn prefix_list_modify_and_delete_in_use() {
    let mut w = World::new();
    let pl = created(w.apply(&Op::CreatePrefixList {
        name: "corp".into(),
        max_entries: 2,
        cidrs: vec!["10.0.0.0/8".into()],
    }));
    w.apply(&Op::ModifyPrefixList {
        prefix_list: pl.clone(),
        add: vec!["192.168.0.0/16".into()],
        remove: vec!["10.0.0.0/8".into()],
    })
    .unwrap();
    assert_eq!(
        w.model.prefix_lists[&pl].cidrs,
        vec!["192.168.0.0/16".parse::<IpCidr>().unwrap()]
    );
    let over = w.apply(&Op::ModifyPrefixList {
        prefix_list: pl.clone(),
        add: vec!["172.16.0.0/12".into(), "100.64.0.0/10".into()],
        remove: vec![],
    });
    assert_eq!(over.unwrap_err().code, "PrefixListMaxEntriesExceeded");
    let sg = w.group("uses");
    w.apply(&authorize(
        &sg,
        tcp(443, PeerRequest::PrefixList(pl.clone())),
    ))
    .unwrap();
    let in_use = w.apply(&Op::DeletePrefixList {
        prefix_list: pl.clone(),
    });
    assert_eq!(in_use.unwrap_err().code, "DependencyViolation");
}

#[test]
fn empty_vpc_deletes_with_its_default_group_and_acl() {
    let mut model = Model::default();
    let mut ids = CountingIds::default();
    let vpc = created(model.apply(
        &Op::CreateVpc {
            cidr: "10.2.0.0/16".into(),
            ipv6_cidr: None,
        },
        &mut ids,
    ));
    model.apply(&Op::DeleteVpc { vpc }, &mut ids).unwrap();
    assert_eq!(model, Model::default());
}

#[test]
fn eni_attribute_changes_apply() {
    let mut w = World::new();
    let sg = w.group("m");
    let eni = w.eni("10.0.1.20", vec![]);
    w.apply(&Op::ModifyNetworkInterface {
        eni: eni.clone(),
        change: EniChange {
            groups: Some(vec![sg.clone(), w.default_group.clone()]),
            source_dest_check: Some(false),
            timeouts: Some((3600, 120, 45)),
        },
    })
    .unwrap();
    let e = &w.model.enis[&eni];
    assert_eq!(
        e.groups,
        vec![SgId(sg.clone()), SgId(w.default_group.clone())]
    );
    assert!(!e.source_dest_check);
    assert_eq!(
        e.timeouts,
        ConntrackTimeouts {
            tcp_established: 3600,
            udp_stream: 120,
            udp: 45
        }
    );
    // Now attached: the group cannot go; detached, it can.
    assert_eq!(
        w.apply(&Op::DeleteSecurityGroup { group: sg.clone() })
            .unwrap_err()
            .code,
        "DependencyViolation"
    );
    w.apply(&Op::ModifyNetworkInterface {
        eni,
        change: EniChange {
            groups: Some(vec![w.default_group.clone()]),
            ..EniChange::default()
        },
    })
    .unwrap();
    w.apply(&Op::DeleteSecurityGroup { group: sg }).unwrap();
}

#[test]
fn delete_subnet_refuses_while_an_eni_is_in_it() {
    let mut w = World::new();
    let eni = w.eni("10.0.1.10", vec![]);
    let subnet = w.subnet.clone();
    let refused = w.apply(&Op::DeleteSubnet {
        subnet: subnet.clone(),
    });
    assert_eq!(refused.unwrap_err().code, "DependencyViolation");
    w.apply(&Op::DeleteNetworkInterface { eni }).unwrap();
    w.apply(&Op::CreateTags {
        resources: vec![subnet.clone()],
        tags: vec![("Name".into(), "a".into())],
    })
    .unwrap();
    w.apply(&Op::DeleteSubnet {
        subnet: subnet.clone(),
    })
    .unwrap();
    assert!(!w.model.subnets.contains_key(&subnet));
    assert!(!w.model.tags.contains_key(&subnet));
    let again = w.apply(&Op::DeleteSubnet { subnet });
    assert_eq!(again.unwrap_err().code, "InvalidSubnetID.NotFound");
    // The VPC has no dependency left.
    let vpc = w.vpc.clone();
    w.apply(&Op::DeleteVpc { vpc }).unwrap();
}

#[test]
fn rule_descriptions_update_by_body_or_id_and_nothing_else_moves() {
    let mut w = World::new();
    let group = w.group("web");
    w.apply(&authorize(&group, tcp(80, cidr("10.0.0.0/8"))))
        .unwrap();
    w.apply(&authorize(&group, tcp(443, cidr("10.0.0.0/8"))))
        .unwrap();
    let before = w.model.security_groups[&group].ingress.clone();
    let mut described = tcp(80, cidr("10.0.0.0/8"));
    described.description = "http".into();
    w.apply(&Op::UpdateRuleDescriptions {
        group: group.clone(),
        egress: false,
        by_permission: vec![described],
        by_id: vec![(before[1].id.0.clone(), "https".into())],
    })
    .unwrap();
    let after = &w.model.security_groups[&group].ingress;
    assert_eq!(after[0].description, "http");
    assert_eq!(after[1].description, "https");
    for (a, b) in before.iter().zip(after) {
        assert_eq!(
            (&a.id, a.protocol, a.ports, &a.peer),
            (&b.id, b.protocol, b.ports, &b.peer)
        );
    }
    // Unknown rule body / id / overlong description: refused, unchanged
    // (World::apply checks the model did not move).
    let missing = w.apply(&Op::UpdateRuleDescriptions {
        group: group.clone(),
        egress: false,
        by_permission: vec![tcp(22, cidr("10.0.0.0/8"))],
        by_id: vec![],
    });
    assert_eq!(missing.unwrap_err().code, "InvalidPermission.NotFound");
    let missing_id = w.apply(&Op::UpdateRuleDescriptions {
        group: group.clone(),
        egress: true,
        by_permission: vec![],
        by_id: vec![(before[0].id.0.clone(), "x".into())],
    });
    assert_eq!(
        missing_id.unwrap_err().code,
        "InvalidSecurityGroupRuleId.NotFound"
    );
    let long = w.apply(&Op::UpdateRuleDescriptions {
        group,
        egress: false,
        by_permission: vec![],
        by_id: vec![(before[0].id.0.clone(), "x".repeat(256))],
    });
    assert_eq!(long.unwrap_err().code, "InvalidParameterValue");
}

#[test]
fn rule_tags_live_and_die_with_their_rules() {
    let mut w = World::new();
    let sg = w.group("tagged-rules");
    let Outcome::Created(rules) = w
        .apply(&Op::Authorize {
            group: sg.clone(),
            egress: false,
            permissions: vec![tcp(22, cidr("10.0.0.0/8")), tcp(80, cidr("10.0.0.0/8"))],
        })
        .unwrap()
    else {
        panic!("authorize names its rules")
    };
    let tag = vec![("Name".to_owned(), "r".to_owned())];
    w.apply(&Op::CreateTags {
        resources: rules.clone(),
        tags: tag.clone(),
    })
    .unwrap();
    assert_eq!(w.model.tags[&rules[0]]["Name"], "r");
    // An id that was never a rule is refused like any unknown id.
    let unknown = w.apply(&Op::CreateTags {
        resources: vec!["sgr-0000000000000dead".into()],
        tags: tag.clone(),
    });
    assert_eq!(unknown.unwrap_err().code, "InvalidID");

    w.apply(&Op::RevokeRuleIds {
        group: sg.clone(),
        egress: false,
        rule_ids: vec![rules[0].clone()],
    })
    .unwrap();
    assert!(
        !w.model.tags.contains_key(&rules[0]),
        "a revoked rule keeps no tags"
    );
    assert_eq!(w.model.tags[&rules[1]]["Name"], "r");
    let revoked_again = w.apply(&Op::CreateTags {
        resources: vec![rules[0].clone()],
        tags: tag,
    });
    assert_eq!(revoked_again.unwrap_err().code, "InvalidID");

    w.apply(&Op::DeleteSecurityGroup { group: sg.clone() })
        .unwrap();
    assert!(
        !w.model.tags.contains_key(&rules[1]),
        "a deleted group's rules keep no tags"
    );
}
