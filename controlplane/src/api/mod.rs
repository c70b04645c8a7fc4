//! The EC2 Query API (and STS `GetCallerIdentity`) that the AWS CLI, boto3
//! and Terraform speak, so they manage palisade's groups unchanged with
//! `--endpoint-url`.
//!
//! Layers, outermost first:
//! - [`http`]: hyper's HTTP/1.1 on a small tokio runtime (keep-alive,
//!   body limit, a few blocking threads for the handler) that turns each
//!   request into an [`HttpRequest`];
//! - [`handle`]: sans-IO, like the packet path: request + clock in,
//!   response out. It parses [`Params`], verifies SigV4 ([`sigv4`]), finds
//!   the action in the registry ([`actions`]), applies `DryRun`, runs the
//!   handler and wraps its [`Xml`] in AWS's envelope or error document;
//! - handlers read the model and submit [`Op`]s through a [`Backend`]:
//!   the server knows nothing of SQLite or DPDK. The appliance's backend
//!   makes each op durable and publishes the next policy snapshot before
//!   `apply` returns, so an answer means the change is on disk and live.

pub mod actions;
pub mod http;
pub mod params;
pub mod sigv4;
mod sts;
pub mod xml;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use actions::{ACTIONS, Action, Handler};
pub use http::{ApiServer, ServeError, spawn};
pub use params::{Filter, Params};
pub use sigv4::Credentials;
pub use xml::Xml;

use crate::model::Ec2ErrorCode;
use crate::model::{ApiError, Model, Op, Outcome};

/// The EC2 API version every request must name.
pub const EC2_VERSION: &str = "2016-11-15";
/// The STS API version `GetCallerIdentity` is served under.
pub const STS_VERSION: &str = "2011-06-15";
/// Default request-body limit: far above any real EC2 request (a
/// 60-rule Authorize is a few kB), far below what could hurt.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// What the API changes and reads state through. The appliance implements
/// it with the store and the policy cell; tests with a bare [`Model`].
pub trait Backend: Send + Sync {
    /// Applies one op as one durable transaction, all or nothing, and
    /// makes it live; returns only once both are done.
    fn apply(&self, op: &Op) -> Result<Outcome, ApiError>;
    /// Calls `f` with the current model (consistent for the call).
    fn read(&self, f: &mut dyn FnMut(&Model));
    /// The appliance's port names, which a network interface's
    /// `palisade:port` must be one of; `None` when there is nothing to
    /// check against (an in-memory backend), which accepts any name.
    fn port_names(&self) -> Option<Vec<String>> {
        None
    }
}

/// A [`Backend`] over an in-memory model: no durability, no data plane.
/// For tests and benchmarks of the API layer itself.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<(Model, crate::model::RandomIds)>,
}

impl MemoryBackend {
    /// A backend holding `model`.
    pub fn new(model: Model) -> Self {
        Self {
            state: Mutex::new((model, crate::model::RandomIds::default())),
        }
    }
}

impl Backend for MemoryBackend {
    fn apply(&self, op: &Op) -> Result<Outcome, ApiError> {
        let mut guard = self.state.lock().map_err(|_| internal_error())?;
        let (model, ids) = &mut *guard;
        model.apply(op, ids)
    }

    fn read(&self, f: &mut dyn FnMut(&Model)) {
        if let Ok(guard) = self.state.lock() {
            f(&guard.0);
        }
    }
}

/// How the endpoint authenticates and answers.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The 12-digit account that owns every object (`ownerId`).
    pub account_id: String,
    /// The access keys requests may be signed with.
    pub credentials: Vec<Credentials>,
    /// Larger bodies are refused with `RequestEntityTooLarge`.
    pub max_body_bytes: usize,
    /// Requests handled at once (the HTTP server's blocking threads).
    pub workers: usize,
    /// The region whose availability zones the API names.
    pub region: String,
    /// The IPv6 pool `AmazonProvidedIpv6CidrBlock` allocates /56s from.
    pub ipv6_pool: palisade_policy::Ipv6Cidr,
}

impl ApiSettings {
    /// Settings for `account_id` accepting `credentials`, other values
    /// default.
    pub fn new(account_id: impl Into<String>, credentials: Vec<Credentials>) -> Self {
        Self {
            account_id: account_id.into(),
            credentials,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            workers: 4,
            region: crate::config::ApplianceSettings::default().region,
            ipv6_pool: crate::config::ApplianceSettings::default().ipv6_pool,
        }
    }
}

