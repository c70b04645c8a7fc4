//! Prometheus `/metrics`: the workers' plain per-core counters, summed and
//! labelled at scrape time, never on the packet path.
//!
//! A scrape reads each worker's [`SharedCounters`](palisade_dataplane::SharedCounters)
//! and port counters (relaxed loads), fills a fresh registry and encodes
//! it in Prometheus' text format. The HTTP side is deliberately small: one
//! thread, `GET /metrics` (and `/`), bounded request size and time, so a
//! bad client costs a closed connection, never the appliance.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use palisade_controlplane::api::RequestCounts;
use palisade_controlplane::service::Publication;
use palisade_dataplane::{DropReason, FlowGauges, WorkerCounters};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::pipeline::Pipelines;

/// Control-side facts the scrape reports beside the workers' counters.
#[derive(Debug)]
pub struct ControlStats {
    /// Policy generations published (the first one included).
    pub publishes: AtomicU64,
    /// How long the last compile + publish took, in nanoseconds.
    pub last_publish_nanos: AtomicU64,
    /// Reloads that failed (the old policy stayed).
    pub failed_reloads: AtomicU64,
    /// Publications some worker had not loaded within the grace period's
    /// limit.
    pub late_publications: AtomicU64,
    /// Every publication's latency, from the change reaching the control
    /// plane (API request or reload) to every worker having loaded it. A
    /// long-lived histogram: each scrape registers this same one.
    pub publish_latency: Histogram,
    /// The EC2 API's requests by action and code, once it is serving.
    pub api_requests: OnceLock<Arc<RequestCounts>>,
}

/// Latency buckets for a publication: from a 2,500-group incremental
/// change (sub-millisecond) to a full compile of a large world.
const PUBLISH_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

impl ControlStats {
    /// Zeroed statistics.
    pub fn new() -> Result<Self, MetricsError> {
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "policy_publish_duration_seconds",
                "Time from a change reaching the control plane (API request or reload) to every worker having loaded its policy snapshot, including the durable write.",
            )
            .buckets(PUBLISH_BUCKETS.to_vec()),
        )
        .map_err(MetricsError::Registry)?;
        Ok(Self {
            publishes: AtomicU64::new(0),
            last_publish_nanos: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
            late_publications: AtomicU64::new(0),
            publish_latency,
            api_requests: OnceLock::new(),
        })
    }

    /// Records one publication of the control plane.
    pub fn record_publication(&self, publication: Publication) {
        if publication.lagging_workers > 0 {
            self.late_publications.fetch_add(1, Ordering::Relaxed);
        }
        self.record_publish(publication.elapsed);
    }

    /// Records one publication that took `elapsed`.
    pub fn record_publish(&self, elapsed: Duration) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
        self.last_publish_nanos
            .store(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.publish_latency.observe(elapsed.as_secs_f64());
    }
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound.
    #[error("cannot listen for /metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A metric could not be defined (a bug in its name or buckets).
    #[error("metrics registry: {0}")]
    Registry(prometheus::Error),
}

/// Binds the endpoint; serve it with [`serve`].
pub fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })
}

