//! Tests of the ops the EC2 API's second half added (interface create
//! options and descriptions, ACL deletion and association ids, prefix lists
//! with families, versions and descriptions, AWS's DeleteTags, VPC
//! attributes): each success, each refusal (with the model left
//! untouched), the derived ids, and a journal round trip of every such op
//! through the real store.

use palisade_policy::ConntrackTimeouts;

use super::tests::CountingIds;
use super::*;
use crate::config::is_aws_shaped;
use crate::store::Store;

struct World {
    model: Model,
    ids: CountingIds,
    vpc: String,
    subnet: String,
}

impl World {
    fn new() -> Self {
        let mut model = Model::new(Quotas::default(), [2, 0, 0, 0, 0, 1]);
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
        Self {
            model,
            ids,
            vpc,
            subnet,
        }
    }

    /// Applies `op`; a refusal must leave the model exactly as it was.
    fn apply(&mut self, op: &Op) -> Result<Outcome, ApiError> {
        let before = self.model.clone();
        let result = self.model.apply(op, &mut self.ids);
        if result.is_err() {
            assert_eq!(self.model, before, "a refused op changed the model: {op:?}");
        }
        result
    }

    fn refused(&mut self, op: &Op) -> &'static str {
        match self.apply(op) {
            Err(e) => e.code.as_str(),
            Ok(outcome) => panic!("{op:?} was accepted: {outcome:?}"),
        }
    }

    fn interface(&self, ips: &[&str]) -> NewNetworkInterface {
        NewNetworkInterface {
            subnet: self.subnet.clone(),
            mac: [2, 0, 0, 0, 0, 9],
            private_ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            groups: Vec::new(),
            port: "p0".into(),
            vlan: Some(10),
            description: "web".into(),
            timeouts: None,
        }
    }
}

fn created(result: Result<Outcome, ApiError>) -> String {
    match result {
        Ok(Outcome::Created(ids)) => ids[0].clone(),
        other => panic!("expected a created object, got {other:?}"),
    }
}

fn shaped(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        && id.to_ascii_lowercase() == id
}

fn entry(cidr: &str, description: &str) -> PrefixListEntryRequest {
    PrefixListEntryRequest {
        cidr: cidr.into(),
        description: description.into(),
    }
}

#[test]
fn derived_ids_are_aws_shaped_stable_and_distinct() {
    let a = route_table_id("vpc-00000000000000001");
    let b = route_table_id("vpc-00000000000000002");
    assert!(shaped("rtb", &a), "{a}");
    assert_eq!(a, route_table_id("vpc-00000000000000001"));
    assert_ne!(a, b);
    let main = main_route_table_association_id("vpc-00000000000000001");
    assert!(shaped("rtbassoc", &main), "{main}");
    let assoc = initial_network_acl_association_id("subnet-00000000000000001");
    assert!(shaped("aclassoc", &assoc), "{assoc}");
    // Not an id of any stored kind, so no collision with drawn ids.
    assert!(!is_aws_shaped(ObjectKind::NetworkAcl, &assoc));
}

#[test]
fn interface_v2_keeps_description_and_timeouts() {
    let mut w = World::new();
    let mut interface = w.interface(&["10.0.1.10", "10.0.1.11"]);
    interface.timeouts = Some(ConntrackTimeouts {
        tcp_established: 3600,
        udp_stream: 120,
        udp: 45,
    });
    let id = created(w.apply(&Op::CreateNetworkInterfaceV2 { interface }));
    let eni = &w.model.enis[&id];
    assert_eq!(eni.description, "web");
    assert_eq!(eni.timeouts.tcp_established, 3600);
    assert_eq!(eni.timeouts.udp, 45);
    assert_eq!(eni.vlan, Some(10));
    assert_eq!(eni.groups, [w.model.vpcs[&w.vpc].default_group.clone()]);
    assert_eq!(w.model.eni_order, std::slice::from_ref(&id));

    w.apply(&Op::SetNetworkInterfaceDescription {
        eni: id.clone(),
        description: "db".into(),
    })
    .unwrap();
    assert_eq!(w.model.enis[&id].description, "db");
    assert_eq!(
        w.refused(&Op::SetNetworkInterfaceDescription {
            eni: id,
            description: "x".repeat(256),
        }),
        "InvalidParameterValue"
    );
}

