use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;
use crate::model::tests::CountingIds;
use crate::model::{EniChange, NaclEntryRequest, PeerRequest, Permission};

fn open(dir: &Path) -> Store {
    Store::open_with(dir, Quotas::default(), Box::new(CountingIds::default())).unwrap()
}

fn created(outcome: Outcome) -> String {
    match outcome {
        Outcome::Created(ids) => ids[0].clone(),
        Outcome::Done => panic!("expected a created object"),
    }
}

fn tcp(port: i32, cidr: &str) -> Permission {
    Permission {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        peer: PeerRequest::Cidr(cidr.into()),
        description: "d".into(),
    }
}

#[test]
fn open_runs_migrations_once_and_sets_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let version: i64 = store
        .connection
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, MIGRATIONS.len());
    let mode: String = store
        .connection
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .connection
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
    drop(store);
    let store = open(dir.path());
    let rows: i64 = store
        .connection
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(connection);
    let error = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 99, .. }),
        "{error}"
    );
}

#[test]
fn refused_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let error = store
        .apply(&Op::DeleteVpc {
            vpc: "vpc-00000000000000bad".into(),
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Api(ref e) if e.code == "InvalidVpcID.NotFound"));
    let rows: i64 = store
        .connection
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn seed_only_an_empty_store_and_keep_config_ids() {
    let config = Config::demo();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert!(store.seed_if_empty(&config).unwrap());
    assert_eq!(store.model(), &Model::from_config(&config));
    let vpc = config.vpcs[0].id.0.clone();
    store
        .apply(&Op::CreateSecurityGroup {
            vpc,
            name: "added".into(),
            description: String::new(),
        })
        .unwrap();
    let expected = store.model().clone();
    drop(store);
    let mut store = open(dir.path());
    assert!(!store.seed_if_empty(&config).unwrap(), "seeded twice");
    assert_eq!(store.model(), &expected);
    // A store with only journal entries is not empty either.
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = open(dir2.path());
    other
        .apply(&Op::CreateVpc {
            cidr: "10.0.0.0/16".into(),
            ipv6_cidr: None,
        })
        .unwrap();
    assert!(!other.seed_if_empty(&config).unwrap());
}

#[test]
fn compact_then_reopen_gives_the_same_model_with_an_empty_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let vpc = created(
        store
            .apply(&Op::CreateVpc {
                cidr: "10.0.0.0/16".into(),
                ipv6_cidr: Some("2001:db8::/56".into()),
            })
            .unwrap(),
    );
    let sg = created(
        store
            .apply(&Op::CreateSecurityGroup {
                vpc: vpc.clone(),
                name: "web".into(),
                description: "w".into(),
            })
            .unwrap(),
    );
    store
        .apply(&Op::Authorize {
            group: sg,
            egress: false,
            permissions: vec![tcp(443, "::/0")],
        })
        .unwrap();
    store.compact().unwrap();
    let after_compact: i64 = store
        .connection
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after_compact, 0);
    store
        .apply(&Op::CreateSubnet {
            vpc,
            cidr: "10.0.3.0/24".into(),
        })
        .unwrap();
    let expected = store.model().clone();
    drop(store);
    assert_eq!(open(dir.path()).model(), &expected);
}

