//! Tests of IPv6 blocks (Amazon-provided from the pool, subnet blocks,
//! association and disassociation), subnet attributes and zones, and the
//! default VPC: each rule's success, each refusal (with the model left
//! untouched), the compiled spec, and a journal round trip.

use palisade_policy::Ipv6Cidr;

use super::tests::CountingIds;
use super::*;
use crate::store::Store;

const POOL: &str = "2600:1f00::/40";

fn amazon() -> Ipv6Request {
    Ipv6Request::Amazon { pool: POOL.into() }
}

struct World {
    model: Model,
    ids: CountingIds,
}

impl World {
    fn new() -> Self {
        Self {
            model: Model::new(Quotas::default(), [2, 0, 0, 0, 0, 1]),
            ids: CountingIds::default(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Outcome, ApiError> {
        let before = self.model.clone();
        let result = self.model.apply(op, &mut self.ids);
        if result.is_err() {
            assert_eq!(self.model, before, "a refused op changed the model: {op:?}");
        }
        result
    }

    fn created(&mut self, op: &Op) -> String {
        match self.apply(op) {
            Ok(Outcome::Created(ids)) => ids[0].clone(),
            other => panic!("{op:?}: {other:?}"),
        }
    }

    fn refused(&mut self, op: &Op) -> Ec2ErrorCode {
        match self.apply(op) {
            Err(e) => e.code,
            Ok(outcome) => panic!("{op:?} was accepted: {outcome:?}"),
        }
    }

    fn amazon_vpc(&mut self, cidr: &str) -> String {
        self.created(&Op::CreateVpcWithIpv6 {
            cidr: cidr.into(),
            ipv6: amazon(),
        })
    }

    fn subnet(&mut self, vpc: &str, cidr: &str, ipv6: Option<&str>) -> Result<Outcome, ApiError> {
        self.apply(&Op::CreateSubnetWithOptions {
            vpc: vpc.into(),
            cidr: cidr.into(),
            options: SubnetOptions {
                ipv6_cidr: ipv6.map(str::to_owned),
                availability_zone: Some("us-east-1b".into()),
                default_for_az: false,
            },
        })
    }
}

fn v6(text: &str) -> Ipv6Cidr {
    text.parse().unwrap()
}

#[test]
fn amazon_blocks_are_successive_free_56s_of_the_pool() {
    let mut w = World::new();
    let a = w.amazon_vpc("10.0.0.0/16");
    let b = w.amazon_vpc("10.1.0.0/16");
    assert_eq!(w.model.vpcs[&a].ipv6_cidr, Some(v6("2600:1f00::/56")));
    assert!(w.model.vpcs[&a].ipv6_amazon);
    assert_eq!(w.model.vpcs[&b].ipv6_cidr, Some(v6("2600:1f00:0:100::/56")));
    // A freed block is the next one given.
    w.apply(&Op::DisassociateVpcIpv6CidrBlock { vpc: a.clone() })
        .unwrap();
    assert_eq!(w.model.vpcs[&a].ipv6_cidr, None);
    let c = w.amazon_vpc("10.2.0.0/16");
    assert_eq!(w.model.vpcs[&c].ipv6_cidr, Some(v6("2600:1f00::/56")));
    // A given block inside the pool is skipped too.
    let taken = vec![v6("2600:1f00::/55")];
    assert_eq!(
        next_free_ipv6_block(v6(POOL), &taken).unwrap(),
        v6("2600:1f00:0:200::/56")
    );
}

#[test]
fn an_exhausted_or_too_small_pool_is_insufficient_cidr_blocks() {
    let mut w = World::new();
    let tiny = Ipv6Request::Amazon {
        pool: "2600:1f00::/56".into(),
    };
    w.created(&Op::CreateVpcWithIpv6 {
        cidr: "10.0.0.0/16".into(),
        ipv6: tiny.clone(),
    });
    let op = Op::CreateVpcWithIpv6 {
        cidr: "10.1.0.0/16".into(),
        ipv6: tiny,
    };
    assert_eq!(w.refused(&op), Ec2ErrorCode::InsufficientCidrBlocks);
    assert_eq!(
        next_free_ipv6_block(v6("2600:1f00::/64"), &[])
            .unwrap_err()
            .code,
        Ec2ErrorCode::InsufficientCidrBlocks
    );
}

#[test]
fn subnet_ipv6_blocks_follow_aws_rules() {
    let mut w = World::new();
    let vpc = w.amazon_vpc("10.0.0.0/16");
    let s = match w.subnet(&vpc, "10.0.1.0/24", Some("2600:1f00:0:1::/64")) {
        Ok(Outcome::Created(ids)) => ids[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        w.model.subnets[&s].ipv6_cidr,
        Some(v6("2600:1f00:0:1::/64"))
    );
    assert_eq!(
        w.model.subnets[&s].availability_zone.as_deref(),
        Some("us-east-1b")
    );
    let code = |r: Result<Outcome, ApiError>| r.unwrap_err().code;
    // Outside the VPC's block.
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("2600:1f00:0:100::/64"))),
        Ec2ErrorCode::InvalidSubnetRange
    );
    // Not a subnet size (/65, /62).
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("2600:1f00:0:2::/65"))),
        Ec2ErrorCode::InvalidSubnetRange
    );
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("2600:1f00:0:4::/62"))),
        Ec2ErrorCode::InvalidSubnetRange
    );
    // Overlapping another subnet's.
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("2600:1f00:0:1::/64"))),
        Ec2ErrorCode::InvalidSubnetConflict
    );
    // Host bits, an IPv4 block.
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("2600:1f00:0:2::1/64"))),
        Ec2ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        code(w.subnet(&vpc, "10.0.2.0/24", Some("10.0.2.0/24"))),
        Ec2ErrorCode::InvalidParameterValue
    );
    // A VPC without IPv6.
    let plain = w.created(&Op::CreateVpc {
        cidr: "10.9.0.0/16".into(),
        ipv6_cidr: None,
    });
    assert_eq!(
        code(w.subnet(&plain, "10.9.1.0/24", Some("2600:1f00:0:2::/64"))),
        Ec2ErrorCode::InvalidSubnetRange
    );
    // The VPC's block cannot go while a subnet uses it.
    assert_eq!(
        w.refused(&Op::DisassociateVpcIpv6CidrBlock { vpc: vpc.clone() }),
        Ec2ErrorCode::DependencyViolation
    );
}

