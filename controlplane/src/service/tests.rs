use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;
use crate::model::tests::CountingIds;
use crate::model::{EniChange, PeerRequest, Permission, PrefixListEntryRequest, Quotas};

fn demo_ports(config: &Config) -> HashMap<String, u16> {
    let mut names: Vec<&str> = config.enis.iter().map(|e| e.port.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n.to_owned(), i as u16))
        .collect()
}

struct Fixture {
    plane: ControlPlane,
    cell: Arc<PolicyCell>,
    publishes: Arc<AtomicUsize>,
    config: Config,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let config = Config::demo();
    let dir = tempfile::tempdir().unwrap();
    let (store, seeded) = open_store(&config, dir.path()).unwrap();
    assert!(seeded);
    let ports = demo_ports(&config);
    let (_, snapshot) = compile_model(store.model(), None, &ports, 1).unwrap();
    let cell = Arc::new(PolicyCell::new(snapshot));
    let publishes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&publishes);
    let plane = ControlPlane::new(
        store,
        ports,
        None,
        Arc::clone(&cell),
        Box::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        }),
    );
    Fixture {
        plane,
        cell,
        publishes,
        config,
        dir,
    }
}

fn a_group(f: &Fixture) -> String {
    f.config.security_groups[0].id.0.clone()
}

fn open_port(group: &str, port: i32) -> Op {
    Op::Authorize {
        group: group.to_owned(),
        egress: false,
        permissions: vec![Permission {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            peer: PeerRequest::Cidr("192.0.2.0/24".into()),
            description: String::new(),
        }],
    }
}

#[test]
fn each_accepted_change_is_durable_and_published_as_the_next_generation() {
    let f = fixture();
    let group = a_group(&f);
    f.plane.apply(&open_port(&group, 4242)).unwrap();
    assert_eq!(f.cell.load().generation(), 2);
    assert_eq!(f.publishes.load(Ordering::Relaxed), 1);
    // The published policy is the store's: a from-scratch compile of the
    // reopened store has the same groups in the same order.
    let mut model = Model::default();
    f.plane.read(&mut |m| model = m.clone());
    let reopened = Store::open(f.dir.path()).unwrap();
    assert_eq!(reopened.model().security_groups, model.security_groups);
    let published = f.cell.load_full();
    let (_, fresh) = compile_model(&model, None, &demo_ports(&f.config), 2).unwrap();
    assert!(published.group_ids().eq(fresh.group_ids()));

    // Refused: nothing written, nothing published.
    let refused = f.plane.apply(&open_port(&group, 4242)).unwrap_err();
    assert_eq!(refused.code, "InvalidPermission.Duplicate");
    assert_eq!(f.cell.load().generation(), 2);
    // Tags change no policy: durable, not published.
    f.plane
        .apply(&Op::CreateTags {
            resources: vec![group.clone()],
            tags: vec![("Name".into(), "x".into())],
        })
        .unwrap();
    assert_eq!(f.cell.load().generation(), 2);
    assert_eq!(f.publishes.load(Ordering::Relaxed), 1);
    // A structural change compiles from scratch and publishes too.
    let vpc = f.config.vpcs[0].id.0.clone();
    f.plane
        .apply(&Op::CreateSecurityGroup {
            vpc,
            name: "new".into(),
            description: String::new(),
        })
        .unwrap();
    assert_eq!(f.cell.load().generation(), 3);
    assert_eq!(
        f.cell.load().group_ids().count(),
        model.group_order.len() + 1
    );
}

/// The API answers only once every worker has loaded the change: a
/// worker's poll loop (here a thread that loads slowly) is waited for.
#[test]
fn an_acknowledged_change_has_been_loaded_by_every_worker() {
    use std::sync::atomic::AtomicU64;
    let f = fixture();
    let group = a_group(&f);
    let loaded = Arc::new(AtomicU64::new(0));
    let mut reader = f.cell.reader();
    let worker = {
        let loaded = Arc::clone(&loaded);
        std::thread::spawn(move || {
            // A slow poll loop: bursts 20 ms apart, until it sees gen 2.
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let generation = reader.load().generation();
                loaded.store(generation, Ordering::SeqCst);
                if generation >= 2 {
                    return reader;
                }
            }
        })
    };
    f.plane.apply(&open_port(&group, 4242)).unwrap();
    assert_eq!(
        loaded.load(Ordering::SeqCst),
        2,
        "the API answered before the worker loaded the change"
    );
    drop(worker.join().unwrap());
}