/// One random step, resolved against the current model so most steps are
/// valid and some are refused (both must round-trip).
pub(crate) fn step(model: &Model, kind: u8, a: usize, b: usize) -> Op {
    let pick = |ids: Vec<&String>, i: usize| -> String {
        if ids.is_empty() {
            "sg-00000000000000bad".to_owned()
        } else {
            ids[i % ids.len()].clone()
        }
    };
    let vpc = pick(model.vpcs.keys().collect(), a);
    let group = pick(model.security_groups.keys().collect(), a);
    let other_group = pick(model.security_groups.keys().collect(), b);
    let subnet = pick(model.subnets.keys().collect(), a);
    let eni = pick(model.enis.keys().collect(), a);
    match kind % 14 {
        0 => Op::CreateVpc {
            cidr: format!("10.{}.0.0/16", a % 256),
            ipv6_cidr: (b % 2 == 0).then(|| "2001:db8::/56".to_owned()),
        },
        1 => Op::CreateSubnet {
            vpc,
            cidr: format!("10.{}.{}.0/24", a % 256, b % 256),
        },
        2 => Op::CreateSecurityGroup {
            vpc,
            name: format!("g{}", b % 7),
            description: "x".into(),
        },
        3 => Op::DeleteSecurityGroup { group },
        4 => Op::Authorize {
            group,
            egress: b % 2 == 0,
            permissions: vec![tcp((b % 5) as i32, "10.0.0.0/8")],
        },
        5 => Op::Revoke {
            group,
            egress: b % 2 == 0,
            permissions: vec![tcp((b % 5) as i32, "10.0.0.0/8")],
        },
        6 => Op::Authorize {
            group,
            egress: false,
            permissions: vec![Permission {
                peer: PeerRequest::Group(other_group),
                ..tcp(5432, "0.0.0.0/0")
            }],
        },
        7 => Op::CreateNetworkInterface {
            subnet,
            mac: [2, 0, 0, 0, (a % 256) as u8, (b % 256) as u8],
            private_ips: vec![],
            groups: if b % 2 == 0 { vec![] } else { vec![group] },
            port: "p0".into(),
            vlan: None,
        },
        8 => Op::ModifyNetworkInterface {
            eni,
            change: EniChange {
                source_dest_check: Some(b % 2 == 0),
                timeouts: Some((60 + b as u32, 180, 30)),
                groups: None,
            },
        },
        9 => Op::CreateTags {
            resources: vec![group],
            tags: vec![("Name".into(), format!("n{b}"))],
        },
        10 => {
            let acl = model
                .vpcs
                .values()
                .nth(a % model.vpcs.len().max(1))
                .map_or_else(String::new, |v| v.default_network_acl.0.clone());
            Op::PutNetworkAclEntry {
                acl,
                replace: false,
                entry: NaclEntryRequest {
                    rule_number: (b % 50 + 1) as u16,
                    egress: a % 2 == 0,
                    protocol: "udp".into(),
                    cidr: "192.168.0.0/16".into(),
                    from_port: Some(53),
                    to_port: Some(53),
                    allow: b % 3 == 0,
                },
            }
        }
        12 => Op::DeleteSubnet { subnet },
        13 => Op::UpdateRuleDescriptions {
            group,
            egress: b % 2 == 0,
            by_permission: vec![Permission {
                description: format!("d{a}"),
                ..tcp((b % 5) as i32, "10.0.0.0/8")
            }],
            by_id: Vec::new(),
        },
        _ => Op::CreatePrefixList {
            name: format!("pl{b}"),
            max_entries: 1 + b % 4,
            cidrs: vec!["172.16.0.0/12".into()],
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The store is the model made durable: the same ops through the store,
    /// then a reopen (journal replay), give the model applied in memory.
    #[test]
    fn reopened_store_equals_the_model_applied_in_memory(
        steps in proptest::collection::vec((any::<u8>(), 0usize..64, 0usize..64), 1..40),
        compact_at in 0usize..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut memory = Model::new(Quotas::default(), [0; 6]);
        let mut memory_ids = CountingIds::default();
        for (index, (kind, a, b)) in steps.iter().enumerate() {
            let op = step(&memory, *kind, *a, *b);
            let in_memory = memory.apply(&op, &mut memory_ids);
            let stored = store.apply(&op);
            prop_assert_eq!(in_memory.is_ok(), stored.is_ok(), "op {:?}", op);
            if index == compact_at {
                store.compact().unwrap();
            }
        }
        prop_assert_eq!(store.model(), &memory);
        drop(store);
        let reopened = open(dir.path());
        prop_assert_eq!(reopened.model(), &memory);
    }
}

const CHILD_DIR_VAR: &str = "PALISADE_STORE_DURABILITY_CHILD_DIR";

/// The writer half of the durability test: when run by
/// `acknowledged_changes_survive_kill_9` (which sets the variable), it
/// creates groups forever, printing each one after `apply` returned. Run
/// on its own it has nothing to do.
#[test]
fn durability_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    let mut store = Store::open(Path::new(&dir)).unwrap();
    let vpc = store.model().vpcs.keys().next().unwrap().clone();
    for index in 0.. {
        let id = created(
            store
                .apply(&Op::CreateSecurityGroup {
                    vpc: vpc.clone(),
                    name: format!("g{index}"),
                    description: String::new(),
                })
                .unwrap(),
        );
        println!("ack g{index} {id}");
    }
}

/// The child's acknowledgement on `line`; libtest prints its own
/// `test … ` prefix without a newline, so the first one shares its line.
fn acknowledgement(line: &str) -> Option<&str> {
    line.find("ack g").map(|at| &line[at + 4..])
}

#[test]
fn acknowledged_changes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        store
            .apply(&Op::CreateVpc {
                cidr: "10.0.0.0/16".into(),
                ipv6_cidr: None,
            })
            .unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests::durability_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 40 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(rest) = acknowledgement(&line) {
            acknowledged.push(rest.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for line in lines {
        if let Some(rest) = acknowledgement(&line.unwrap()) {
            acknowledged.push(rest.to_owned());
        }
    }
    let store = Store::open(dir.path()).unwrap();
    let mut found: Vec<(usize, String)> = store
        .model()
        .security_groups
        .values()
        .filter(|g| !g.is_default)
        .map(|g| (g.name[1..].parse().unwrap(), format!("{} {}", g.name, g.id)))
        .collect();
    found.sort();
    let found: Vec<String> = found.into_iter().map(|(_, text)| text).collect();
    // Every acknowledged change is there; beyond them at most the one change
    // that was committed but not yet printed when the child died.
    assert!(
        found.len() >= acknowledged.len(),
        "lost acknowledged changes"
    );
    assert_eq!(found[..acknowledged.len()], acknowledged[..]);
    assert!(
        found.len() <= acknowledged.len() + 1,
        "{} extra changes",
        found.len() - acknowledged.len()
    );
}

#[test]
fn failed_write_leaves_model_as_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .apply(&Op::CreateVpc {
            cidr: "10.0.0.0/16".into(),
            ipv6_cidr: None,
        })
        .unwrap();
    let before = store.model().clone();
    // Make every further journal write fail, as a full or read-only disk would.
    store
        .connection
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    let error = store
        .apply(&Op::CreateVpc {
            cidr: "10.1.0.0/16".into(),
            ipv6_cidr: None,
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Sqlite(_)), "{error}");
    assert_eq!(store.model(), &before);
}

#[test]
fn reseed_replaces_an_untouched_seed_and_never_api_changes() {
    let demo = Config::demo();
    let mut edited_text = crate::config::DEMO_TOML.to_owned();
    edited_text.push_str("\n[[security_group]]\nname = \"reseeded\"\nvpc = \"demo\"\n");
    let edited = Config::from_toml_str(&edited_text, "edited").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert!(store.seed_if_empty(&demo).unwrap());
    assert!(store.reseed_if_unchanged(&edited).unwrap());
    assert_eq!(store.model(), &Model::from_config(&edited));
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(
        store.model(),
        &Model::from_config(&edited),
        "the reseed is durable"
    );
    let vpc = edited.vpcs[0].id.0.clone();
    store
        .apply(&Op::CreateSecurityGroup {
            vpc,
            name: "from-the-api".into(),
            description: String::new(),
        })
        .unwrap();
    let after_api = store.model().clone();
    assert!(!store.reseed_if_unchanged(&demo).unwrap());
    assert_eq!(store.model(), &after_api);
    drop(store);
    assert_eq!(open(dir.path()).model(), &after_api);
}
