//! `palisade run`: configuration → DPDK → policy → pipelines, then signals.
//!
//! The order matters: the first policy snapshot is compiled and published
//! before any worker starts, so the first packet is already judged by it;
//! `SIGHUP` re-reads the configuration and publishes the next generation
//! while the workers keep forwarding (a bad file is reported and the
//! running policy stays); `SIGINT` / `SIGTERM` stop the workers, print the
//! final counters and release every port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use palisade_controlplane::config::{Config, ConfigError, ProfileRef};
use palisade_dataplane::policy::{CompileError, PolicyCell, PolicySnapshot, PolicySpec};
use palisade_dataplane::{DropReason, WorkerConfig, WorkerCounters};
use palisade_dpdk::{Ring, RingProducer, RingSync};
use palisade_dpdk_config::Profile;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::metrics::{self, ControlStats};
use crate::pipeline::{self, Pipelines, TxPath, WorkerIo};
use crate::startup::{self, ProfileSource, StartupError};

/// `palisade run`'s options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file; the built-in demo without one.
    pub config: Option<PathBuf>,
    /// Run the data plane (DPDK) or only the control side.
    pub dataplane: bool,
    /// Overrides the configuration's metrics address.
    pub metrics_listen: Option<SocketAddr>,
}

/// Why `palisade run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// DPDK start-up.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The configuration describes a world the policy compiler rejects.
    #[error("policy: {0}")]
    Compile(#[from] CompileError),
    /// A worker could not be created (flow table size).
    #[error("worker: {0}")]
    Worker(#[from] palisade_dataplane::WorkerError),
    /// The metrics endpoint.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// Signal handling could not be installed.
    #[error("signals: {0}")]
    Signals(std::io::Error),
    /// A worker or the metrics thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// A hand-off ring between workers.
    #[error("DPDK: {0}")]
    Dpdk(#[from] palisade_dpdk::DpdkError),
    /// The built-in demo's namespaces or web server.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::demo()),
    }
}

fn profile_source(config: &Config) -> ProfileSource {
    match &config.appliance.profile {
        ProfileRef::Path(path) => ProfileSource::File(path.clone()),
        // Config validation admits only the built-in profiles that exist.
        ProfileRef::Builtin(_) => crate::DEMO_PROFILE,
    }
}

/// Compiles `config` into a snapshot of `generation`, ports resolved by name.
fn compile(
    config: &Config,
    ports: &HashMap<String, u16>,
    generation: u64,
) -> Result<(PolicySpec, PolicySnapshot), RunError> {
    let spec = config.to_spec(&|name| ports.get(name).copied())?;
    let snapshot = PolicySnapshot::compile(&spec, generation)?;
    Ok((spec, snapshot))
}

/// Runs the appliance until SIGINT or SIGTERM.
pub fn run(options: &RunOptions) -> Result<(), RunError> {
    let config = load_config(options.config.as_ref())?;
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(RunError::Signals)?;
    let mut profile = profile_source(&config).load().map_err(StartupError::from)?;
    if let Some(workers) = &config.appliance.workers {
        profile.workers.clone_from(workers);
    }
    let metrics_addr = options
        .metrics_listen
        .unwrap_or(config.appliance.metrics_listen);
    let listener = metrics::bind(metrics_addr)?;
    let control = ControlStats::default();

    if !options.dataplane {
        return run_control_only(
            &config,
            &profile,
            &listener,
            &control,
            &mut signals,
            options,
        );
    }

    let workers = profile.workers.len().max(1);
    for port in &mut profile.ports {
        // A transmit queue per worker, where the device has that many
        // (start_ports takes what it offers; see TxPath for the rest).
        port.tx_queues = port.tx_queues.max(workers as u16);
    }
    let eal = startup::start_eal(&profile)?;
    let result = (|| -> Result<(), RunError> {
        let (_pool, ports) = startup::start_ports(&eal, &profile)?;
        startup::wait_for_links(&ports, Duration::from_secs(1));
        let ids: HashMap<String, u16> = ports
            .iter()
            .map(|p| (p.name.clone(), p.port.id()))
            .collect();
        let port_names: Vec<(u16, String)> = ports
            .iter()
            .map(|p| (p.port.id(), p.name.clone()))
            .collect();
        let started = Instant::now();
        let (_, snapshot) = compile(&config, &ids, 1)?;
        record_publish(&control, started);
        println!(
            "palisade: {}: {} ports, {workers} worker(s), policy generation 1",
            config.origin(),
            ports.len()
        );
        print!("{}", startup::port_table(&ports));
        println!("palisade: metrics on http://{metrics_addr}/metrics");
        // The built-in demo only: namespaces around the TAP ports, torn
        // down when `demo` drops (before the ports close).
        let demo = match options.config {
            None => Some(crate::demo::Demo::setup(&config, &profile)?),
            Some(_) => None,
        };

        let mut tx_handoffs = Vec::new();
        let max_port = ports
            .iter()
            .map(|p| usize::from(p.port.id()))
            .max()
            .unwrap_or(0);
        let cores: Vec<Option<usize>> = profile.workers.iter().map(|&c| Some(c)).collect();
        let cores = if cores.is_empty() { vec![None] } else { cores };
        let pipelines = Pipelines::new(
            PolicyCell::new(snapshot),
            &cores,
            max_port + 1,
            WorkerConfig::default().max_counted_groups,
        );
        let worker_config = WorkerConfig {
            max_flows: config.appliance.max_flows_per_worker,
            ..WorkerConfig::default()
        };

        // Queues: each port's receive queues spread over the workers; every
        // worker a transmit queue on every port.
        let mut ios: Vec<WorkerIo<'_>> = (0..workers)
            .map(|_| WorkerIo {
                rx: Vec::new(),
                tx: (0..=max_port).map(|_| TxPath::None).collect(),
                tx_from_peers: Vec::new(),
                to_peers: (0..workers).map(|_| None).collect(),
                from_peers: Vec::new(),
            })
            .collect();
        for (index, started_port) in ports.iter().enumerate() {
            let port = &started_port.port;
            let id = usize::from(port.id());
            let (rx_queues, tx_queues) = port.queue_counts().unwrap_or((1, 1));
            for q in 0..rx_queues {
                let w = (index + usize::from(q)) % workers;
                ios[w].rx.push(port.rx_queue(q)?);
            }
            // Workers past the port's transmit queues hand their frames to
            // worker 0 over one multi-producer ring.
            let mut shared_tx: Option<RingProducer<'_>> = None;
            for (w, io) in ios.iter_mut().enumerate() {
                io.tx[id] = if w < usize::from(tx_queues) {
                    TxPath::Queue(port.tx_queue(w as u16)?)
                } else {
                    if shared_tx.is_none() {
                        let (producer, consumer) = Ring::new(
                            &eal,
                            &format!("tx-{id}"),
                            1024,
                            RingSync::Multi,
                            RingSync::Single,
                        )?;
                        shared_tx = Some(producer);
                        tx_handoffs.push((port.id(), consumer));
                    }
                    match shared_tx.as_ref().and_then(RingProducer::try_clone) {
                        Some(producer) => TxPath::Ring(producer),
                        None => TxPath::None,
                    }
                };
            }
        }
        ios[0].tx_from_peers = tx_handoffs;
        if workers > 1 {
            for from in 0..workers {
                for to in 0..workers {
                    if from == to {
                        continue;
                    }
                    let (producer, consumer) = Ring::new(
                        &eal,
                        &format!("handoff-{from}-{to}"),
                        1024,
                        RingSync::Single,
                        RingSync::Single,
                    )?;
                    ios[from].to_peers[to] = Some(producer);
                    ios[to].from_peers.push(consumer);
                }
            }
        }

        let outcome = std::thread::scope(|s| -> Result<(), RunError> {
            let pipelines = &pipelines;
            let control = &control;
            let handles: Vec<_> = ios
                .into_iter()
                .enumerate()
                .map(|(index, io)| {
                    std::thread::Builder::new()
                        .name(format!("palisade-w{index}"))
                        .spawn_scoped(s, move || {
                            pipeline::run_worker(index, io, pipelines, worker_config)
                        })
                })
                .collect::<Result<_, _>>()
                .map_err(RunError::Thread)?;
            let listener = &listener;
            let port_names = &port_names;
            let metrics = std::thread::Builder::new()
                .name("palisade-metrics".into())
                .spawn_scoped(s, move || {
                    metrics::serve(listener, pipelines, control, port_names);
                })
                .map_err(RunError::Thread)?;
            println!("palisade: forwarding. SIGHUP reloads the configuration; Ctrl-C stops.");
            if let Some(demo) = &demo {
                print!("{}", demo.instructions());
            }
            for signal in signals.forever() {
                if signal == SIGHUP {
                    match reload(options, &ids, pipelines, control) {
                        Ok(generation) => {
                            println!("palisade: reloaded: policy generation {generation}");
                        }
                        Err(e) => {
                            control.failed_reloads.fetch_add(1, Ordering::Relaxed);
                            eprintln!("palisade: reload failed, the running policy stays:\n{e}");
                        }
                    }
                } else {
                    break;
                }
            }
            pipelines.stop.store(true, Ordering::Relaxed);
            let mut first_error = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => first_error = first_error.or(Some(RunError::Worker(e))),
                    Err(_) => eprintln!("palisade: a worker panicked"),
                }
            }
            let _ = metrics.join();
            first_error.map_or(Ok(()), Err)
        });
        print_final_counters(&pipelines, &port_names);
        drop(demo);
        drop(ports);
        outcome
    })();
    // Every worker, port and pool handle is gone: close the ports and check
    // that every mbuf came back to its pool (a leak is an error, not a
    // silent shrink of the pool), then free the EAL.
    match eal.cleanup() {
        Ok(()) => result,
        Err(e) => result.and(Err(RunError::Dpdk(e))),
    }
}

