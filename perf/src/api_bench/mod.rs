//! The control-plane API benchmark (issue #5): latency of signed EC2 calls
//! against a running `palisade run` whose store holds a large world
//! ([`world`]), and the change-to-data-plane publish latency.
//!
//! One loop interleaves the four measured calls, so background load on a
//! shared machine hits them alike: AuthorizeSecurityGroupIngress of a new
//! port on one of `targets` groups, the RevokeSecurityGroupIngress of the
//! same permission (which keeps the world the same size), a
//! DescribeSecurityGroups of that group by id, and a filtered
//! DescribeSecurityGroups (`ip-permission.from-port`, which the server
//! answers by scanning every group; [`world::FILTER_GROUPS`] match).
//!
//! Publication: palisade answers a change only after it is durable and the
//! next policy generation is published, so every Authorize/Revoke moves
//! `palisade_policy_generation` by exactly one. Every `check_every`
//! iterations the benchmark scrapes `/metrics` right after the Authorize's
//! answer and requires exactly the expected generation (counted as checks
//! that held); the time from sending the change to the generation being
//! visible is therefore bounded by the Authorize latency. The server side
//! of it — store write + compile + publish + the workers' grace period —
//! is palisade's `palisade_policy_publish_duration_seconds` histogram, read
//! before and after the run.

pub mod client;
pub mod stats;
pub mod world;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palisade_controlplane::api::{Credentials, EC2_VERSION};

use self::client::{ClientError, Reply, SignedClient, scrape};
use self::stats::{Histogram, Summary, sample};
use self::world::{BENCH_PORT_BASE, WorldShape};

/// palisade's publish-latency histogram.
pub const PUBLISH_HISTOGRAM: &str = "palisade_policy_publish_duration_seconds";
/// palisade's current policy generation.
pub const GENERATION_GAUGE: &str = "palisade_policy_generation";

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiBenchError {
    /// A request or scrape got no answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// palisade answered something other than success.
    #[error("{action}: HTTP {status}: {body}")]
    Refused {
        /// The action.
        action: &'static str,
        /// The status.
        status: u16,
        /// The error document.
        body: String,
    },
    /// The answer lacked what it must hold.
    #[error("{action}: {what}; answer: {body}")]
    Unexpected {
        /// The action.
        action: &'static str,
        /// What was missing or wrong.
        what: String,
        /// The answer.
        body: String,
    },
    /// `/metrics` lacks the generation gauge.
    #[error("/metrics has no {GENERATION_GAUGE}")]
    NoGeneration,
    /// The world's shape is not one [`world`] can have written.
    #[error(transparent)]
    World(#[from] world::WorldError),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    /// The EC2 endpoint.
    pub endpoint: SocketAddr,
    /// palisade's `/metrics` endpoint.
    pub metrics: SocketAddr,
    /// The key the world's configuration accepts.
    pub key: Credentials,
    /// The world palisade was seeded with (`api-config`'s shape).
    pub shape: WorldShape,
    /// Measured iterations (each: Authorize, Revoke, two Describes).
    pub iterations: usize,
    /// Unmeasured iterations first (connections, caches, allocator).
    pub warmup: usize,
    /// Groups the changes rotate over, spread across the world.
    pub targets: usize,
    /// Scrape `/metrics` after every this many Authorizes (0: never).
    pub check_every: usize,
}

/// The measured figures.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    /// Groups the full DescribeSecurityGroups returned.
    pub groups_in_store: usize,
    /// One full DescribeSecurityGroups (every group, unfiltered).
    pub describe_all: Duration,
    /// Its answer's size in bytes.
    pub describe_all_bytes: usize,
    /// AuthorizeSecurityGroupIngress.
    pub authorize: Summary,
    /// RevokeSecurityGroupIngress of the same permission.
    pub revoke: Summary,
    /// DescribeSecurityGroups GroupId.1.
    pub describe_by_id: Summary,
    /// DescribeSecurityGroups with an `ip-permission.from-port` filter.
    pub describe_filtered: Summary,
    /// Generation checks made, and how many saw exactly the expected
    /// generation right after the Authorize's answer.
    pub generation_checks: (usize, usize),
    /// The server's publish histogram over the measured iterations, if it
    /// exports one.
    pub publish: Option<Histogram>,
}