#[test]
fn interface_v2_refusals() {
    let mut w = World::new();
    // The first four and the last address of 10.0.1.0/24 are AWS's.
    for reserved in ["10.0.1.0", "10.0.1.1", "10.0.1.3", "10.0.1.255"] {
        let interface = w.interface(&[reserved]);
        assert_eq!(
            w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
            "InvalidParameterValue",
            "{reserved}"
        );
    }
    let interface = w.interface(&["10.0.1.4", "10.0.1.4"]);
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
        "InvalidParameterValue"
    );
    let interface = w.interface(&[]);
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
        "MissingParameter"
    );
    let mut interface = w.interface(&["10.0.1.4"]);
    interface.vlan = Some(4095);
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
        "InvalidParameterValue"
    );
    let mut interface = w.interface(&["10.0.1.4"]);
    interface.timeouts = Some(ConntrackTimeouts {
        tcp_established: 59,
        udp_stream: 180,
        udp: 30,
    });
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
        "InvalidParameterValue"
    );
    let mut interface = w.interface(&["10.0.1.4"]);
    interface.subnet = "subnet-0000000000000ffff".into();
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface }),
        "InvalidSubnetID.NotFound"
    );
    // The first free address works, and then it is taken.
    let interface = w.interface(&["10.0.1.4"]);
    w.apply(&Op::CreateNetworkInterfaceV2 { interface })
        .unwrap();
    let mut again = w.interface(&["10.0.1.4"]);
    again.mac = [2, 0, 0, 0, 0, 10];
    assert_eq!(
        w.refused(&Op::CreateNetworkInterfaceV2 { interface: again }),
        "InvalidIPAddress.InUse"
    );
}

#[test]
fn acl_delete_needs_a_custom_unassociated_acl() {
    let mut w = World::new();
    let default_acl = w.model.vpcs[&w.vpc].default_network_acl.0.clone();
    assert_eq!(
        w.refused(&Op::DeleteNetworkAcl {
            acl: default_acl.clone()
        }),
        "InvalidParameterValue"
    );
    let acl = created(w.apply(&Op::CreateNetworkAcl { vpc: w.vpc.clone() }));
    w.apply(&Op::CreateTags {
        resources: vec![acl.clone()],
        tags: vec![("Name".into(), "private".into())],
    })
    .unwrap();
    let first = w.model.subnets[&w.subnet].network_acl_association_id();
    assert_eq!(first, initial_network_acl_association_id(&w.subnet));
    let moved = created(w.apply(&Op::ReplaceNetworkAclAssociation {
        association: first.clone(),
        acl: acl.clone(),
    }));
    assert!(shaped("aclassoc", &moved), "{moved}");
    assert_ne!(moved, first);
    assert_eq!(w.model.subnets[&w.subnet].network_acl.as_str(), acl);
    assert_eq!(
        w.refused(&Op::DeleteNetworkAcl { acl: acl.clone() }),
        "DependencyViolation"
    );
    // The old association is gone with the move.
    assert_eq!(
        w.refused(&Op::ReplaceNetworkAclAssociation {
            association: first,
            acl: default_acl.clone(),
        }),
        "InvalidAssociationID.NotFound"
    );
    let back = created(w.apply(&Op::ReplaceNetworkAclAssociation {
        association: moved.clone(),
        acl: default_acl,
    }));
    assert_ne!(back, moved);
    w.apply(&Op::DeleteNetworkAcl { acl: acl.clone() }).unwrap();
    assert!(!w.model.network_acls.contains_key(&acl));
    assert!(!w.model.tags.contains_key(&acl), "its tags go with it");
    assert_eq!(
        w.refused(&Op::DeleteNetworkAcl { acl }),
        "InvalidNetworkAclID.NotFound"
    );
}

#[test]
fn acl_association_cannot_cross_vpcs_and_the_old_op_also_renews_the_id() {
    let mut w = World::new();
    let other = created(w.apply(&Op::CreateVpc {
        cidr: "10.1.0.0/16".into(),
        ipv6_cidr: None,
    }));
    let foreign = created(w.apply(&Op::CreateNetworkAcl { vpc: other }));
    let association = w.model.subnets[&w.subnet].network_acl_association_id();
    assert_eq!(
        w.refused(&Op::ReplaceNetworkAclAssociation {
            association: association.clone(),
            acl: foreign,
        }),
        "InvalidParameterValue"
    );
    let local = created(w.apply(&Op::CreateNetworkAcl { vpc: w.vpc.clone() }));
    w.apply(&Op::AssociateNetworkAcl {
        subnet: w.subnet.clone(),
        acl: local,
    })
    .unwrap();
    assert_ne!(
        w.model.subnets[&w.subnet].network_acl_association_id(),
        association
    );
}