#[test]
fn subnet_blocks_associate_disassociate_and_reach_the_spec() {
    let mut w = World::new();
    let vpc = w.amazon_vpc("10.0.0.0/16");
    let s = match w.subnet(&vpc, "10.0.1.0/24", None) {
        Ok(Outcome::Created(ids)) => ids[0].clone(),
        other => panic!("{other:?}"),
    };
    let spec_block = |m: &Model| {
        m.to_spec(&|_| Some(0))
            .subnets
            .iter()
            .find(|x| x.id.as_str() == s)
            .unwrap()
            .ipv6_cidr
    };
    assert_eq!(spec_block(&w.model), None);
    // AssignIpv6AddressOnCreation needs a block.
    let assign = Op::ModifySubnetAttribute {
        subnet: s.clone(),
        attribute: SubnetAttribute::AssignIpv6AddressOnCreation,
        value: true,
    };
    assert_eq!(w.refused(&assign), Ec2ErrorCode::InvalidParameterValue);
    w.apply(&Op::AssociateSubnetIpv6CidrBlock {
        subnet: s.clone(),
        cidr: "2600:1f00:0:7::/64".into(),
    })
    .unwrap();
    assert_eq!(spec_block(&w.model), Some(v6("2600:1f00:0:7::/64")));
    let vpc_spec = w.model.to_spec(&|_| Some(0)).vpcs;
    assert_eq!(vpc_spec[0].ipv6_cidr, Some(v6("2600:1f00::/56")));
    assert_eq!(
        w.refused(&Op::AssociateSubnetIpv6CidrBlock {
            subnet: s.clone(),
            cidr: "2600:1f00:0:8::/64".into(),
        }),
        Ec2ErrorCode::CidrLimitExceeded
    );
    w.apply(&assign).unwrap();
    assert!(
        w.model.subnets[&s]
            .attributes
            .assign_ipv6_address_on_creation
    );
    w.apply(&Op::ModifySubnetAttribute {
        subnet: s.clone(),
        attribute: SubnetAttribute::MapPublicIpOnLaunch,
        value: true,
    })
    .unwrap();
    assert!(w.model.subnets[&s].attributes.map_public_ip_on_launch);
    // An interface with an IPv6 address holds the block.
    w.apply(&Op::CreateNetworkInterfaceV2 {
        interface: NewNetworkInterface {
            subnet: s.clone(),
            mac: [2, 0, 0, 0, 0, 9],
            private_ips: vec![
                "10.0.1.10".parse().unwrap(),
                "2600:1f00:0:7::10".parse().unwrap(),
            ],
            groups: Vec::new(),
            port: "p0".into(),
            vlan: None,
            description: String::new(),
            timeouts: None,
        },
    })
    .unwrap();
    let drop_block = Op::DisassociateSubnetIpv6CidrBlock { subnet: s.clone() };
    assert_eq!(w.refused(&drop_block), Ec2ErrorCode::DependencyViolation);
    let eni = w.model.eni_order[0].clone();
    w.apply(&Op::DeleteNetworkInterface { eni }).unwrap();
    w.apply(&drop_block).unwrap();
    assert_eq!(spec_block(&w.model), None);
    assert!(
        !w.model.subnets[&s]
            .attributes
            .assign_ipv6_address_on_creation
    );
    assert_eq!(
        w.refused(&drop_block),
        Ec2ErrorCode::InvalidAssociationIdNotFound
    );
    // Now the VPC's block can go, and come back.
    w.apply(&Op::DisassociateVpcIpv6CidrBlock { vpc: vpc.clone() })
        .unwrap();
    w.apply(&Op::AssociateVpcIpv6CidrBlock {
        vpc: vpc.clone(),
        ipv6: amazon(),
    })
    .unwrap();
    assert_eq!(
        w.refused(&Op::AssociateVpcIpv6CidrBlock {
            vpc,
            ipv6: amazon()
        }),
        Ec2ErrorCode::CidrLimitExceeded
    );
}