#[test]
fn reload_reseeds_until_the_api_changes_something() {
    let f = fixture();
    let mut edited_text = crate::config::DEMO_TOML.to_owned();
    edited_text.push_str("\n[[security_group]]\nname = \"from-the-file\"\nvpc = \"demo\"\n");
    let edited = Config::from_toml_str(&edited_text, "edited").unwrap();
    assert_eq!(f.plane.reload(&edited).unwrap(), 2);
    assert_eq!(
        f.cell.load().group_ids().count(),
        edited.security_groups.len()
    );
    f.plane.apply(&open_port(&a_group(&f), 9999)).unwrap();
    assert_eq!(f.cell.load().generation(), 3);
    let refused = f.plane.reload(&f.config).unwrap_err();
    assert!(
        matches!(refused, ServiceError::ApiOwnsState(_)),
        "{refused}"
    );
    assert_eq!(f.cell.load().generation(), 3, "the running policy stays");
    assert_eq!(f.publishes.load(Ordering::Relaxed), 2);
}

/// The demo with an uplink on its own port "up", next hop `mac`.
fn demo_with_uplink(mac: &str) -> Config {
    let text = format!(
        "{}\n[uplink]\nport = \"up\"\nvlan = 100\nmac = \"{mac}\"\n",
        crate::config::DEMO_TOML
    );
    Config::from_toml_str(&text, "uplink.toml").unwrap()
}

/// The uplink is appliance configuration, not a stored object: it is in
/// the first generation, in every one an API change publishes (patched in
/// place or compiled from scratch), and a reload brings the file's.
#[test]
fn the_configured_uplink_is_in_every_published_generation() {
    let config = demo_with_uplink("02:00:00:00:01:fe");
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(&config, dir.path()).unwrap();
    let mut ports = demo_ports(&config);
    ports.insert("up".to_owned(), 7);
    let uplink = uplink_spec(&config, &ports);
    assert_eq!(
        uplink,
        Some(UplinkSpec {
            port: 7,
            vlan: Some(100),
            mac: [2, 0, 0, 0, 1, 0xfe],
        })
    );
    let (_, snapshot) = compile_model(store.model(), uplink, &ports, 1).unwrap();
    assert_eq!(snapshot.uplink(), uplink.as_ref(), "generation 1");
    let cell = Arc::new(PolicyCell::new(snapshot));
    let plane = ControlPlane::new(
        store,
        ports.clone(),
        uplink,
        Arc::clone(&cell),
        Box::new(|_| {}),
    );

    // SIGHUP with the next hop's MAC changed in the file.
    let edited = demo_with_uplink("02:00:00:00:02:fe");
    assert_eq!(plane.reload(&edited).unwrap(), 2);
    let reloaded = uplink_spec(&edited, &ports);
    assert_eq!(cell.load().uplink(), reloaded.as_ref(), "after the reload");

    // One group's rules: patched in place.
    let group = config.security_groups[0].id.0.clone();
    plane.apply(&open_port(&group, 4242)).unwrap();
    assert_eq!(cell.load().generation(), 3);
    assert_eq!(cell.load().uplink(), reloaded.as_ref(), "after a patch");
    // A new group: the spec is rebuilt from the model and compiled afresh.
    plane
        .apply(&Op::CreateSecurityGroup {
            vpc: config.vpcs[0].id.0.clone(),
            name: "new".into(),
            description: String::new(),
        })
        .unwrap();
    assert_eq!(cell.load().generation(), 4);
    assert_eq!(cell.load().uplink(), reloaded.as_ref(), "after a rebuild");
    let mut model = Model::default();
    plane.read(&mut |m| model = m.clone());
    let (spec, _) = compile_model(&model, reloaded, &ports, 5).unwrap();
    assert_eq!(plane.inner.lock().unwrap().spec.spec(), &spec);
}