#[test]
fn prefix_list_create_checks_family_size_and_names() {
    let mut w = World::new();
    let create = |name: &str, max: usize, ipv6: bool, entries: Vec<PrefixListEntryRequest>| {
        Op::CreateManagedPrefixList {
            name: name.into(),
            max_entries: max,
            ipv6,
            entries,
        }
    };
    assert_eq!(
        w.refused(&create("v4", 5, false, vec![entry("2001:db8::/32", "")])),
        "InvalidParameterValue"
    );
    assert_eq!(
        w.refused(&create(
            "v4",
            1,
            false,
            vec![entry("10.0.0.0/8", ""), entry("10.1.0.0/16", "")]
        )),
        "PrefixListMaxEntriesExceeded"
    );
    assert_eq!(
        w.refused(&create(
            "v4",
            5,
            false,
            vec![entry("10.0.0.0/8", ""), entry("10.0.0.0/8", "")]
        )),
        "InvalidParameterValue"
    );
    assert_eq!(
        w.refused(&create("v4", 5, false, vec![entry("10.0.0.1/8", "")])),
        "InvalidParameterValue",
        "host bits"
    );
    assert_eq!(
        w.refused(&create("com.amazonaws.x", 5, false, vec![])),
        "InvalidParameterValue"
    );
    assert_eq!(
        w.refused(&create("big", 1001, false, vec![])),
        "InvalidParameterValue"
    );
    assert_eq!(
        w.refused(&create("zero", 0, false, vec![])),
        "InvalidParameterValue"
    );
    let id = created(w.apply(&create("v6", 3, true, vec![entry("2001:db8::/32", "lab")])));
    let list = &w.model.prefix_lists[&id];
    assert!(list.ipv6);
    assert_eq!(list.version, 1);
    assert_eq!(list.descriptions["2001:db8::/32"], "lab");
}

#[test]
fn prefix_list_modify_versions_entries_and_size() {
    let mut w = World::new();
    let id = created(w.apply(&Op::CreateManagedPrefixList {
        name: "office".into(),
        max_entries: 2,
        ipv6: false,
        entries: vec![entry("10.0.0.0/8", "hq")],
    }));
    let modify = |version: Option<u64>, add: Vec<PrefixListEntryRequest>, remove: Vec<&str>| {
        Op::ModifyManagedPrefixList {
            prefix_list: id.clone(),
            current_version: version,
            name: None,
            max_entries: None,
            remove: remove.into_iter().map(str::to_owned).collect(),
            add,
        }
    };
    assert_eq!(
        w.refused(&modify(Some(2), vec![entry("192.168.0.0/16", "")], vec![])),
        "PrefixListVersionMismatch"
    );
    w.apply(&modify(
        Some(1),
        vec![entry("192.168.0.0/16", "branch")],
        vec![],
    ))
    .unwrap();
    assert_eq!(w.model.prefix_lists[&id].version, 2);
    assert_eq!(
        w.refused(&modify(None, vec![entry("172.16.0.0/12", "")], vec![])),
        "PrefixListMaxEntriesExceeded"
    );
    assert_eq!(
        w.refused(&modify(None, vec![], vec!["172.16.0.0/12"])),
        "InvalidPrefixListModification"
    );
    // Re-adding a block only changes its description (no new entry).
    w.apply(&modify(
        Some(2),
        vec![entry("10.0.0.0/8", "head office")],
        vec![],
    ))
    .unwrap();
    let list = &w.model.prefix_lists[&id];
    assert_eq!(list.cidrs.len(), 2);
    assert_eq!(list.descriptions["10.0.0.0/8"], "head office");
    assert_eq!(list.version, 3);
    w.apply(&modify(Some(3), vec![], vec!["10.0.0.0/8"]))
        .unwrap();
    let list = &w.model.prefix_lists[&id];
    assert_eq!(list.cidrs.len(), 1);
    assert!(!list.descriptions.contains_key("10.0.0.0/8"));

    let resize = |max: usize, add: Vec<PrefixListEntryRequest>| Op::ModifyManagedPrefixList {
        prefix_list: id.clone(),
        current_version: None,
        name: Some("renamed".into()),
        max_entries: Some(max),
        remove: Vec::new(),
        add,
    };
    assert_eq!(
        w.refused(&resize(5, vec![entry("172.16.0.0/12", "")])),
        "InvalidParameterCombination"
    );
    // A group naming the list counts it at its maximum size.
    let group = created(w.apply(&Op::CreateSecurityGroup {
        vpc: w.vpc.clone(),
        name: "uses-list".into(),
        description: "d".into(),
    }));
    w.apply(&Op::Authorize {
        group: group.clone(),
        egress: false,
        permissions: vec![Permission {
            protocol: "tcp".into(),
            from_port: Some(443),
            to_port: Some(443),
            peer: PeerRequest::PrefixList(id.clone()),
            description: String::new(),
        }],
    })
    .unwrap();
    assert_eq!(
        w.refused(&resize(61, vec![])),
        "RulesPerSecurityGroupLimitExceeded"
    );
    w.apply(&resize(60, vec![])).unwrap();
    let list = &w.model.prefix_lists[&id];
    assert_eq!((list.max_entries, list.name.as_str()), (60, "renamed"));
    assert_eq!(list.version, 4, "a size or name change keeps the version");
    assert_eq!(
        w.refused(&Op::DeletePrefixList {
            prefix_list: id.clone()
        }),
        "DependencyViolation"
    );
}

