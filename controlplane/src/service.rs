//! The control plane as `palisade run` runs it: the durable store, the
//! policy the data plane reads, and the EC2 API's [`Backend`] between them.
//!
//! Every accepted change goes store → compile → publish under one lock:
//! [`Store::apply`] returns once the op is fsynced, the [`LiveSpec`] kept
//! beside the model is patched and the next [`PolicySnapshot`] derived
//! from the current one (both incrementally when the op touched only some
//! groups' rules, ACLs' entries or prefix lists, see [`change_hint`]) and
//! published; the control plane then waits for every worker to load it
//! (the cell's grace period, [`PolicyCell::wait_for_readers`]), and only
//! then does the API answer. So an acknowledged change is both durable and
//! enforced — the next packet a client sends meets it — and publications
//! are serialized as [`PolicyCell::publish`] requires.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_policy::{
    ChangeHint, CompileError, NaclId, PolicyCell, PolicySnapshot, PolicySpec, PrefixListId,
    PublishError, SgId, UplinkSpec,
};

use crate::api::{Backend, Credentials, internal_error};
use crate::config::Config;
use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, LiveSpec, Model, Op, Outcome, RandomIds, SpecUpdate};
use crate::store::{Store, StoreError};

/// A line for the operator on stderr. Not `eprintln!`, which panics when
/// stderr is a pipe whose reader has gone: on an API thread, holding the
/// store's lock, that would poison it (and abort under `panic = "abort"`).
fn note(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Called after each publication.
pub type PublishHook = Box<dyn Fn(Publication) + Send + Sync>;

/// How long the workers may take to load a new generation before the
/// control plane answers anyway (and says so). A worker loads once per
/// burst, so only a descheduled or stuck worker thread takes this long.
pub const GRACE_PERIOD_LIMIT: Duration = Duration::from_secs(2);

/// One publication, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publication {
    /// From the change reaching the control plane to every worker having
    /// loaded it (or the grace period's limit).
    pub elapsed: Duration,
    /// Workers that had not loaded it within [`GRACE_PERIOD_LIMIT`]; they
    /// will at their next burst.
    pub lagging_workers: usize,
}

/// Why the control plane could not start, reload or publish.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store could not open, seed or write.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// The stored objects do not compile into a policy.
    #[error("policy: {0}")]
    Compile(#[from] CompileError),
    /// The snapshot's generation did not follow the current one.
    #[error("publish: {0}")]
    Publish(#[from] PublishError),
    /// SIGHUP after the API changed the store: the file no longer owns the
    /// objects.
    #[error(
        "the state in {0} has been changed through the EC2 API since it was seeded from the configuration file, so the file's objects are not applied again (change them through the API, or start with an empty --state-dir); the running policy stays"
    )]
    ApiOwnsState(PathBuf),
    /// The credentials file could not be read or written.
    #[error("credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Opens the store in `dir` with the configuration's quotas and seeds it
/// from the configuration's objects if it is empty. Returns the store and
/// whether it was seeded now.
pub fn open_store(config: &Config, dir: &Path) -> Result<(Store, bool), ServiceError> {
    let mut store = Store::open_with(dir, config.quotas, Box::new(RandomIds::default()))?;
    let seeded = store.seed_if_empty(config)?;
    Ok((store, seeded))
}

/// The configuration's uplink, its port resolved through `ports`.
///
/// The uplink is the appliance's own configuration (a port and the next
/// hop's MAC), not an EC2 object: the model and the store do not hold it,
/// so the control plane carries it beside the model and puts it into every
/// spec it compiles ([`compile_model`], [`ControlPlane`]). A port name
/// `ports` does not know gives port 0, as for an ENI; `Config::to_spec`
/// reports it to the operator before this is called.
pub fn uplink_spec<S: std::hash::BuildHasher>(
    config: &Config,
    ports: &HashMap<String, u16, S>,
) -> Option<UplinkSpec> {
    config.uplink.as_ref().map(|up| UplinkSpec {
        port: ports.get(&up.port).copied().unwrap_or_default(),
        vlan: up.vlan,
        mac: up.mac,
    })
}

