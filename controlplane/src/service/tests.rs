use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::model::{PeerRequest, Permission};

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
    let (_, snapshot) = compile_model(store.model(), &ports, 1).unwrap();
    let cell = Arc::new(PolicyCell::new(snapshot));
    let publishes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&publishes);
    let plane = ControlPlane::new(
        store,
        ports,
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
    let (_, fresh) = compile_model(&model, &demo_ports(&f.config), 2).unwrap();
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
