//! What an EC2 API request costs end to end, minus the socket: SigV4
//! verification, parameter parsing, the handler, and for a change the
//! durable store write, the incremental policy compile and the publish —
//! with 2,500 security groups in the store (AWS's per-VPC quota).
//!
//! `handle()` is the sans-IO core the HTTP server calls, so this is the
//! server's work per request; the HTTP/1.1 framing on top is hyper's
//! (measured over a socket by `perf/bench-api.sh`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_controlplane::api::{
    self, Api, ApiSettings, Backend, Credentials, HttpRequest, sigv4,
};
use palisade_controlplane::model::{LiveSpec, Op, Outcome, SpecUpdate};
use palisade_controlplane::service::{self, ControlPlane};
use palisade_controlplane::store::Store;
use palisade_policy::PolicyCell;

const GROUPS: usize = 2500;

fn key() -> Credentials {
    Credentials {
        access_key_id: "AKIABENCHMARK0000001".into(),
        secret_access_key: "bench/secret/key".into(),
    }
}

/// A signed form POST, as botocore sends it.
fn request(body: &str, now: i64) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Host".to_owned(), "127.0.0.1:8080".to_owned()),
        ("X-Amz-Date".to_owned(), sigv4::format_amz_date(now)),
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
    ];
    let signed = sigv4::SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = sigv4::sign(
        &signed,
        &key(),
        "us-east-1",
        "ec2",
        &["content-type", "host", "x-amz-date"],
    )
    .expect("sign");
    headers.push(("Authorization".to_owned(), auth));
    headers
}

fn call(api: &Api, body: &str, headers: &[(String, String)], now: i64) -> api::HttpResponse {
    api::handle(
        api,
        &HttpRequest {
            method: "POST",
            url: "/",
            headers,
            body: body.as_bytes(),
        },
        now,
    )
}

fn bench_api(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let Ok(Outcome::Created(ids)) = store.apply(&Op::CreateVpc {
        cidr: "10.0.0.0/16".into(),
        ipv6_cidr: None,
    }) else {
        panic!("vpc")
    };
    let vpc = ids[0].clone();
    let mut group = String::new();
    for index in 1..GROUPS {
        if let Ok(Outcome::Created(ids)) = store.apply(&Op::CreateSecurityGroup {
            vpc: vpc.clone(),
            name: format!("g{index}"),
            description: String::new(),
        }) {
            group.clone_from(&ids[0]);
        }
    }
    let ports = HashMap::new();
    let (_, snapshot) = service::compile_model(store.model(), None, &ports, 1).expect("compile");
    let cell = Arc::new(PolicyCell::new(snapshot));
    let plane = Arc::new(ControlPlane::new(
        store,
        ports,
        None,
        Arc::clone(&cell),
        Box::new(|_| {}),
    ));
    let api = Api::new(
        ApiSettings::new("123456789012", vec![key()]),
        Arc::clone(&plane) as Arc<dyn Backend>,
    );
    let now = api::unix_now();

    let describe_one =
        format!("Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1={group}");
    let describe_one_headers = request(&describe_one, now);
    let describe_filtered = "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name=group-name&Filter.1.Value.1=g1234".to_owned();
    let describe_filtered_headers = request(&describe_filtered, now);
    let authorize = format!(
        "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId={group}\
         &IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=443&IpPermissions.1.ToPort=443\
         &IpPermissions.1.IpRanges.1.CidrIp=192.0.2.0%2F24"
    );
    let authorize_headers = request(&authorize, now);
    let revoke = authorize.replace(
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
    );
    let revoke_headers = request(&revoke, now);
    assert_eq!(
        call(&api, &describe_one, &describe_one_headers, now).status,
        200
    );
    assert_eq!(
        call(&api, &describe_filtered, &describe_filtered_headers, now).status,
        200
    );

    let mut g = c.benchmark_group("api_2500_groups");
    g.bench_function("describe_security_groups_by_id", |b| {
        b.iter(|| call(&api, &describe_one, &describe_one_headers, now));
    });
    g.bench_function("describe_security_groups_filter_name", |b| {
        b.iter(|| call(&api, &describe_filtered, &describe_filtered_headers, now));
    });
    // Two changes per iteration, each durable and published.
    g.bench_function("authorize_then_revoke_ingress", |b| {
        b.iter(|| {
            assert_eq!(call(&api, &authorize, &authorize_headers, now).status, 200);
            assert_eq!(call(&api, &revoke, &revoke_headers, now).status, 200);
        });
    });
    // The same with a worker polling the policy, as the appliance's are:
    // each change now also waits for the worker to load it (the grace
    // period) before the API answers. The worker loads once per "burst"
    // of about a microsecond's spinning; on a machine with one core per
    // thread this adds about one burst per change.
    {
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = cell.reader();
        let worker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut bursts = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = reader.load();
                    for _ in 0..1000 {
                        std::hint::spin_loop();
                    }
                    drop(snapshot);
                    bursts += 1;
                }
                bursts
            })
        };
        g.bench_function("authorize_then_revoke_ingress_with_a_polling_worker", |b| {
            b.iter(|| {
                assert_eq!(call(&api, &authorize, &authorize_headers, now).status, 200);
                assert_eq!(call(&api, &revoke, &revoke_headers, now).status, 200);
            });
        });
        stop.store(true, Ordering::Relaxed);
        assert!(worker.join().expect("worker") > 0);
    }
    // Where a change's time goes besides the store: the spec of the whole
    // model (what every change rebuilt before the spec was patched), the
    // patch that replaced it, and the incremental compile of one changed
    // group.
    let mut model = palisade_controlplane::model::Model::default();
    plane.read(&mut |m| model = m.clone());
    let ports: HashMap<String, u16> = HashMap::new();
    g.bench_function("model_to_spec", |b| {
        b.iter(|| model.to_spec(&|name| ports.get(name).copied()));
    });
    let hint = palisade_policy::ChangeHint::groups([&palisade_policy::SgId(group.clone())]);
    // What a rule change costs the spec now: the one group's entry rebuilt
    // in the spec kept beside the model, against `model_to_spec` above.
    let mut live = LiveSpec::new(&model, &|name| ports.get(name).copied());
    g.bench_function("live_spec_update_one_group", |b| {
        b.iter(|| {
            assert_eq!(
                live.update(&model, &hint, &|name| ports.get(name).copied()),
                SpecUpdate::Patched
            );
        });
    });
    let spec = model.to_spec(&|name| ports.get(name).copied());
    let (_, base) = service::compile_model(&model, None, &ports, 1).expect("compile");
    g.bench_function("snapshot_apply_one_group", |b| {
        b.iter(|| base.apply(&spec, &hint, 2).expect("apply"));
    });
    g.finish();
}

criterion_group!(benches, bench_api);
criterion_main!(benches);
