//! `palisade run`: configuration → DPDK → store → policy → EC2 API →
//! pipelines, then signals.
//!
//! The order matters: the store is opened (and seeded from the
//! configuration's objects only when empty), compiled and published as
//! generation 1 before any worker starts, so the first packet is already
//! judged by the stored policy. The EC2 API then publishes each accepted
//! change as the next generation while the workers keep forwarding.
//! `SIGHUP` re-reads the configuration: while nothing was changed through
//! the API its objects replace the seed and are published; after an API
//! change the store owns the objects and the reload is refused (counted as
//! a failed reload; the running policy stays). `SIGINT` / `SIGTERM` stop
//! the API and the workers, print the final counters and release every
//! port; arriving during start-up they stop it at its next step, which
//! releases what exists so far (see [`crate::stop`]). Either way the exit
//! status is 0: the operator asked for the stop and got an orderly one.
//!
//! A port that fails while running (its device removed, link down, the
//! device refusing frames) does not stop the appliance: the other ports keep
//! forwarding, frames for the failed one are freed and counted
//! (`port_tx_dropped_total`), and a warning names the port when the
//! device's own error counters grow (at most once a minute per port). The
//! final counters add the device's error counts. Stopping every port for
//! one would turn a cable pull into an outage of the whole router.
//!
//! Everything printed goes through [`say!`] / [`say_err!`]: a closed stdout or
//! stderr (a pipe whose reader exited) loses lines, never the appliance.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Arc;

use palisade_controlplane::api::{self, ApiServer, ApiSettings};
use palisade_controlplane::config::{Config, ConfigError, ProfileRef};
use palisade_controlplane::service::{self, ControlPlane, CredentialSource, ServiceError};
use palisade_dataplane::policy::{CompileError, PolicyCell};
use palisade_dataplane::{DropReason, WorkerConfig, WorkerCounters};
use palisade_dpdk::{Ring, RingProducer, RingSync};
use palisade_dpdk_config::Profile;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::demo::{DemoError, DemoLock};
use crate::metrics::{self, ControlStats};
use crate::output::{say, say_err};
use crate::pipeline::{self, Pipelines, Steering, SteeringCaps, TxPath, WorkerIo};
use crate::startup::{self, ProfileSource, StartedPort, StartupError};
use crate::stop::{Interrupted, StopFlag};

/// `palisade run`'s options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file; the built-in demo without one.
    pub config: Option<PathBuf>,
    /// Run the data plane (DPDK) or only the control side.
    pub dataplane: bool,
    /// Overrides the configuration's metrics address.
    pub metrics_listen: Option<SocketAddr>,
    /// Overrides the configuration's EC2 API address.
    pub api_listen: Option<SocketAddr>,
    /// Overrides the configuration's state directory.
    pub state_dir: Option<PathBuf>,
    /// The API key pair from `--access-key-id` / `--secret-access-key`.
    pub flag_credentials: Option<(String, String)>,
    /// The API key pair from `PALISADE_ACCESS_KEY_ID` /
    /// `PALISADE_SECRET_ACCESS_KEY`.
    pub env_credentials: Option<(String, String)>,
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
    Demo(DemoError),
    /// SIGINT or SIGTERM during start-up: an orderly stop, not a failure.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// The store, its compile, a reload or the credentials.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The EC2 API endpoint.
    #[error(transparent)]
    Api(#[from] palisade_controlplane::api::ServeError),
}