/// Serves `/metrics` until `pipelines.stop` is set (checked between
/// connections; the listener polls so that stop is noticed).
pub fn serve(
    listener: &TcpListener,
    pipelines: &Pipelines,
    control: &ControlStats,
    port_names: &[(u16, String)],
) {
    if listener.set_nonblocking(true).is_err() {
        crate::output::say_err!(
            "palisade: warning: /metrics listener cannot poll; stop may wait for a scrape"
        );
    }
    while !pipelines.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream, pipelines, control, port_names);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(
    stream: TcpStream,
    pipelines: &Pipelines,
    control: &ControlStats,
    port_names: &[(u16, String)],
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(16 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read (and ignore) the headers, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            TextEncoder::new().format_type().to_owned(),
            render(pipelines, control, port_names),
        ),
        ("GET", p) if p.starts_with("/explain?") || p == "/explain" => {
            let (status, body) =
                crate::explain::http(p.split_once('?').map_or("", |q| q.1), &pipelines.policy);
            (status, "application/json".to_owned(), body)
        }
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8".to_owned(),
            "palisade: metrics at /metrics\n".to_owned(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8".to_owned(),
            "not found\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8".to_owned(),
            "only GET\n".to_owned(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

use std::io::Read as _;

/// The whole exposition, in Prometheus' text format.
pub fn render(
    pipelines: &Pipelines,
    control: &ControlStats,
    port_names: &[(u16, String)],
) -> String {
    match build(pipelines, control, port_names) {
        Ok(registry) => {
            let mut buf = Vec::new();
            if TextEncoder::new()
                .encode(&registry.gather(), &mut buf)
                .is_err()
            {
                return "# palisade: encoding failed\n".to_owned();
            }
            String::from_utf8(buf).unwrap_or_default()
        }
        Err(e) => {
            let mut s = String::new();
            let _ = writeln!(s, "# palisade: metrics unavailable: {e}");
            s
        }
    }
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn build(
    pipelines: &Pipelines,
    control: &ControlStats,
    port_names: &[(u16, String)],
) -> prometheus::Result<Registry> {
    let r = Registry::new_custom(Some("palisade".to_owned()), None)?;
    let rx_packets = counter(
        &r,
        "port_rx_packets_total",
        "Frames received, per port and worker core.",
        &["port", "worker"],
    )?;
    let rx_bytes = counter(
        &r,
        "port_rx_bytes_total",
        "Bytes received, per port and worker core.",
        &["port", "worker"],
    )?;
    let tx_packets = counter(
        &r,
        "port_tx_packets_total",
        "Frames transmitted, per port and worker core.",
        &["port", "worker"],
    )?;
    let tx_bytes = counter(
        &r,
        "port_tx_bytes_total",
        "Bytes transmitted, per port and worker core.",
        &["port", "worker"],
    )?;
    let tx_dropped = counter(
        &r,
        "port_tx_dropped_total",
        "Frames a full transmit queue refused (freed).",
        &["port", "worker"],
    )?;
    let handoff_dropped = counter(
        &r,
        "port_handoff_dropped_total",
        "Frames another worker's hand-off ring refused (freed).",
        &["port", "worker"],
    )?;
    let packets = counter(
        &r,
        "worker_packets_total",
        "Frames processed, per worker core.",
        &["worker"],
    )?;
    let forwarded = counter(
        &r,
        "worker_forwarded_total",
        "Frames forwarded, per worker core.",
        &["worker"],
    )?;
    let replied = counter(
        &r,
        "worker_replied_total",
        "ARP / neighbour solicitations answered, per worker core.",
        &["worker"],
    )?;
    let drops = counter(
        &r,
        "drops_total",
        "Frames dropped, by reason and worker core.",
        &["reason", "worker"],
    )?;
    let new_flows = counter(
        &r,
        "new_flows_total",
        "Tracked flows created (rate() gives new flows/s).",
        &["worker"],
    )?;
    let flow_hits = counter(&r, "flow_hits_total", "Frames of known flows.", &["worker"])?;
    let untracked = counter(
        &r,
        "untracked_packets_total",
        "Frames allowed as untracked (decided by the rules alone).",
        &["worker"],
    )?;
    let related = counter(
        &r,
        "related_icmp_errors_total",
        "ICMP errors allowed as related to a tracked flow.",
        &["worker"],
    )?;
    let revalidations = counter(
        &r,
        "flow_revalidations_total",
        "Flows re-checked against a newer policy generation.",
        &["worker"],
    )?;
    let denied_remembered = counter(
        &r,
        "denied_remembered_total",
        "Denied frames decided by the denied-flow memory rather than the rules \
         (each also counted in drops_total under its reason).",
        &["worker"],
    )?;
    let flows = gauge(&r, "flows", "Flows in the worker's table.", &["worker"])?;
    let capacity = gauge(
        &r,
        "flow_table_capacity",
        "The most flows the worker's table admits.",
        &["worker"],
    )?;
    let available = gauge(
        &r,
        "conntrack_allowance_available",
        "Room left for new tracked connections.",
        &["worker"],
    )?;
    let exceeded = counter(
        &r,
        "conntrack_allowance_exceeded_total",
        "New connections refused because the flow table was full.",
        &["worker"],
    )?;
    let worker_lcore = gauge(
        &r,
        "worker_lcore",
        "The EAL lcore each worker runs on (absent until the worker starts).",
        &["worker"],
    )?;
    let worker_generation = gauge(
        &r,
        "worker_policy_generation",
        "The policy generation each worker last loaded.",
        &["worker"],
    )?;
    let generation = gauge(
        &r,
        "policy_generation",
        "The current policy generation.",
        &[],
    )?;
    let publishes = counter(
        &r,
        "policy_publishes_total",
        "Policy generations published.",
        &[],
    )?;
    let failed = counter(
        &r,
        "policy_reload_failures_total",
        "Reloads rejected (the previous policy stayed).",
        &[],
    )?;
    let late = counter(
        &r,
        "policy_late_publications_total",
        "Publications some worker had not loaded within the grace period's limit (2 s): the API answered before they were enforced everywhere.",
        &[],
    )?;
    let group_allowed = counter(
        &r,
        "security_group_flows_allowed_total",
        "New flows a rule of this group allowed (egress of the sender or ingress of the receiver). Counted by the group's position: a reload that adds or removes groups shifts the series.",
        &["group", "worker"],
    )?;
    let group_denied = counter(
        &r,
        "security_group_flows_denied_total",
        "New flows the groups of a side did not allow, counted for each group of that side.",
        &["group", "worker"],
    )?;
    let publish_seconds = GaugeVec::new(
        Opts::new(
            "policy_publish_seconds",
            "How long the last compile and publish took.",
        ),
        &[],
    )?;
    r.register(Box::new(publish_seconds.clone()))?;
    r.register(Box::new(control.publish_latency.clone()))?;
    let api_requests = counter(
        &r,
        "api_requests_total",
        "EC2 API requests answered, by action and result code (Success or AWS's error code).",
        &["action", "code"],
    )?;
    if let Some(counts) = control.api_requests.get() {
        for (action, code, n) in counts.snapshot() {
            api_requests.with_label_values(&[action, code]).inc_by(n);
        }
    }

    let name_of = |id: usize| {
        port_names
            .iter()
            .find(|(p, _)| usize::from(*p) == id)
            .map_or_else(|| id.to_string(), |(_, n)| n.clone())
    };
    for (w, shared) in pipelines.workers.iter().enumerate() {
        let worker = w.to_string();
        let (c, g): (WorkerCounters, FlowGauges) = shared.counters.load();
        let wl = [worker.as_str()];
        packets.with_label_values(&wl).inc_by(c.packets);
        forwarded.with_label_values(&wl).inc_by(c.forwarded);
        replied.with_label_values(&wl).inc_by(c.replied);
        new_flows.with_label_values(&wl).inc_by(c.new_flows);
        flow_hits.with_label_values(&wl).inc_by(c.flow_hits);
        untracked.with_label_values(&wl).inc_by(c.untracked);
        related.with_label_values(&wl).inc_by(c.related);
        revalidations.with_label_values(&wl).inc_by(c.revalidations);
        denied_remembered
            .with_label_values(&wl)
            .inc_by(c.denied_remembered);
        for reason in DropReason::ALL {
            drops
                .with_label_values(&[reason.label(), worker.as_str()])
                .inc_by(c.dropped(*reason));
        }
        flows.with_label_values(&wl).set(g.flows as i64);
        capacity.with_label_values(&wl).set(g.capacity as i64);
        available.with_label_values(&wl).set(g.available as i64);
        exceeded.with_label_values(&wl).inc_by(g.refused);
        worker_generation
            .with_label_values(&wl)
            .set(shared.generation.load(Ordering::Relaxed) as i64);
        let lcore = shared.lcore.load(Ordering::Relaxed);
        if lcore != crate::pipeline::NO_LCORE {
            worker_lcore.with_label_values(&wl).set(i64::from(lcore));
        }
        for (id, p) in shared.ports.iter().enumerate() {
            let port = name_of(id);
            let l = [port.as_str(), worker.as_str()];
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            rx_packets.with_label_values(&l).inc_by(load(&p.rx_packets));
            rx_bytes.with_label_values(&l).inc_by(load(&p.rx_bytes));
            tx_packets.with_label_values(&l).inc_by(load(&p.tx_packets));
            tx_bytes.with_label_values(&l).inc_by(load(&p.tx_bytes));
            tx_dropped.with_label_values(&l).inc_by(load(&p.tx_dropped));
            handoff_dropped
                .with_label_values(&l)
                .inc_by(load(&p.handoff_dropped));
        }
    }
    let snapshot = pipelines.policy.load();
    for (w, shared) in pipelines.workers.iter().enumerate() {
        let worker = w.to_string();
        for (index, id) in snapshot.group_ids().enumerate() {
            let l = [id.as_str(), worker.as_str()];
            let allowed = shared
                .group_allowed
                .get(index)
                .map_or(0, |a| a.load(Ordering::Relaxed));
            let denied = shared
                .group_denied
                .get(index)
                .map_or(0, |a| a.load(Ordering::Relaxed));
            group_allowed.with_label_values(&l).inc_by(allowed);
            group_denied.with_label_values(&l).inc_by(denied);
        }
    }
    generation
        .with_label_values::<&str>(&[])
        .set(pipelines.policy.load().generation() as i64);
    publishes
        .with_label_values::<&str>(&[])
        .inc_by(control.publishes.load(Ordering::Relaxed));
    failed
        .with_label_values::<&str>(&[])
        .inc_by(control.failed_reloads.load(Ordering::Relaxed));
    late.with_label_values::<&str>(&[])
        .inc_by(control.late_publications.load(Ordering::Relaxed));
    publish_seconds
        .with_label_values::<&str>(&[])
        .set(control.last_publish_nanos.load(Ordering::Relaxed) as f64 / 1e9);
    Ok(r)
}