fn ec2(action: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("Action", action.to_owned()),
        ("Version", EC2_VERSION.to_owned()),
    ]
}

/// Sends `params` and requires HTTP 200.
fn expect_ok(
    client: &mut SignedClient,
    action: &'static str,
    params: &[(&'static str, String)],
) -> Result<(Reply, Duration), ApiBenchError> {
    let started = Instant::now();
    let reply = client.call(params)?;
    let elapsed = started.elapsed();
    if reply.status != 200 {
        return Err(ApiBenchError::Refused {
            action,
            status: reply.status,
            body: reply.body,
        });
    }
    Ok((reply, elapsed))
}

fn unexpected(action: &'static str, what: impl Into<String>, reply: &Reply) -> ApiBenchError {
    ApiBenchError::Unexpected {
        action,
        what: what.into(),
        body: reply.body.chars().take(2000).collect(),
    }
}

fn generation(metrics: SocketAddr) -> Result<u64, ApiBenchError> {
    let text = scrape(metrics)?;
    sample(&text, GENERATION_GAUGE)
        .map(|g| g as u64)
        .ok_or(ApiBenchError::NoGeneration)
}

/// The permission the benchmark authorizes on a group and then revokes.
fn permission(action: &'static str, group: &str, port: u16) -> Vec<(&'static str, String)> {
    let mut params = ec2(action);
    params.extend([
        ("GroupId", group.to_owned()),
        ("IpPermissions.1.IpProtocol", "tcp".to_owned()),
        ("IpPermissions.1.FromPort", port.to_string()),
        ("IpPermissions.1.ToPort", port.to_string()),
        (
            "IpPermissions.1.IpRanges.1.CidrIp",
            "10.99.0.0/16".to_owned(),
        ),
    ]);
    params
}

/// The named groups the changes rotate over and their ids, looked up by
/// name through the API.
fn target_groups(
    client: &mut SignedClient,
    shape: &WorldShape,
    targets: usize,
) -> Result<Vec<(usize, String)>, ApiBenchError> {
    let named = shape.named_groups();
    let targets = targets.clamp(1, named);
    let mut out = Vec::with_capacity(targets);
    for t in 0..targets {
        let k = t * named / targets;
        let mut params = ec2("DescribeSecurityGroups");
        params.extend([
            ("Filter.1.Name", "group-name".to_owned()),
            ("Filter.1.Value.1", format!("g{k}")),
        ]);
        let (reply, _) = expect_ok(client, "DescribeSecurityGroups", &params)?;
        let id = reply
            .first("groupId")
            .ok_or_else(|| {
                unexpected(
                    "DescribeSecurityGroups",
                    format!("no group g{k}: was palisade seeded with this --groups?"),
                    &reply,
                )
            })?
            .to_owned();
        out.push((k, id));
    }
    Ok(out)
}

/// Runs the benchmark against a palisade seeded with `options.shape`.
pub fn run_latency(options: &LatencyOptions) -> Result<LatencyReport, ApiBenchError> {
    options.shape.validate()?;
    let mut client = SignedClient::new(options.endpoint, options.key.clone());

    let (all, describe_all) = expect_ok(
        &mut client,
        "DescribeSecurityGroups",
        &ec2("DescribeSecurityGroups"),
    )?;
    let groups_in_store = all.body.matches("<groupName>").count();
    if groups_in_store < options.shape.groups {
        return Err(unexpected(
            "DescribeSecurityGroups",
            format!(
                "{groups_in_store} groups in the store, the shape says {}",
                options.shape.groups
            ),
            &all,
        ));
    }
    let targets = target_groups(&mut client, &options.shape, options.targets)?;
    let mut publish_before = None;
    let mut expected_generation = generation(options.metrics)?;

    let mut samples: [Vec<Duration>; 4] = Default::default();
    let mut checks = (0, 0);
    for i in 0..options.warmup + options.iterations {
        let measured = i >= options.warmup;
        if i == options.warmup {
            publish_before = Histogram::parse(&scrape(options.metrics)?, PUBLISH_HISTOGRAM);
        }
        let (k, group) = &targets[i % targets.len()];
        let port = BENCH_PORT_BASE + (i % 10_000) as u16;

        let params = permission("AuthorizeSecurityGroupIngress", group, port);
        let (reply, authorize) = expect_ok(&mut client, "AuthorizeSecurityGroupIngress", &params)?;
        if reply.first("return") != Some("true") {
            return Err(unexpected(
                "AuthorizeSecurityGroupIngress",
                "no <return>true",
                &reply,
            ));
        }
        expected_generation += 1;
        if options.check_every > 0 && i % options.check_every == 0 {
            checks.0 += 1;
            if generation(options.metrics)? == expected_generation {
                checks.1 += 1;
            }
        }

        let params = permission("RevokeSecurityGroupIngress", group, port);
        let (reply, revoke) = expect_ok(&mut client, "RevokeSecurityGroupIngress", &params)?;
        if reply.first("return") != Some("true") {
            return Err(unexpected(
                "RevokeSecurityGroupIngress",
                "no <return>true",
                &reply,
            ));
        }
        expected_generation += 1;

        let mut params = ec2("DescribeSecurityGroups");
        params.push(("GroupId.1", group.clone()));
        let (reply, by_id) = expect_ok(&mut client, "DescribeSecurityGroups", &params)?;
        if reply.first("groupId") != Some(group.as_str()) {
            return Err(unexpected(
                "DescribeSecurityGroups",
                "not the asked group",
                &reply,
            ));
        }

        let mut params = ec2("DescribeSecurityGroups");
        params.extend([
            ("Filter.1.Name", "ip-permission.from-port".to_owned()),
            ("Filter.1.Value.1", WorldShape::filter_port(*k).to_string()),
        ]);
        let (reply, filtered) = expect_ok(&mut client, "DescribeSecurityGroups", &params)?;
        if !reply.body.contains(&format!("<groupId>{group}</groupId>")) {
            return Err(unexpected(
                "DescribeSecurityGroups",
                "the filter did not find the group",
                &reply,
            ));
        }

        if measured {
            for (into, value) in samples.iter_mut().zip([authorize, revoke, by_id, filtered]) {
                into.push(value);
            }
        }
    }
    let publish_after = Histogram::parse(&scrape(options.metrics)?, PUBLISH_HISTOGRAM);
    let publish = publish_after
        .zip(publish_before)
        .and_then(|(after, before)| after.since(&before));
    let summary = |s: &[Duration]| {
        Summary::of(s).ok_or(ApiBenchError::Unexpected {
            action: "benchmark",
            what: "no measured iterations".to_owned(),
            body: String::new(),
        })
    };
    Ok(LatencyReport {
        groups_in_store,
        describe_all,
        describe_all_bytes: all.body.len(),
        authorize: summary(&samples[0])?,
        revoke: summary(&samples[1])?,
        describe_by_id: summary(&samples[2])?,
        describe_filtered: summary(&samples[3])?,
        generation_checks: checks,
        publish,
    })
}

impl core::fmt::Display for LatencyReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "api-latency: {} groups in the store; one unfiltered DescribeSecurityGroups: {:.1} ms, {} bytes",
            self.groups_in_store,
            self.describe_all.as_secs_f64() * 1e3,
            self.describe_all_bytes
        )?;
        for (name, summary) in [
            ("AuthorizeSecurityGroupIngress", &self.authorize),
            ("RevokeSecurityGroupIngress", &self.revoke),
            ("DescribeSecurityGroups by id", &self.describe_by_id),
            ("DescribeSecurityGroups filtered", &self.describe_filtered),
        ] {
            writeln!(f, "api-latency: {name:<32} {summary}")?;
        }
        writeln!(
            f,
            "api-latency: generation published when the Authorize answered: {} of {} checks",
            self.generation_checks.1, self.generation_checks.0
        )?;
        match &self.publish {
            Some(h) => {
                let ms = |v: Option<f64>| {
                    v.map_or("n/a".to_owned(), |s| {
                        if s.is_finite() {
                            format!("{:.3} ms", s * 1e3)
                        } else {
                            "+Inf".to_owned()
                        }
                    })
                };
                writeln!(
                    f,
                    "api-latency: server publish latency (store write + compile + publish, {PUBLISH_HISTOGRAM}): n={} mean={} p50<={} p99<={}",
                    h.count,
                    ms(h.mean()),
                    ms(h.quantile_bound(0.5)),
                    ms(h.quantile_bound(0.99))
                )
            }
            None => writeln!(f, "api-latency: /metrics has no {PUBLISH_HISTOGRAM}"),
        }
    }
}