impl From<DemoError> for RunError {
    fn from(error: DemoError) -> Self {
        match error {
            DemoError::Interrupted(interrupted) => RunError::Interrupted(interrupted),
            other => RunError::Demo(other),
        }
    }
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

/// The control plane of a running appliance: the published policy, the
/// store behind it and the EC2 API in front of it.
struct Control {
    cell: Arc<PolicyCell>,
    plane: Arc<ControlPlane>,
    api: ApiServer,
}

/// Opens the store (seeding an empty one from `config`), compiles and
/// publishes generation 1, and starts the EC2 API. Everything the data
/// plane needs exists before this returns.
fn start_control(
    config: &Config,
    options: &RunOptions,
    ports: &HashMap<String, u16>,
    control: &Arc<ControlStats>,
) -> Result<Control, RunError> {
    // The file's ENIs and uplink must name ports that exist, as before the
    // store.
    config.check_ports(&|name| ports.get(name).copied())?;
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| config.appliance.state_dir.clone());
    let started = Instant::now();
    let (store, seeded) = service::open_store(config, &state_dir)?;
    if seeded {
        say!(
            "palisade: state in {}: seeded from {}",
            state_dir.display(),
            config.origin()
        );
    } else {
        // The store's world runs; say where the file disagrees with it.
        let diff = palisade_controlplane::model::Model::from_config(config).diff(store.model());
        say!(
            "palisade: state in {}: loaded ({} VPCs, {} security groups); {}",
            state_dir.display(),
            store.model().vpcs.len(),
            store.model().security_groups.len(),
            if diff.is_empty() {
                format!("it matches {}", config.origin())
            } else {
                format!(
                    "it differs from {}, whose objects are not applied to a non-empty store:\n{diff}",
                    config.origin()
                )
            }
        );
    }
    // The uplink is the file's, whatever the store holds: it is appliance
    // configuration, not an EC2 object.
    let uplink = service::uplink_spec(config, ports);
    let (_, snapshot) = service::compile_model(store.model(), uplink, ports, 1)?;
    let cell = Arc::new(PolicyCell::new(snapshot));
    control.record_publish(started.elapsed());
    let hook_stats = Arc::clone(control);
    let plane = Arc::new(ControlPlane::new(
        store,
        ports.clone(),
        uplink,
        Arc::clone(&cell),
        Box::new(move |publication| hook_stats.record_publication(publication)),
    ));
    let (credentials, source) = service::resolve_credentials(
        options.flag_credentials.clone(),
        options.env_credentials.clone(),
        config.appliance.access_key.clone(),
        &state_dir,
    )?;
    let listen = options.api_listen.unwrap_or(config.appliance.api_listen);
    let key_id = credentials.access_key_id.clone();
    let secret = credentials.secret_access_key.clone();
    let mut settings = ApiSettings::new(config.appliance.account_id.clone(), vec![credentials]);
    settings.region.clone_from(&config.appliance.region);
    settings.ipv6_pool = config.appliance.ipv6_pool;
    let server = api::spawn(
        listen,
        settings,
        Arc::clone(&plane) as Arc<dyn api::Backend>,
    )?;
    let _ = control.api_requests.set(server.counts());
    let origin = match source {
        CredentialSource::Flags => "--access-key-id",
        CredentialSource::Environment => "PALISADE_ACCESS_KEY_ID",
        CredentialSource::ConfigFile => "the configuration",
        CredentialSource::StateDir | CredentialSource::Generated => "the state directory",
    };
    say!(
        "palisade: EC2 API on http://{}/ (access key {key_id} from {origin})",
        server.local_addr()
    );
    if source == CredentialSource::Generated {
        // Printed this once; afterwards it is in STATE_DIR/credentials.
        say!(
            "palisade: generated API credentials, stored in {}:\n  AWS_ACCESS_KEY_ID={key_id}\n  AWS_SECRET_ACCESS_KEY={secret}",
            state_dir.join(service::CREDENTIALS_FILE).display()
        );
    }
    Ok(Control {
        cell,
        plane,
        api: server,
    })
}