/// The spec and snapshot of `model` with `uplink` (see [`uplink_spec`]),
/// ports resolved through `ports`.
pub fn compile_model<S: std::hash::BuildHasher>(
    model: &Model,
    uplink: Option<UplinkSpec>,
    ports: &HashMap<String, u16, S>,
    generation: u64,
) -> Result<(PolicySpec, PolicySnapshot), CompileError> {
    let mut spec = model.to_spec(&|name| ports.get(name).copied());
    spec.uplink = uplink;
    let snapshot = PolicySnapshot::compile(&spec, generation)?;
    Ok((spec, snapshot))
}

/// What an op changes in the compiled policy: `None` when nothing (tags),
/// the touched groups / ACLs / prefix lists when the topology stays, and
/// everything otherwise. Must never name too little: the incremental
/// compile trusts it (it does check sizes and ids, and compiles from
/// scratch when the spec does not fit).
pub fn change_hint(op: &Op) -> Option<ChangeHint> {
    let group = |g: &str| ChangeHint::groups([&SgId(g.to_owned())]);
    Some(match op {
        Op::CreateTags { .. }
        | Op::DeleteTags { .. }
        | Op::DeleteTagsMatching { .. }
        | Op::SetNetworkInterfaceDescription { .. } => return None,
        Op::Authorize { group: g, .. }
        | Op::Revoke { group: g, .. }
        | Op::RevokeRuleIds { group: g, .. }
        | Op::ModifySecurityGroupRules { group: g, .. }
        | Op::UpdateRuleDescriptions { group: g, .. } => group(g),
        Op::PutNetworkAclEntry { acl, .. } | Op::DeleteNetworkAclEntry { acl, .. } => ChangeHint {
            nacls: vec![NaclId(acl.clone())],
            ..ChangeHint::default()
        },
        Op::ModifyPrefixList { prefix_list, .. }
        | Op::ModifyManagedPrefixList { prefix_list, .. } => ChangeHint {
            prefix_lists: vec![PrefixListId(prefix_list.clone())],
            ..ChangeHint::default()
        },
        _ => ChangeHint::everything(),
    })
}

/// Refuses an ENI that would take the uplink's (port, VLAN, MAC). The
/// model cannot: the uplink is not one of its objects. The data plane
/// could not tell the two apart, so the change would be stored but never
/// compile (nor would the store at the next start).
fn uplink_conflict(
    op: &Op,
    uplink: Option<UplinkSpec>,
    ports: &HashMap<String, u16>,
) -> Result<(), ApiError> {
    let (
        Op::CreateNetworkInterface {
            port, vlan, mac, ..
        },
        Some(up),
    ) = (op, uplink)
    else {
        return Ok(());
    };
    if ports.get(port) == Some(&up.port) && *vlan == up.vlan && *mac == up.mac {
        return Err(ApiError::new(
            Ec2ErrorCode::InvalidParameterValue,
            format!(
                "The uplink's next hop on port {port} already has this MAC address (the appliance configuration's [uplink])"
            ),
        ));
    }
    Ok(())
}

struct Inner {
    store: Store,
    ports: HashMap<String, u16>,
    /// The store's model as the data plane sees it, patched per change.
    spec: LiveSpec,
    /// The last publication failed, so the published snapshot lags the
    /// spec by more than the next op's hint: compile the next one from
    /// scratch.
    publish_failed: bool,
}

/// The store and the published policy, as the API's [`Backend`].
pub struct ControlPlane {
    inner: Mutex<Inner>,
    cell: Arc<PolicyCell>,
    on_publish: PublishHook,
    state_dir: PathBuf,
}

