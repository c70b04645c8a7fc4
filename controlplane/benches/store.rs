//! What a durable change costs: one `Store::apply` (model check + one
//! SQLite transaction fsynced in WAL mode) with 2,500 groups in the store,
//! and how long a restart takes to rebuild that model from the journal or
//! from a compacted snapshot.

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_controlplane::model::{Op, Outcome, PeerRequest, Permission};
use palisade_controlplane::store::Store;

const GROUPS: usize = 2500;

fn filled_store(dir: &std::path::Path) -> (Store, String) {
    let mut store = Store::open(dir).expect("open");
    let Ok(Outcome::Created(ids)) = store.apply(&Op::CreateVpc {
        cidr: "10.0.0.0/16".into(),
        ipv6_cidr: None,
    }) else {
        panic!("vpc")
    };
    let vpc = ids[0].clone();
    let mut last = String::new();
    for index in 1..GROUPS {
        if let Ok(Outcome::Created(ids)) = store.apply(&Op::CreateSecurityGroup {
            vpc: vpc.clone(),
            name: format!("g{index}"),
            description: String::new(),
        }) {
            last.clone_from(&ids[0]);
        }
    }
    (store, last)
}

fn permission() -> Permission {
    Permission {
        protocol: "tcp".into(),
        from_port: Some(443),
        to_port: Some(443),
        peer: PeerRequest::Cidr("192.0.2.0/24".into()),
        description: String::new(),
    }
}

fn bench_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, group) = filled_store(dir.path());
    let authorize = Op::Authorize {
        group: group.clone(),
        egress: false,
        permissions: vec![permission()],
    };
    let revoke = Op::Revoke {
        group,
        egress: false,
        permissions: vec![permission()],
    };
    c.bench_function("store_authorize_then_revoke_2500_groups", |b| {
        b.iter(|| {
            store.apply(&authorize).expect("authorize");
            store.apply(&revoke).expect("revoke");
        });
    });
    drop(store);
    let mut group = c.benchmark_group("store_reopen_2500_groups");
    group.sample_size(10);
    group.bench_function("journal_replay", |b| {
        b.iter(|| Store::open(dir.path()).expect("reopen"));
    });
    Store::open(dir.path())
        .expect("reopen")
        .compact()
        .expect("compact");
    group.bench_function("snapshot", |b| {
        b.iter(|| Store::open(dir.path()).expect("reopen"));
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