/// Requests answered, by action and result code, for `/metrics`
/// (`palisade_api_requests_total{action,code}`). Both labels come from
/// closed sets (registered action names or `unknown`; AWS codes or
/// `Success`), so a hostile client cannot grow the series.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl RequestCounts {
    fn record(&self, action: &'static str, code: &'static str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((action, code)).or_default() += 1;
        }
    }

    /// Every (action, code) seen with its count.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.counts.lock().map_or_else(
            |_| Vec::new(),
            |c| c.iter().map(|(&(a, k), &n)| (a, k, n)).collect(),
        )
    }
}

/// The endpoint's shared state: settings, backend and counters.
pub struct Api {
    /// How it authenticates and answers.
    pub settings: ApiSettings,
    /// Where state lives.
    pub backend: std::sync::Arc<dyn Backend>,
    /// Requests by action and code.
    pub counts: std::sync::Arc<RequestCounts>,
    request_counter: AtomicU64,
}

impl core::fmt::Debug for Api {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Api")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The endpoint for `settings` over `backend`.
    pub fn new(settings: ApiSettings, backend: std::sync::Arc<dyn Backend>) -> Self {
        Self {
            settings,
            backend,
            counts: std::sync::Arc::default(),
            request_counter: AtomicU64::new(0),
        }
    }

    /// A request id shaped like AWS's (a UUID), unique per process.
    fn next_request_id(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        let a = hasher.finish();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            n & 0xfff,
            (n >> 12) ^ (a & 0xffff_ffff_ffff)
        )
    }
}

/// What a handler sees: who asked, and the backend to read and write
/// through (with `DryRun` enforced at the write).
#[derive(Debug)]
pub struct Context<'a> {
    api: &'a Api,
    dry_run: bool,
    /// This request's id (already in the envelope).
    pub request_id: &'a str,
    /// The region the request was signed for: palisade has none of its
    /// own, so ARNs and availability zones echo the caller's.
    pub region: &'a str,
}

impl Context<'_> {
    /// The account that owns every object.
    pub fn account_id(&self) -> &str {
        &self.api.settings.account_id
    }

    /// The appliance's settings (region, IPv6 pool).
    pub fn settings(&self) -> &ApiSettings {
        &self.api.settings
    }

    /// Submits `op`. Under `DryRun` nothing is written and the request
    /// ends with `DryRunOperation` if the op would have been accepted (it
    /// is tried on a copy of the model), or with the op's own error.
    pub fn apply(&self, op: &Op) -> Result<Outcome, ApiError> {
        if self.dry_run {
            self.read(|model| {
                model
                    .clone()
                    .apply(op, &mut crate::model::RandomIds::default())
            })??;
            return Err(dry_run_error());
        }
        self.api.backend.apply(op)
    }

    /// Whether the request asked for a dry run (handlers skip work that
    /// only serves a real change).
    pub fn dry_run_requested(&self) -> bool {
        self.dry_run
    }

    /// The appliance's port names, if the backend knows them.
    pub fn port_names(&self) -> Option<Vec<String>> {
        self.api.backend.port_names()
    }

    /// Runs `f` on the current model and returns what it computed.
    pub fn read<T>(&self, f: impl FnOnce(&Model) -> T) -> Result<T, ApiError> {
        let mut f = Some(f);
        let mut out = None;
        self.api.backend.read(&mut |model| {
            if let Some(f) = f.take() {
                out = Some(f(model));
            }
        });
        out.ok_or_else(internal_error)
    }
}

fn dry_run_error() -> ApiError {
    ApiError::new(
        Ec2ErrorCode::DryRunOperation,
        "Request would have succeeded, but DryRun flag is set.",
    )
}

/// AWS's answer when something on our side failed (the store could not
/// write): the client may retry; nothing was changed.
pub fn internal_error() -> ApiError {
    ApiError::new(
        Ec2ErrorCode::InternalError,
        "An internal error has occurred. The request was not applied.",
    )
}

/// The HTTP status AWS uses for an error code.
pub fn status_of(code: Ec2ErrorCode) -> u16 {
    code.http_status()
}

/// A request as the HTTP layer received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET` or `POST` (others are refused).
    pub method: &'a str,
    /// Path and query, as sent (`/?Action=…`).
    pub url: &'a str,
    /// Every header, names in any case.
    pub headers: &'a [(String, String)],
    /// The body (at most the configured limit).
    pub body: &'a [u8],
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// The XML document.
    pub body: String,
}