impl core::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// The control plane over `store`, publishing into `cell` (which
    /// already holds the store's compiled policy, [`compile_model`] with
    /// the same `uplink`) with ports named by `ports`. Every generation it
    /// publishes has `uplink` until a reload brings the file's.
    pub fn new(
        store: Store,
        ports: HashMap<String, u16>,
        uplink: Option<UplinkSpec>,
        cell: Arc<PolicyCell>,
        on_publish: PublishHook,
    ) -> Self {
        let state_dir = store
            .path()
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf);
        let mut spec = store.model().to_spec(&|name| ports.get(name).copied());
        spec.uplink = uplink;
        let spec = LiveSpec::from(spec);
        Self {
            inner: Mutex::new(Inner {
                store,
                ports,
                spec,
                publish_failed: false,
            }),
            cell,
            on_publish,
            state_dir,
        }
    }

    /// SIGHUP: while nothing was changed through the API, the edited
    /// file's objects and uplink replace the seed's and are published (the
    /// generation is returned); after an API change the file is not
    /// applied, its uplink included ([`ServiceError::ApiOwnsState`]).
    pub fn reload(&self, config: &Config) -> Result<u64, ServiceError> {
        let started = Instant::now();
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| StoreError::Api(internal_error()))?;
        let Inner {
            store,
            ports,
            spec,
            publish_failed,
        } = &mut *inner;
        // Compile first: a file the compiler rejects must not replace the
        // seed either.
        let generation = self.cell.load().generation() + 1;
        let uplink = uplink_spec(config, ports);
        let (compiled, snapshot) =
            compile_model(&Model::from_config(config), uplink, ports, generation)?;
        if !store.reseed_if_unchanged(config)? {
            return Err(ServiceError::ApiOwnsState(self.state_dir.clone()));
        }
        // The store now holds the file's model (its quotas aside, which
        // the spec does not carry).
        *spec = compiled.into();
        let previous = self.cell.publish(snapshot)?;
        *publish_failed = false;
        self.enforce(previous, generation, started);
        Ok(generation)
    }

    fn apply_and_publish(&self, op: &Op) -> Result<Outcome, ApiError> {
        let started = Instant::now();
        let mut inner = self.inner.lock().map_err(|_| internal_error())?;
        let Inner {
            store,
            ports,
            spec,
            publish_failed,
        } = &mut *inner;
        uplink_conflict(op, spec.spec().uplink, ports)?;
        let outcome = store.apply(op).map_err(|error| match error {
            StoreError::Api(api) => api,
            other => {
                note(format_args!(
                    "palisade: store: {other}; the change was not applied"
                ));
                internal_error()
            }
        })?;
        let Some(hint) = change_hint(op) else {
            return Ok(outcome);
        };
        let port_id = |name: &str| ports.get(name).copied();
        let hint = match spec.update(store.model(), &hint, &port_id) {
            SpecUpdate::Patched if !*publish_failed => hint,
            SpecUpdate::Patched | SpecUpdate::Rebuilt => ChangeHint::everything(),
        };
        let current = self.cell.load_full();
        let generation = current.generation() + 1;
        let published = current
            .apply(spec.spec(), &hint, generation)
            .map_err(ServiceError::from)
            .and_then(|next| self.cell.publish(next).map_err(ServiceError::from));
        drop(current);
        *publish_failed = published.is_err();
        let previous = match published {
            Ok(previous) => previous,
            Err(error) => {
                // The change is durable but the data plane could not take it:
                // say so rather than pretend it is enforced. The model's own
                // checks are meant to make this unreachable.
                note(format_args!(
                    "palisade: {error}; the stored change is not enforced yet"
                ));
                return Err(ApiError::new(
                    Ec2ErrorCode::InternalError,
                    format!(
                        "The change was stored but could not be published to the data plane: {error}"
                    ),
                ));
            }
        };
        self.enforce(previous, generation, started);
        Ok(outcome)
    }

    /// Waits out the grace period of `generation` (every worker has
    /// loaded it), then frees the `previous` snapshot here, off the
    /// workers' cores, and reports the publication.
    fn enforce(&self, previous: Arc<PolicySnapshot>, generation: u64, started: Instant) {
        let lagging_workers = match self.cell.wait_for_readers(generation, GRACE_PERIOD_LIMIT) {
            Ok(()) => 0,
            Err(lagging) => {
                note(format_args!(
                    "palisade: warning: {lagging}; they apply it from their next burst"
                ));
                lagging.lagging
            }
        };
        drop(previous);
        (self.on_publish)(Publication {
            elapsed: started.elapsed(),
            lagging_workers,
        });
    }
}