/// The model does not know the uplink, so the service refuses an ENI on
/// its (port, VLAN, MAC) before storing it: stored, it could never be
/// published, nor the store compiled at the next start.
#[test]
fn an_eni_on_the_uplinks_port_vlan_and_mac_is_refused_before_it_is_stored() {
    let config = demo_with_uplink("02:00:00:00:01:fe");
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(&config, dir.path()).unwrap();
    let mut ports = demo_ports(&config);
    ports.insert("up".to_owned(), 7);
    let uplink = uplink_spec(&config, &ports);
    let (_, snapshot) = compile_model(store.model(), uplink, &ports, 1).unwrap();
    let cell = Arc::new(PolicyCell::new(snapshot));
    let plane = ControlPlane::new(store, ports, uplink, Arc::clone(&cell), Box::new(|_| {}));
    let create = |vlan: Option<u16>, ip: &str| Op::CreateNetworkInterface {
        subnet: config.subnets[0].id.0.clone(),
        mac: [2, 0, 0, 0, 1, 0xfe],
        private_ips: vec![ip.parse().unwrap()],
        groups: Vec::new(),
        port: "up".to_owned(),
        vlan,
    };
    let refused = plane.apply(&create(Some(100), "10.0.1.50")).unwrap_err();
    assert_eq!(refused.code, "InvalidParameterValue", "{}", refused.message);
    assert_eq!(cell.load().generation(), 1);
    let enis = |plane: &ControlPlane| {
        let mut n = 0;
        plane.read(&mut |m| n = m.enis.len());
        n
    };
    assert_eq!(enis(&plane), config.enis.len(), "nothing stored");
    // Another VLAN is another link: allowed, and published.
    plane.apply(&create(None, "10.0.1.51")).unwrap();
    assert_eq!(cell.load().generation(), 2);
    assert_eq!(enis(&plane), config.enis.len() + 1);
}

#[test]
fn hints_name_the_touched_groups_or_everything() {
    let g = "sg-0123456789abcdef0";
    let hint = change_hint(&open_port(g, 1)).unwrap();
    assert_eq!(hint.security_groups, vec![SgId(g.to_owned())]);
    assert!(!hint.everything);
    assert!(
        change_hint(&Op::DeleteTags {
            resources: vec![],
            keys: vec![]
        })
        .is_none()
    );
    assert!(
        change_hint(&Op::DeleteSecurityGroup { group: g.into() })
            .unwrap()
            .everything
    );
    assert!(
        change_hint(&Op::DeleteSubnet {
            subnet: "subnet-1".into()
        })
        .unwrap()
        .everything
    );
}