/// Runs the appliance until SIGINT or SIGTERM. A stop signal during
/// start-up ends it with [`RunError::Interrupted`] once what was started is
/// released.
pub fn run(options: &RunOptions) -> Result<(), RunError> {
    // First of all, so that no signal finds anything half-built without a
    // handler: from here SIGINT/SIGTERM only set the flag and wake the loop.
    let stop = StopFlag::register().map_err(RunError::Signals)?;
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(RunError::Signals)?;
    let config = load_config(options.config.as_ref())?;
    let mut profile = profile_source(&config).load().map_err(StartupError::from)?;
    if let Some(workers) = &config.appliance.workers {
        profile.workers.clone_from(workers);
    }
    let metrics_addr = options
        .metrics_listen
        .unwrap_or(config.appliance.metrics_listen);
    let listener = metrics::bind(metrics_addr)?;
    let control = Arc::new(ControlStats::new()?);

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

    // The built-in demo's fixed names: one demo at a time, and what a killed
    // one left behind is cleared before DPDK creates the TAP interfaces.
    // Held until the ports are closed (dropped at the end of this function).
    let demo_lock = match options.config {
        None => Some(DemoLock::claim(&config)?),
        Some(_) => None,
    };
    stop.check("preparing start-up")?;

    let workers = profile.workers.len().max(1);
    for port in &mut profile.ports {
        // A transmit queue per worker, where the device has that many
        // (start_ports takes what it offers; see TxPath for the rest).
        port.tx_queues = port.tx_queues.max(workers as u16);
    }
    let eal = startup::start_eal(&profile)?;
    let result = (|| -> Result<(), RunError> {
        stop.check("starting DPDK (EAL)")?;
        let (_pool, ports) = startup::start_ports(&eal, &profile)?;
        stop.check("starting the ports")?;
        startup::wait_for_links(&ports, Duration::from_secs(1));
        let ids: HashMap<String, u16> = ports
            .iter()
            .map(|p| (p.name.clone(), p.port.id()))
            .collect();
        let port_names: Vec<(u16, String)> = ports
            .iter()
            .map(|p| (p.port.id(), p.name.clone()))
            .collect();
        let Control { cell, plane, api } = start_control(&config, options, &ids, &control)?;
        // (On an early return the API server stops as it drops.)
        stop.check("opening the store and starting the API")?;
        say!(
            "palisade: {}: {} ports, {workers} worker(s), policy generation 1",
            config.origin(),
            ports.len()
        );
        crate::output::out(format_args!("{}", startup::port_table(&ports)));
        say!("palisade: metrics on http://{metrics_addr}/metrics");
        // The built-in demo only: namespaces around the TAP ports, torn
        // down when `demo` drops (before the ports close).
        let demo = match &demo_lock {
            Some(lock) => Some(crate::demo::Demo::setup(&config, &profile, lock, &stop)?),
            None => None,
        };
        stop.check("setting up the demo")?;

        let mut tx_handoffs = Vec::new();
        let max_port = ports
            .iter()
            .map(|p| usize::from(p.port.id()))
            .max()
            .unwrap_or(0);
        let cores: Vec<Option<usize>> = profile.workers.iter().map(|&c| Some(c)).collect();
        let cores = if cores.is_empty() { vec![None] } else { cores };
        let pipelines = Pipelines::new(
            cell,
            &cores,
            max_port + 1,
            WorkerConfig::default().max_counted_groups,
        );
        let worker_config = WorkerConfig::for_flows(config.appliance.max_flows_per_worker);

        // How each port's frames reach the worker that owns their flow:
        // the device's symmetric RSS where every port has it, else the
        // software hand-off rings.
        let steering_caps: Vec<SteeringCaps> = ports
            .iter()
            .map(|p| SteeringCaps {
                name: p.name.clone(),
                rx_queues: p.port.queue_counts().map_or(1, |(rx, _)| rx),
                symmetric: p.port.steers_symmetrically().unwrap_or(false),
                reta_size: p.port.info().map_or(0, |info| info.reta_size),
            })
            .collect();
        let steering = pipeline::plan_steering(workers, &steering_caps);
        for (caps, how) in steering_caps.iter().zip(&steering) {
            say!("palisade: {}", how.describe(caps, workers));
        }
        let any_handoff = steering.iter().any(|s| matches!(s, Steering::Handoff(_)));

        // Queues: each port's receive queues spread over the workers; every
        // worker a transmit queue on every port.
        let mut ios: Vec<WorkerIo<'_>> = (0..workers)
            .map(|_| WorkerIo {
                rx: Vec::new(),
                rx_handoff: Vec::new(),
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
                // With RSS, queue q holds the flows hashed to worker q.
                let (w, handoff) = match steering[index] {
                    Steering::Rss => (usize::from(q) % workers, false),
                    Steering::Single => ((index + usize::from(q)) % workers, false),
                    Steering::Handoff(_) => ((index + usize::from(q)) % workers, true),
                };
                ios[w].rx.push(port.rx_queue(q)?);
                ios[w].rx_handoff.push(handoff);
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
        if workers > 1 && any_handoff {
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

        // Each worker on its EAL lcore (pinned by EAL, with its own mempool
        // cache); the scope joins every one before the queues go away.
        let tsc_hz = eal.tsc_hz();
        let eal_ref = &eal;
        let outcome = std::thread::scope(|s| -> Result<(), RunError> {
            let pipelines = &pipelines;
            let control: &ControlStats = &control;
            eal.scope(|lcores| -> Result<(), RunError> {
                // Stops and joins what was launched, then reports `error`.
                let abort = |handles: Vec<WorkerHandle<'_, '_>>, error| {
                    pipelines.stop.store(true, Ordering::Relaxed);
                    for h in handles {
                        let _ = h.join();
                    }
                    Err(error)
                };
                let mut handles = Vec::with_capacity(workers);
                let worker_lcores = eal_ref.worker_lcores();
                for (index, io) in ios.into_iter().enumerate() {
                    let core = pipelines.workers[index].core;
                    let lcore = match core {
                        Some(core) => core as u32,
                        None => worker_lcores.first().copied().unwrap_or(pipeline::NO_LCORE),
                    };
                    let launched = if worker_lcores.contains(&lcore) {
                        lcores
                            .launch(lcore, move || {
                                pipeline::run_worker(
                                    index,
                                    io,
                                    pipelines,
                                    worker_config,
                                    eal_ref.lcore_id(),
                                    tsc_hz,
                                )
                            })
                            .map(WorkerHandle::Lcore)
                            .map_err(RunError::Dpdk)
                    } else {
                        // The configuration's `workers` may name the main
                        // lcore's core (two workers on a two-core machine),
                        // which has no EAL worker thread.
                        say_err!(
                            "palisade: warning: worker {index}'s core {lcore} is not an EAL worker lcore (worker lcores: {worker_lcores:?}); it runs on a thread pinned there and registered with EAL"
                        );
                        std::thread::Builder::new()
                            .name(format!("palisade-w{index}"))
                            .spawn_scoped(s, move || {
                                pipeline::run_worker_on_thread(
                                    index,
                                    io,
                                    pipelines,
                                    worker_config,
                                    eal_ref,
                                    tsc_hz,
                                )
                            })
                            .map(WorkerHandle::Thread)
                            .map_err(RunError::Thread)
                    };
                    match launched {
                        Ok(handle) => handles.push(handle),
                        Err(e) => return abort(handles, e),
                    }
                }
                let listener = &listener;
                let port_names = &port_names;
                let metrics = std::thread::Builder::new()
                    .name("palisade-metrics".into())
                    .spawn_scoped(s, move || {
                        metrics::serve(listener, pipelines, control, port_names);
                    });
                let metrics = match metrics {
                    Ok(metrics) => metrics,
                    Err(e) => return abort(handles, RunError::Thread(e)),
                };
                say!("palisade: forwarding. SIGHUP reloads the configuration; Ctrl-C stops.");
                if let Some(demo) = &demo {
                    crate::output::out(format_args!("{}", demo.instructions()));
                }
                let mut watch = PortWatch::new(&ports);
                wait_for_stop(
                    &mut signals,
                    || on_sighup(options, &ids, &plane, control),
                    || watch.check(),
                );
                api.shutdown();
                pipelines.stop.store(true, Ordering::Relaxed);
                let mut first_error = None;
                for h in handles {
                    match h.join() {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => first_error = first_error.or(Some(RunError::Worker(e))),
                        Err(_) => say_err!("palisade: a worker panicked"),
                    }
                }
                let _ = metrics.join();
                first_error.map_or(Ok(()), Err)
            })
        });
        print_final_counters(&pipelines, &ports);
        drop(demo);
        drop(ports);
        outcome
    })();
    // Every worker, port and pool handle is gone: close the ports and check
    // that every mbuf came back to its pool (a leak is an error, not a
    // silent shrink of the pool), then free the EAL.
    let result = match eal.cleanup() {
        Ok(()) => result,
        Err(e) => result.and(Err(RunError::Dpdk(e))),
    };
    drop(demo_lock);
    result
}

/// How often the signal loop wakes to look at the ports, and so the most a
/// stop signal waits to be acted on.
const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// How often the ports' device counters are read.
const PORT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The least time between two warnings about one port.
const PORT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Blocks until SIGINT or SIGTERM: `on_hup` for each SIGHUP, `tick` about
/// every [`SIGNAL_POLL`].
fn wait_for_stop(signals: &mut Signals, mut on_hup: impl FnMut(), mut tick: impl FnMut()) {
    loop {
        for signal in signals.pending() {
            if signal == SIGHUP {
                on_hup();
            } else {
                return;
            }
        }
        tick();
        std::thread::sleep(SIGNAL_POLL);
    }
}

/// Watches the ports' device error counters while forwarding, and warns
/// when a port starts failing (see the module doc).
struct PortWatch<'a, 'eal> {
    ports: &'a [StartedPort<'eal>],
    /// Per port: receive + transmit errors at the last look, and when it
    /// was last warned about.
    seen: Vec<(u64, Option<Instant>)>,
    last_check: Instant,
}

impl<'a, 'eal> PortWatch<'a, 'eal> {
    fn new(ports: &'a [StartedPort<'eal>]) -> Self {
        PortWatch {
            ports,
            seen: ports
                .iter()
                .map(|p| (p.port.stats().map_or(0, |s| s.ierrors + s.oerrors), None))
                .collect(),
            last_check: Instant::now(),
        }
    }

    fn check(&mut self) {
        if self.last_check.elapsed() < PORT_CHECK_INTERVAL {
            return;
        }
        self.last_check = Instant::now();
        for (started, (errors, warned)) in self.ports.iter().zip(&mut self.seen) {
            let Ok(stats) = started.port.stats() else {
                continue;
            };
            let now = stats.ierrors + stats.oerrors;
            if now > *errors && warned.is_none_or(|at| at.elapsed() >= PORT_WARNING_INTERVAL) {
                let link = match started.port.link() {
                    Ok(link) if link.up => "up",
                    Ok(_) => "down",
                    Err(_) => "unknown",
                };
                say_err!(
                    "palisade: warning: port {}: device errors (receive {}, transmit {}), link {link}: the device may be gone or down; the other ports keep forwarding, frames for this one are dropped and counted",
                    started.name,
                    stats.ierrors,
                    stats.oerrors
                );
                *warned = Some(Instant::now());
            }
            *errors = now;
        }
    }
}

/// A running worker: on its EAL lcore, or on a registered thread.
enum WorkerHandle<'scope, 'thread> {
    Lcore(palisade_dpdk::LcoreHandle<'scope, Result<(), palisade_dataplane::WorkerError>>),
    Thread(std::thread::ScopedJoinHandle<'thread, Result<(), palisade_dataplane::WorkerError>>),
}

impl WorkerHandle<'_, '_> {
    fn join(self) -> std::thread::Result<Result<(), palisade_dataplane::WorkerError>> {
        match self {
            WorkerHandle::Lcore(h) => h.join(),
            WorkerHandle::Thread(h) => h.join(),
        }
    }
}

/// SIGHUP: re-read the configuration; while the store holds only its seed,
/// publish the file's objects as the next generation (see the module doc).
fn reload(
    options: &RunOptions,
    ports: &HashMap<String, u16>,
    plane: &ControlPlane,
) -> Result<u64, RunError> {
    let config = load_config(options.config.as_ref())?;
    config.check_ports(&|name| ports.get(name).copied())?;
    Ok(plane.reload(&config)?)
}

fn on_sighup(
    options: &RunOptions,
    ports: &HashMap<String, u16>,
    plane: &ControlPlane,
    control: &ControlStats,
) {
    match reload(options, ports, plane) {
        Ok(generation) => {
            say!("palisade: reloaded: policy generation {generation}");
        }
        Err(e) => {
            control.failed_reloads.fetch_add(1, Ordering::Relaxed);
            say_err!("palisade: reload failed, the running policy stays:\n{e}");
        }
    }
}

/// `--dataplane off`: the store, the policy, the EC2 API and metrics,
/// with the profile's ports numbered in file order.
fn run_control_only(
    config: &Config,
    profile: &Profile,
    listener: &std::net::TcpListener,
    control: &Arc<ControlStats>,
    signals: &mut Signals,
    options: &RunOptions,
) -> Result<(), RunError> {
    let ids: HashMap<String, u16> = profile
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i as u16))
        .collect();
    let Control { cell, plane, api } = start_control(config, options, &ids, control)?;
    let pipelines = Pipelines::new(cell, &[], 0, 0);
    say!(
        "palisade: {}: data plane off; policy generation 1 compiled",
        config.origin()
    );
    std::thread::scope(|s| {
        let pipelines = &pipelines;
        let stats: &ControlStats = control;
        let metrics = s.spawn(move || metrics::serve(listener, pipelines, stats, &[]));
        wait_for_stop(signals, || on_sighup(options, &ids, &plane, control), || {});
        api.shutdown();
        pipelines.stop.store(true, Ordering::Relaxed);
        let _ = metrics.join();
    });
    Ok(())
}

/// The final counters, with each port's device errors where there were any.
fn print_final_counters(pipelines: &Pipelines, ports: &[StartedPort<'_>]) {
    let mut total = WorkerCounters::default();
    for w in &pipelines.workers {
        total.accumulate(&w.counters.load().0);
    }
    say!(
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
            say!("palisade:   dropped {:<24} {n}", reason.label());
        }
    }
    for started in ports {
        let id = started.port.id();
        let sum = |f: fn(&pipeline::PortCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
            pipelines
                .workers
                .iter()
                .filter_map(|w| w.ports.get(usize::from(id)))
                .map(|p| f(p).load(Ordering::Relaxed))
                .sum()
        };
        let device = match started.port.stats() {
            Ok(s) if s.ierrors + s.oerrors > 0 => {
                format!(" device-errors rx {} tx {}", s.ierrors, s.oerrors)
            }
            _ => String::new(),
        };
        say!(
            "palisade:   port {}: rx {} tx {} tx-dropped {}{device}",
            started.name,
            sum(|p| &p.rx_packets),
            sum(|p| &p.tx_packets),
            sum(|p| &p.tx_dropped)
        );
    }
}