/// Which protocol's envelope a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Ec2,
    Sts,
}

/// Answers one request at `now` (Unix seconds).
pub fn handle(api: &Api, request: &HttpRequest<'_>, now: i64) -> HttpResponse {
    let request_id = api.next_request_id();
    let (path, query) = request.url.split_once('?').unwrap_or((request.url, ""));
    let mut flavour = Flavour::Ec2;
    let mut action_label = "unknown";
    let result = (|| -> Result<String, ApiError> {
        if request.method != "GET" && request.method != "POST" {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidHttpRequest,
                format!("The HTTP method {} is not supported", request.method),
            ));
        }
        let mut params = Params::parse(query)?;
        if request.method == "POST" {
            let body = std::str::from_utf8(request.body).map_err(|_| {
                ApiError::new(
                    Ec2ErrorCode::MalformedQueryString,
                    "The request body is not UTF-8",
                )
            })?;
            params.extend_from_form(body)?;
        }
        if params.get("Version") == Some(STS_VERSION)
            || params.get("Action") == Some("GetCallerIdentity")
        {
            flavour = Flavour::Sts;
        }
        let signed = sigv4::SignedRequest {
            method: request.method,
            path,
            query,
            headers: request.headers,
            body: request.body,
        };
        let verified = sigv4::verify(&signed, &api.settings.credentials, &["ec2", "sts"], now)?;
        flavour = if verified.service == "sts" {
            Flavour::Sts
        } else {
            Flavour::Ec2
        };
        let action_name = params.get("Action").ok_or_else(|| {
            ApiError::new(
                Ec2ErrorCode::MissingAction,
                "The request must contain the parameter Action",
            )
        })?;
        let version = params.required("Version")?;
        let dry_run = params.bool("DryRun")?.unwrap_or(false);
        let mut body = Xml::new();
        match flavour {
            Flavour::Sts => {
                if version != STS_VERSION {
                    return Err(no_such_version(version));
                }
                action_label = sts::label(action_name);
                sts::handle(action_name, &api.settings.account_id, &params, &mut body)?;
                Ok(body.sts_envelope(action_name, &request_id))
            }
            Flavour::Ec2 => {
                let action = ACTIONS
                    .iter()
                    .find(|a| a.name == action_name)
                    .ok_or_else(|| {
                        ApiError::new(
                            Ec2ErrorCode::InvalidAction,
                            format!("The action {action_name} is not valid for this web service."),
                        )
                    })?;
                action_label = action.name;
                if version != EC2_VERSION {
                    return Err(no_such_version(version));
                }
                params.check_known(action.params)?;
                if dry_run && !action.mutates {
                    return Err(dry_run_error());
                }
                let context = Context {
                    api,
                    dry_run,
                    request_id: &request_id,
                    region: &verified.region,
                };
                (action.handler)(&context, &params, &mut body)?;
                if dry_run {
                    // A mutating handler that never reached `apply`.
                    return Err(dry_run_error());
                }
                Ok(body.ec2_envelope(action.name, &request_id))
            }
        }
    })();
    match result {
        Ok(body) => {
            api.counts.record(action_label, "Success");
            HttpResponse { status: 200, body }
        }
        Err(error) => {
            api.counts.record(action_label, error.code.as_str());
            let body = match flavour {
                Flavour::Ec2 => xml::ec2_error(error.code.as_str(), &error.message, &request_id),
                Flavour::Sts => xml::sts_error(
                    error.code.as_str(),
                    &error.message,
                    &request_id,
                    status_of(error.code) < 500,
                ),
            };
            HttpResponse {
                status: status_of(error.code),
                body,
            }
        }
    }
}

/// The EC2 error response for a request refused before it was parsed
/// (oversized body, unreadable connection).
pub fn refuse(api: &Api, error: &ApiError) -> HttpResponse {
    api.counts.record("unknown", error.code.as_str());
    HttpResponse {
        status: status_of(error.code),
        body: xml::ec2_error(error.code.as_str(), &error.message, &api.next_request_id()),
    }
}

fn no_such_version(version: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::NoSuchVersion,
        format!("The requested version ({version}) of service is not supported."),
    )
}

/// The current time in Unix seconds (what [`handle`] is given by the
/// server).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests;