/// The store's random step, widened to the ops it does not draw: those
/// the spec is patched for (prefix-list and ACL-entry changes, rules by id,
/// prefix-list peers) and topology changes between them.
fn any_step(model: &Model, kind: u8, a: usize, b: usize) -> Op {
    let pick = |ids: Vec<&String>, i: usize| -> String {
        ids.get(i % ids.len().max(1))
            .map_or_else(|| "x-00000000000000bad".to_owned(), |id| (*id).clone())
    };
    let group = pick(model.security_groups.keys().collect(), a);
    let prefix_list = pick(model.prefix_lists.keys().collect(), b);
    let acl = pick(model.network_acls.keys().collect(), a);
    let rule = model.security_groups.get(&group).and_then(|g| {
        let rules = if b % 2 == 0 { &g.ingress } else { &g.egress };
        rules.get(a % rules.len().max(1)).map(|r| r.id.0.clone())
    });
    let tcp = |port: usize, peer: PeerRequest| Permission {
        protocol: "tcp".into(),
        from_port: Some(port as i32),
        to_port: Some(port as i32),
        peer,
        description: String::new(),
    };
    match kind % 26 {
        kind @ 0..=13 => crate::store::tests::step(model, kind, a, b),
        14 => Op::ModifyPrefixList {
            prefix_list,
            add: vec![format!("10.{}.0.0/16", a % 256)],
            remove: if b % 3 == 0 {
                vec!["172.16.0.0/12".into()]
            } else {
                Vec::new()
            },
        },
        15 => Op::ModifyManagedPrefixList {
            prefix_list,
            current_version: None,
            name: (a % 2 == 0).then(|| format!("renamed{b}")),
            max_entries: None,
            remove: Vec::new(),
            add: vec![PrefixListEntryRequest {
                cidr: format!("192.168.{}.0/24", b % 256),
                description: String::new(),
            }],
        },
        16 => Op::Authorize {
            group,
            egress: b % 2 == 0,
            permissions: vec![tcp(b % 5 + 100, PeerRequest::PrefixList(prefix_list))],
        },
        17 => Op::DeleteNetworkAclEntry {
            acl,
            rule_number: (b % 50 + 1) as u16,
            egress: a % 2 == 0,
        },
        18 => Op::RevokeRuleIds {
            group,
            egress: b % 2 == 1,
            rule_ids: rule.into_iter().collect(),
        },
        19 => Op::ModifySecurityGroupRules {
            group,
            rules: rule
                .into_iter()
                .map(|id| (id, tcp(b % 7 + 200, PeerRequest::Cidr("0.0.0.0/0".into()))))
                .collect(),
        },
        20 => Op::CreateNetworkAcl {
            vpc: pick(model.vpcs.keys().collect(), a),
        },
        21 => Op::AssociateNetworkAcl {
            subnet: pick(model.subnets.keys().collect(), b),
            acl,
        },
        22 => Op::RequestPeering {
            vpc: pick(model.vpcs.keys().collect(), a),
            peer_vpc: pick(model.vpcs.keys().collect(), b),
        },
        23 => Op::AcceptPeering {
            peering: pick(model.peerings.keys().collect(), a),
        },
        24 => Op::ModifyNetworkInterface {
            eni: pick(model.enis.keys().collect(), a),
            change: EniChange {
                groups: Some(vec![group]),
                source_dest_check: None,
                timeouts: None,
            },
        },
        _ => Op::DeletePrefixList { prefix_list },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The spec patched per op is the spec of the model: after every step
    /// of a random sequence (accepted or refused), the control plane's
    /// spec equals a fresh `to_spec` of its store's model, and the
    /// snapshot it published has that spec's groups in that order.
    #[test]
    fn patched_spec_equals_the_models_spec_after_any_ops(
        steps in proptest::collection::vec((any::<u8>(), 0usize..64, 0usize..64), 1..48),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open_with(dir.path(), Quotas::default(), Box::new(CountingIds::default()))
                .unwrap();
        let ports: HashMap<String, u16> = [("p0".to_owned(), 3)].into();
        // An uplink on a port of its own: every spec must keep it.
        let uplink = UplinkSpec { port: 7, vlan: None, mac: [2, 0, 0, 0, 0, 0xfe] };
        let (_, snapshot) = compile_model(store.model(), Some(uplink), &ports, 1).unwrap();
        let cell = Arc::new(PolicyCell::new(snapshot));
        let plane = ControlPlane::new(
            store,
            ports.clone(),
            Some(uplink),
            Arc::clone(&cell),
            Box::new(|_| {}),
        );
        let mut accepted = 0;
        for (kind, a, b) in steps {
            let mut model = Model::default();
            plane.read(&mut |m| model = m.clone());
            let op = any_step(&model, kind, a, b);
            accepted += usize::from(plane.apply(&op).is_ok());
            let inner = plane.inner.lock().unwrap();
            let mut fresh = inner.store.model().to_spec(&|name| ports.get(name).copied());
            fresh.uplink = Some(uplink);
            prop_assert_eq!(inner.spec.spec(), &fresh, "after {:?}", op);
            let published = cell.load_full();
            prop_assert_eq!(published.uplink(), Some(&uplink), "after {:?}", op);
            prop_assert!(
                published.group_ids().eq(fresh.security_groups.iter().map(|g| &g.id)),
                "published groups after {:?}", op
            );
        }
        prop_assert!(cell.load().generation() <= 1 + accepted as u64);
    }
}

#[test]
fn credentials_come_from_the_first_source_and_are_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    let pair = |id: &str| Some((id.to_owned(), "secret".to_owned()));
    let (c, s) = resolve_credentials(
        pair("AKIAFLAG"),
        pair("AKIAENV"),
        pair("AKIACONF"),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), s),
        ("AKIAFLAG", CredentialSource::Flags)
    );
    let (c, s) = resolve_credentials(None, pair("AKIAENV"), pair("AKIACONF"), dir.path()).unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), s),
        ("AKIAENV", CredentialSource::Environment)
    );
    let (c, s) = resolve_credentials(None, None, pair("AKIACONF"), dir.path()).unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), s),
        ("AKIACONF", CredentialSource::ConfigFile)
    );
    assert!(
        !dir.path().join(CREDENTIALS_FILE).exists(),
        "nothing generated while configured"
    );

    let (generated, s) = resolve_credentials(None, None, None, dir.path()).unwrap();
    assert_eq!(s, CredentialSource::Generated);
    assert!(generated.access_key_id.starts_with("AKIA"));
    assert_eq!(generated.access_key_id.len(), 20);
    assert!(
        generated
            .access_key_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(generated.secret_access_key.len(), 40);
    let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (again, s) = resolve_credentials(None, None, None, dir.path()).unwrap();
    assert_eq!((again, s), (generated.clone(), CredentialSource::StateDir));
    assert_ne!(generate_credentials().unwrap(), generated);

    std::fs::write(dir.path().join(CREDENTIALS_FILE), "not toml [").unwrap();
    assert!(matches!(
        resolve_credentials(None, None, None, dir.path()),
        Err(ServiceError::Credentials { .. })
    ));
}