#[test]
fn the_default_vpc_has_a_20_per_zone_and_is_unique() {
    let mut w = World::new();
    let zones: Vec<String> = availability_zones("us-east-1")
        .into_iter()
        .map(|z| z.name)
        .collect();
    let vpc = w.created(&Op::CreateDefaultVpc {
        zones: zones.clone(),
    });
    let v = &w.model.vpcs[&vpc];
    assert!(v.is_default);
    assert_eq!(v.cidr.to_string(), DEFAULT_VPC_CIDR);
    assert!(v.attributes.enable_dns_hostnames);
    let mut subnets: Vec<(String, String)> = w
        .model
        .subnets
        .values()
        .map(|s| {
            assert!(s.default_for_az && s.attributes.map_public_ip_on_launch);
            (s.cidr.to_string(), s.availability_zone.clone().unwrap())
        })
        .collect();
    subnets.sort_by_key(|(c, _)| c.parse::<palisade_policy::Ipv4Cidr>().unwrap().network());
    assert_eq!(subnets.len(), 6);
    assert_eq!(subnets[0], ("172.31.0.0/20".into(), "us-east-1a".into()));
    assert_eq!(subnets[1], ("172.31.16.0/20".into(), "us-east-1b".into()));
    assert_eq!(subnets[5], ("172.31.80.0/20".into(), "us-east-1f".into()));
    assert!(
        w.model
            .security_groups
            .values()
            .any(|g| g.vpc.as_str() == vpc && g.is_default)
    );
    assert!(
        w.model
            .network_acls
            .values()
            .any(|a| a.vpc.as_str() == vpc && a.is_default)
    );
    assert_eq!(
        w.refused(&Op::CreateDefaultVpc { zones }),
        Ec2ErrorCode::DefaultVpcAlreadyExists
    );
    // Once deleted (subnets first, as in AWS), it can be made again.
    let ids: Vec<String> = w.model.subnets.keys().cloned().collect();
    for subnet in ids {
        w.apply(&Op::DeleteSubnet { subnet }).unwrap();
    }
    w.apply(&Op::DeleteVpc { vpc }).unwrap();
    w.created(&Op::CreateDefaultVpc {
        zones: vec!["eu-west-3a".into()],
    });
}