#[test]
fn delete_tags_matches_values_and_empty_means_all() {
    let mut w = World::new();
    let vpc = w.vpc.clone();
    w.apply(&Op::CreateTags {
        resources: vec![vpc.clone()],
        tags: vec![
            ("Name".into(), "prod".into()),
            ("team".into(), "net".into()),
            ("cost".into(), "42".into()),
        ],
    })
    .unwrap();
    let delete = |tags: Vec<TagToDelete>| Op::DeleteTagsMatching {
        resources: vec![vpc.clone()],
        tags,
    };
    w.apply(&delete(vec![TagToDelete {
        key: "Name".into(),
        value: Some("staging".into()),
    }]))
    .unwrap();
    assert_eq!(
        w.model.tags[&vpc].len(),
        3,
        "a different value keeps the tag"
    );
    w.apply(&delete(vec![
        TagToDelete {
            key: "Name".into(),
            value: Some("prod".into()),
        },
        TagToDelete {
            key: "team".into(),
            value: None,
        },
    ]))
    .unwrap();
    assert_eq!(
        w.model.tags[&vpc].keys().collect::<Vec<_>>(),
        [&"cost".to_owned()]
    );
    w.apply(&delete(Vec::new())).unwrap();
    assert!(!w.model.tags.contains_key(&vpc));
    assert_eq!(
        w.refused(&Op::DeleteTagsMatching {
            resources: vec!["vpc-0000000000000dead".into()],
            tags: Vec::new(),
        }),
        "InvalidID"
    );
}

#[test]
fn route_tables_can_be_tagged_and_lose_their_tags_with_the_vpc() {
    let mut w = World::new();
    let vpc = created(w.apply(&Op::CreateVpc {
        cidr: "10.2.0.0/16".into(),
        ipv6_cidr: None,
    }));
    let table = route_table_id(&vpc);
    assert_eq!(
        w.model.vpc_of_route_table(&table).map(|v| v.id.as_str()),
        Some(vpc.as_str())
    );
    w.apply(&Op::CreateTags {
        resources: vec![table.clone()],
        tags: vec![("Name".into(), "main".into())],
    })
    .unwrap();
    w.apply(&Op::DeleteVpc { vpc }).unwrap();
    assert!(!w.model.tags.contains_key(&table));
    assert_eq!(
        w.refused(&Op::CreateTags {
            resources: vec![table],
            tags: vec![("Name".into(), "x".into())],
        }),
        "InvalidID"
    );
}

