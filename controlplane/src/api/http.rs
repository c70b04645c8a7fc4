//! The EC2 endpoint's HTTP/1.1 server.
//!
//! `tiny_http`, synchronous, with a few worker threads pulling from one
//! accept queue: the control plane does one store transaction per request
//! and is never on the packet path, so an async runtime would buy nothing
//! but a dependency tree. tiny_http gives keep-alive, pipelining and
//! `Expect: 100-continue`; this module adds the body limit (checked on
//! `Content-Length` before reading, and again while reading chunked
//! bodies), the clock, and a graceful shutdown.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Api, ApiSettings, Backend, HttpRequest, RequestCounts, handle, refuse, unix_now};
use crate::model::ApiError;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, no permission).
    #[error("cannot listen for the EC2 API on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        reason: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start an API thread: {0}")]
    Thread(std::io::Error),
}

/// A running endpoint; stops (and joins its threads) on [`ApiServer::shutdown`]
/// or drop.
pub struct ApiServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
    api: Arc<Api>,
}

impl core::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ApiServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Binds `listen` and serves the API over `backend` on
/// `settings.workers` threads.
pub fn spawn(
    listen: SocketAddr,
    settings: ApiSettings,
    backend: Arc<dyn Backend>,
) -> Result<ApiServer, ServeError> {
    let server = tiny_http::Server::http(listen).map_err(|e| ServeError::Bind {
        addr: listen,
        reason: e.to_string(),
    })?;
    let local_addr = server.server_addr().to_ip().unwrap_or(listen);
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = settings.workers.max(1);
    let api = Arc::new(Api::new(settings, backend));
    let mut threads = Vec::with_capacity(workers);
    for index in 0..workers {
        let (shared, stopping, api) = (Arc::clone(&server), Arc::clone(&stop), Arc::clone(&api));
        let thread = std::thread::Builder::new()
            .name(format!("palisade-api{index}"))
            .spawn(move || serve(&shared, &stopping, &api));
        match thread {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop_all(&server, &stop, &mut threads);
                return Err(ServeError::Thread(e));
            }
        }
    }
    Ok(ApiServer {
        server,
        stop,
        threads,
        local_addr,
        api,
    })
}

impl ApiServer {
    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Requests answered so far, by action and code.
    pub fn counts(&self) -> Arc<RequestCounts> {
        Arc::clone(&self.api.counts)
    }

    /// Stops accepting, lets in-flight requests finish, joins the workers.
    pub fn shutdown(mut self) {
        stop_all(&self.server, &self.stop, &mut self.threads);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        stop_all(&self.server, &self.stop, &mut self.threads);
    }
}

fn stop_all(server: &tiny_http::Server, stop: &AtomicBool, threads: &mut Vec<JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for _ in 0..threads.len() {
        server.unblock();
    }
    for thread in threads.drain(..) {
        let _ = thread.join();
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, api: &Api) {
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => answer(request, api),
            Ok(None) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        "RequestEntityTooLarge",
        format!("The request body is larger than the {limit}-byte limit."),
    )
}

fn answer(mut request: tiny_http::Request, api: &Api) {
    let limit = api.settings.max_body_bytes;
    let response = if request.body_length().is_some_and(|n| n > limit) {
        refuse(api, &too_large(limit))
    } else {
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut body);
        if read.is_err() {
            // The connection broke mid-body: nobody to answer.
            return;
        }
        if body.len() > limit {
            refuse(api, &too_large(limit))
        } else {
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_owned(),
                        h.value.as_str().to_owned(),
                    )
                })
                .collect();
            let method = request.method().as_str().to_owned();
            let http = HttpRequest {
                method: &method,
                url: request.url(),
                headers: &headers,
                body: &body,
            };
            handle(api, &http, unix_now())
        }
    };
    let mut reply =
        tiny_http::Response::from_string(response.body).with_status_code(response.status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", "text/xml;charset=UTF-8") {
        reply.add_header(header);
    }
    let _ = request.respond(reply);
}