impl Backend for ControlPlane {
    fn apply(&self, op: &Op) -> Result<Outcome, ApiError> {
        self.apply_and_publish(op)
    }

    fn read(&self, f: &mut dyn FnMut(&Model)) {
        if let Ok(inner) = self.inner.lock() {
            f(inner.store.model());
        }
    }

    fn port_names(&self) -> Option<Vec<String>> {
        let inner = self.inner.lock().ok()?;
        let mut names: Vec<String> = inner.ports.keys().cloned().collect();
        names.sort();
        Some(names)
    }
}

/// The credentials file in the state directory.
pub const CREDENTIALS_FILE: &str = "credentials";

/// Where the API's key pair came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `--access-key-id` / `--secret-access-key`.
    Flags,
    /// `PALISADE_ACCESS_KEY_ID` / `PALISADE_SECRET_ACCESS_KEY`.
    Environment,
    /// `[appliance] access_key_id` / `secret_access_key`.
    ConfigFile,
    /// `STATE_DIR/credentials`, generated at an earlier start.
    StateDir,
    /// Generated now (and stored in `STATE_DIR/credentials`).
    Generated,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCredentials {
    access_key_id: String,
    secret_access_key: String,
}

/// The API's key pair from the first source that has one: flags,
/// environment, configuration file, the state directory's credentials
/// file; with none, a fresh pair is generated and stored there (mode
/// 0600) for the next start.
pub fn resolve_credentials(
    flags: Option<(String, String)>,
    environment: Option<(String, String)>,
    config: Option<(String, String)>,
    state_dir: &Path,
) -> Result<(Credentials, CredentialSource), ServiceError> {
    let pair = |(access_key_id, secret_access_key): (String, String)| Credentials {
        access_key_id,
        secret_access_key,
    };
    if let Some(p) = flags {
        return Ok((pair(p), CredentialSource::Flags));
    }
    if let Some(p) = environment {
        return Ok((pair(p), CredentialSource::Environment));
    }
    if let Some(p) = config {
        return Ok((pair(p), CredentialSource::ConfigFile));
    }
    let path = state_dir.join(CREDENTIALS_FILE);
    let failed = |reason: String| ServiceError::Credentials {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored: StoredCredentials =
                toml::from_str(&text).map_err(|e| failed(e.to_string()))?;
            Ok((
                pair((stored.access_key_id, stored.secret_access_key)),
                CredentialSource::StateDir,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let generated = generate_credentials().map_err(|e| failed(e.to_string()))?;
            write_credentials(&path, &generated).map_err(|e| failed(e.to_string()))?;
            Ok((generated, CredentialSource::Generated))
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

/// A random `AKIA…` id (20 characters, AWS's alphabet) and a 40-character
/// secret, from the kernel's random source.
pub fn generate_credentials() -> std::io::Result<Credentials> {
    use std::io::Read as _;
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 56];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let pick = |alphabet: &[u8], b: u8| char::from(alphabet[usize::from(b) % alphabet.len()]);
    let access_key_id: String = std::iter::once("AKIA".to_owned())
        .chain(
            bytes[..16]
                .iter()
                .map(|&b| pick(ID_ALPHABET, b).to_string()),
        )
        .collect();
    let secret_access_key: String = bytes[16..]
        .iter()
        .map(|&b| pick(SECRET_ALPHABET, b))
        .collect();
    Ok(Credentials {
        access_key_id,
        secret_access_key,
    })
}

fn write_credentials(path: &Path, credentials: &Credentials) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = toml::to_string(&StoredCredentials {
        access_key_id: credentials.access_key_id.clone(),
        secret_access_key: credentials.secret_access_key.clone(),
    })
    .map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(
        format!("# palisade's EC2 API key pair, generated at first start.\n{text}").as_bytes(),
    )?;
    file.sync_all()
}

#[cfg(test)]
mod tests;