/// Every new op goes through the journal (TOML) and replays to the same
/// model: the store is what makes them durable, so their encoding is part
/// of their contract.
#[test]
fn every_new_op_survives_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Store::open_with(
            dir.path(),
            Quotas::default(),
            Box::new(CountingIds::default()),
        )
        .unwrap()
    };
    let mut store = open();
    let id = |o: Outcome| match o {
        Outcome::Created(ids) => ids[0].clone(),
        Outcome::Done => panic!("nothing created"),
    };
    let vpc = id(store
        .apply(&Op::CreateVpc {
            cidr: "10.0.0.0/16".into(),
            ipv6_cidr: None,
        })
        .unwrap());
    let subnet = id(store
        .apply(&Op::CreateSubnet {
            vpc: vpc.clone(),
            cidr: "10.0.1.0/24".into(),
        })
        .unwrap());
    let eni = id(store
        .apply(&Op::CreateNetworkInterfaceV2 {
            interface: NewNetworkInterface {
                subnet: subnet.clone(),
                mac: [2, 0, 0, 0, 0, 7],
                private_ips: vec!["10.0.1.7".parse().unwrap()],
                groups: Vec::new(),
                port: "p1".into(),
                vlan: Some(7),
                description: "a \"quoted\" one".into(),
                timeouts: Some(ConntrackTimeouts {
                    tcp_established: 600,
                    udp_stream: 60,
                    udp: 30,
                }),
            },
        })
        .unwrap());
    store
        .apply(&Op::SetNetworkInterfaceDescription {
            eni,
            description: "renamed".into(),
        })
        .unwrap();
    store
        .apply(&Op::ModifyVpcAttribute {
            vpc: vpc.clone(),
            attribute: VpcAttribute::EnableDnsHostnames,
            value: true,
        })
        .unwrap();
    let acl = id(store
        .apply(&Op::CreateNetworkAcl { vpc: vpc.clone() })
        .unwrap());
    let spare = id(store.apply(&Op::CreateNetworkAcl { vpc }).unwrap());
    let association = store.model().subnets[&subnet].network_acl_association_id();
    store
        .apply(&Op::ReplaceNetworkAclAssociation { association, acl })
        .unwrap();
    store.apply(&Op::DeleteNetworkAcl { acl: spare }).unwrap();
    let list = id(store
        .apply(&Op::CreateManagedPrefixList {
            name: "l".into(),
            max_entries: 4,
            ipv6: false,
            entries: vec![entry("10.9.0.0/16", "d")],
        })
        .unwrap());
    store
        .apply(&Op::ModifyManagedPrefixList {
            prefix_list: list.clone(),
            current_version: Some(1),
            name: Some("m".into()),
            max_entries: None,
            remove: vec!["10.9.0.0/16".into()],
            add: vec![entry("10.8.0.0/16", "e")],
        })
        .unwrap();
    store
        .apply(&Op::CreateTags {
            resources: vec![list.clone()],
            tags: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        })
        .unwrap();
    store
        .apply(&Op::DeleteTagsMatching {
            resources: vec![list],
            tags: vec![TagToDelete {
                key: "a".into(),
                value: Some("1".into()),
            }],
        })
        .unwrap();
    let expected = store.model().clone();
    drop(store);
    assert_eq!(*open().model(), expected);
}

#[test]
fn vpc_attributes_start_at_aws_defaults_and_keep_what_is_set() {
    let mut w = World::new();
    let attributes = |w: &World| w.model.vpcs[&w.vpc].attributes;
    assert_eq!(
        attributes(&w),
        VpcAttributes {
            enable_dns_support: true,
            enable_dns_hostnames: false,
            enable_network_address_usage_metrics: false,
        }
    );
    let set = |vpc: &str, attribute, value| Op::ModifyVpcAttribute {
        vpc: vpc.to_owned(),
        attribute,
        value,
    };
    w.apply(&set(&w.vpc.clone(), VpcAttribute::EnableDnsHostnames, true))
        .unwrap();
    w.apply(&set(
        &w.vpc.clone(),
        VpcAttribute::EnableNetworkAddressUsageMetrics,
        true,
    ))
    .unwrap();
    assert!(attributes(&w).enable_dns_hostnames);
    assert!(attributes(&w).enable_network_address_usage_metrics);
    w.apply(&set(
        &w.vpc.clone(),
        VpcAttribute::EnableDnsHostnames,
        false,
    ))
    .unwrap();
    w.apply(&set(&w.vpc.clone(), VpcAttribute::EnableDnsSupport, false))
        .unwrap();
    // Hostnames only with DNS support, as in AWS.
    let vpc = w.vpc.clone();
    assert_eq!(
        w.refused(&set(&vpc, VpcAttribute::EnableDnsHostnames, true)),
        "InvalidParameterValue"
    );
    assert_eq!(
        w.refused(&set(
            "vpc-00000000000000bad",
            VpcAttribute::EnableDnsSupport,
            true
        )),
        "InvalidVpcID.NotFound"
    );
    for which in [
        VpcAttribute::EnableDnsSupport,
        VpcAttribute::EnableDnsHostnames,
        VpcAttribute::EnableNetworkAddressUsageMetrics,
    ] {
        let expected = which == VpcAttribute::EnableNetworkAddressUsageMetrics;
        assert_eq!(which.get(&attributes(&w)), expected, "{which:?}");
    }
}

/// A snapshot written before VPCs had attributes still loads, with AWS's
/// defaults.
#[test]
fn a_vpc_without_attributes_deserializes_with_the_defaults() {
    let w = World::new();
    let mut text = toml::to_string(&w.model.vpcs[&w.vpc]).unwrap();
    let start = text.find("[attributes]").expect("attributes are written");
    text.truncate(start);
    let vpc: Vpc = toml::from_str(&text).unwrap();
    assert_eq!(vpc.attributes, VpcAttributes::default());
    assert_eq!(vpc.cidr, w.model.vpcs[&w.vpc].cidr);
}