/// SIGHUP: re-read the configuration and publish it as the next generation.
fn reload(
    options: &RunOptions,
    ports: &HashMap<String, u16>,
    pipelines: &Pipelines,
    control: &ControlStats,
) -> Result<u64, RunError> {
    let started = Instant::now();
    let config = load_config(options.config.as_ref())?;
    let generation = pipelines.policy.load().generation() + 1;
    let (_, snapshot) = compile(&config, ports, generation)?;
    // Generations only grow, and this thread is the only publisher.
    let _ = pipelines.policy.publish(snapshot);
    record_publish(control, started);
    Ok(generation)
}

fn record_publish(control: &ControlStats, started: Instant) {
    control.publishes.fetch_add(1, Ordering::Relaxed);
    control
        .last_publish_nanos
        .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// `--dataplane off`: compile and serve metrics and (later) the API, with
/// the profile's ports numbered in file order.
fn run_control_only(
    config: &Config,
    profile: &Profile,
    listener: &std::net::TcpListener,
    control: &ControlStats,
    signals: &mut Signals,
    options: &RunOptions,
) -> Result<(), RunError> {
    let ids: HashMap<String, u16> = profile
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i as u16))
        .collect();
    let started = Instant::now();
    let (_, snapshot) = compile(config, &ids, 1)?;
    record_publish(control, started);
    let pipelines = Pipelines::new(PolicyCell::new(snapshot), &[], 0, 0);
    println!(
        "palisade: {}: data plane off; policy generation 1 compiled",
        config.origin()
    );
    std::thread::scope(|s| {
        let pipelines = &pipelines;
        let metrics = s.spawn(move || metrics::serve(listener, pipelines, control, &[]));
        for signal in signals.forever() {
            if signal == SIGHUP {
                match reload(options, &ids, pipelines, control) {
                    Ok(generation) => {
                        println!("palisade: reloaded: policy generation {generation}");
                    }
                    Err(e) => {
                        control.failed_reloads.fetch_add(1, Ordering::Relaxed);
                        eprintln!("palisade: reload failed, the running policy stays:\n{e}");
                    }
                }
            } else {
                break;
            }
        }
        pipelines.stop.store(true, Ordering::Relaxed);
        let _ = metrics.join();
    });
    Ok(())
}

fn print_final_counters(pipelines: &Pipelines, port_names: &[(u16, String)]) {
    let mut total = WorkerCounters::default();
    for w in &pipelines.workers {
        total.accumulate(&w.counters.load().0);
    }
    println!(
        "palisade: stopped. frames {} forwarded {} answered {} dropped {} new flows {}",
        total.packets,
        total.forwarded,
        total.replied,
        total.dropped_total(),
        total.new_flows
    );
    for reason in DropReason::ALL {
        let n = total.dropped(*reason);
        if n > 0 {
            println!("palisade:   dropped {:<24} {n}", reason.label());
        }
    }
    for (id, name) in port_names {
        let sum = |f: fn(&pipeline::PortCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
            pipelines
                .workers
                .iter()
                .filter_map(|w| w.ports.get(usize::from(*id)))
                .map(|p| f(p).load(Ordering::Relaxed))
                .sum()
        };
        println!(
            "palisade:   port {name}: rx {} tx {} tx-dropped {}",
            sum(|p| &p.rx_packets),
            sum(|p| &p.tx_packets),
            sum(|p| &p.tx_dropped)
        );
    }
}