#[test]
fn the_new_ops_survive_the_journal() {
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
        .apply(&Op::CreateVpcWithIpv6 {
            cidr: "10.0.0.0/16".into(),
            ipv6: amazon(),
        })
        .unwrap());
    let subnet = id(store
        .apply(&Op::CreateSubnetWithOptions {
            vpc: vpc.clone(),
            cidr: "10.0.1.0/24".into(),
            options: SubnetOptions {
                ipv6_cidr: Some("2600:1f00:0:1::/64".into()),
                availability_zone: Some("us-east-1c".into()),
                default_for_az: false,
            },
        })
        .unwrap());
    store
        .apply(&Op::ModifySubnetAttribute {
            subnet: subnet.clone(),
            attribute: SubnetAttribute::MapPublicIpOnLaunch,
            value: true,
        })
        .unwrap();
    store
        .apply(&Op::DisassociateSubnetIpv6CidrBlock {
            subnet: subnet.clone(),
        })
        .unwrap();
    store
        .apply(&Op::AssociateSubnetIpv6CidrBlock {
            subnet,
            cidr: "2600:1f00:0:2::/64".into(),
        })
        .unwrap();
    store
        .apply(&Op::CreateDefaultVpc {
            zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        })
        .unwrap();
    let plain = id(store
        .apply(&Op::CreateVpc {
            cidr: "10.5.0.0/16".into(),
            ipv6_cidr: None,
        })
        .unwrap());
    store
        .apply(&Op::AssociateVpcIpv6CidrBlock {
            vpc: plain.clone(),
            ipv6: Ipv6Request::Block("2001:db8::/56".into()),
        })
        .unwrap();
    store
        .apply(&Op::DisassociateVpcIpv6CidrBlock { vpc: plain })
        .unwrap();
    let before = store.model().clone();
    drop(store);
    assert_eq!(open().model(), &before);
}

#[test]
fn a_config_seeds_the_default_vpc_unless_told_not_to() {
    use crate::config::Config;
    let on = Config::from_toml_str("[appliance]\nregion = \"eu-west-3\"\n", "on.toml").unwrap();
    let model = Model::from_config(&on);
    let defaults: Vec<&Vpc> = model.vpcs.values().filter(|v| v.is_default).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(model.subnets.len(), 3, "one default subnet per zone");
    assert!(
        model
            .subnets
            .values()
            .any(|s| s.availability_zone.as_deref() == Some("eu-west-3c"))
    );
    assert_eq!(
        Model::from_config(&on),
        model,
        "the same file, the same ids"
    );
    let off = Config::from_toml_str("[appliance]\ndefault_vpc = false\n", "off.toml").unwrap();
    assert!(Model::from_config(&off).vpcs.is_empty());
    for (text, key) in [
        (
            "[appliance]\nipv6_pool = \"2600:1f00::/60\"\n",
            "appliance.ipv6_pool",
        ),
        (
            "[appliance]\nipv6_pool = \"10.0.0.0/8\"\n",
            "appliance.ipv6_pool",
        ),
        ("[appliance]\nregion = \"Mars\"\n", "appliance.region"),
    ] {
        let error = Config::from_toml_str(text, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{text}: {error}");
    }
}
