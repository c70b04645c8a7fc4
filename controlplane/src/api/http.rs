//! The EC2 endpoint's HTTP/1.1 server.
//!
//! hyper's HTTP/1.1 connections (keep-alive, `Expect: 100-continue`) on a
//! small tokio runtime the server owns: one thread runs the reactor and
//! every connection, and each request's [`handle`] — a synchronous SQLite
//! transaction and a wait for the workers' grace period when it changes
//! something — runs on the runtime's blocking pool of `settings.workers`
//! threads, so a slow request never holds up the other connections.
//! Connections are tasks, not threads: clients that connect together and
//! keep their connections idle (Terraform's provider does) cannot starve
//! the others, which is what the vendored tiny_http fork was patched for
//! (docs/DEPENDENCIES.md).
//!
//! This module adds the body limit (checked on `Content-Length` before
//! reading, and again while reading chunked bodies), the clock, a
//! graceful shutdown, and `TCP_NODELAY` on every connection ([`listen`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::oneshot;

use super::{
    Api, ApiSettings, Backend, HttpRequest, HttpResponse, RequestCounts, handle, internal_error,
    refuse, unix_now,
};
use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

/// How long a shutdown waits for connections in the middle of a request
/// (a client still sending its body) before dropping them. Idle
/// keep-alive connections are closed at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How much of a body over the limit is still read (and discarded) so
/// the client, which sends it all before reading, gets the 413 rather than
/// a reset connection; a larger one is answered and the connection closed.
const DRAIN_LIMIT: u64 = 64 << 20;

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
    /// The server's thread or runtime could not be started.
    #[error("cannot start an API thread: {0}")]
    Thread(std::io::Error),
}

/// A running endpoint; stops (and joins its threads) on [`ApiServer::shutdown`]
/// or drop.
pub struct ApiServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
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

/// Binds `listen` and serves the API over `backend`, answering up to
/// `settings.workers` requests at once.
pub fn spawn(
    listen: SocketAddr,
    settings: ApiSettings,
    backend: Arc<dyn Backend>,
) -> Result<ApiServer, ServeError> {
    let bind_failed = |e: std::io::Error| ServeError::Bind {
        addr: listen,
        reason: e.to_string(),
    };
    let listener = self::listen(listen).map_err(bind_failed)?;
    let local_addr = listener.local_addr().map_err(bind_failed)?;
    let workers = settings.workers.max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(workers)
        .thread_name("palisade-api-worker")
        .build()
        .map_err(ServeError::Thread)?;
    let listener = {
        let _context = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(bind_failed)?
    };
    let api = Arc::new(Api::new(settings, backend));
    let (stop, stopped) = oneshot::channel();
    let served = Arc::clone(&api);
    let thread = std::thread::Builder::new()
        .name("palisade-api".to_owned())
        // Dropping the runtime at the end waits for the blocking pool, so
        // a store transaction under way finishes before the join returns.
        .spawn(move || runtime.block_on(serve(listener, served, stopped)))
        .map_err(ServeError::Thread)?;
    Ok(ApiServer {
        stop: Some(stop),
        thread: Some(thread),
        local_addr,
        api,
    })
}

/// A listening socket on `addr` whose accepted connections have
/// `TCP_NODELAY`: Linux copies the option from the listener to each
/// socket `accept` returns. A response can leave in more than one send;
/// with Nagle's algorithm on, the later one waited for the client's
/// delayed ACK of the first, ~40 ms on every small answer.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std's `TcpListener::bind` does: a restart must not be refused
    // while the last run's connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
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

    /// Stops accepting, closes idle connections, lets in-flight requests
    /// finish, joins the server's threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Accepts until `stop`, each connection a task; then closes the listener
/// and shuts the connections down gracefully.
async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>, mut stop: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    // No header-read timer: hyper's would also close idle keep-alive
    // connections after 30 s, and clients keep theirs for 90.
    let http = hyper::server::conn::http1::Builder::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors, or the peer left before the accept:
            // wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let api = Arc::clone(&api);
        let service = hyper::service::service_fn(move |request| answer(Arc::clone(&api), request));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's error (a client gone mid-request) has nobody
            // to be reported to.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::RequestEntityTooLarge,
        format!("The request body is larger than the {limit}-byte limit."),
    )
}

/// Why a request got no answer: its connection broke mid-body.
#[derive(Debug, thiserror::Error)]
#[error("the request body could not be read: {0}")]
struct BrokenBody(#[from] hyper::Error);

/// The body if it is at most `limit` bytes, `None` if larger. A larger
/// body is still read to its end, up to [`DRAIN_LIMIT`], and dropped:
/// clients (Python's `http.client`, the AWS CLI) write the whole body
/// before reading, and a connection closed under them is a broken pipe,
/// not the `RequestEntityTooLarge` answer.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Option<Vec<u8>>, hyper::Error> {
    let mut kept = Vec::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen <= limit as u64 {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    Ok((seen <= limit as u64).then_some(kept))
}

async fn answer(
    api: Arc<Api>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, BrokenBody> {
    let limit = api.settings.max_body_bytes;
    let (head, body) = request.into_parts();
    let declared = body.size_hint().exact();
    // A client that waits for `100 Continue` has sent nothing yet: refuse
    // at once rather than ask for a body only to drop it.
    let waits_to_send = head
        .headers
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let response = if declared.is_some_and(|n| n > limit as u64)
        && (waits_to_send || declared.is_some_and(|n| n > DRAIN_LIMIT))
    {
        refuse(&api, &too_large(limit))
    } else {
        // An error is a connection broken mid-body: nobody to answer;
        // hyper closes it.
        match read_body(body, limit).await? {
            None => refuse(&api, &too_large(limit)),
            Some(body) => {
                let served = Arc::clone(&api);
                // The handler may write the store and wait for the
                // workers: off the reactor, on the blocking pool.
                let handled = tokio::task::spawn_blocking(move || {
                    let headers: Vec<(String, String)> = head
                        .headers
                        .iter()
                        .map(|(name, value)| {
                            (
                                name.as_str().to_owned(),
                                String::from_utf8_lossy(value.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    let url = head.uri.path_and_query().map_or("/", |p| p.as_str());
                    let http = HttpRequest {
                        method: head.method.as_str(),
                        url,
                        headers: &headers,
                        body: &body,
                    };
                    handle(&served, &http, unix_now())
                })
                .await;
                // A handler that panicked answers as any internal failure.
                handled.unwrap_or_else(|_| refuse(&api, &internal_error()))
            }
        }
    };
    Ok(reply(response))
}

fn reply(response: HttpResponse) -> hyper::Response<Full<Bytes>> {
    let mut reply = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *reply.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    reply
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpStream;

    use super::*;
    use crate::api::MemoryBackend;
    use crate::model::Model;

    fn server(limit: usize) -> ApiServer {
        let mut settings = ApiSettings::new("123456789012", Vec::new());
        settings.max_body_bytes = limit;
        settings.workers = 2;
        spawn(
            "127.0.0.1:0".parse().unwrap(),
            settings,
            Arc::new(MemoryBackend::new(Model::default())),
        )
        .unwrap()
    }

    /// Reads one HTTP/1.1 response: status and body.
    fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, String) {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (
            status.split_whitespace().nth(1).unwrap().parse().unwrap(),
            String::from_utf8(body).unwrap(),
        )
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        let server = server(1024);
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..3 {
            let body = "Action=DescribeVpcs&Version=2016-11-15";
            write!(
                writer,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let (status, text) = read_response(&mut reader);
            // Unsigned: refused, but answered on the same connection.
            assert_eq!(status, 403);
            assert!(text.contains("<Code>MissingAuthenticationToken</Code>"));
        }
        assert_eq!(
            server.counts().snapshot(),
            vec![("unknown", "MissingAuthenticationToken", 3)]
        );
        server.shutdown();
    }

    /// Clients that connect together and keep their connections open
    /// (Terraform's provider does) are all answered: none is left queued
    /// behind the others' idle keep-alive connections.
    #[test]
    fn clients_connecting_together_are_all_answered() {
        const CLIENTS: usize = 24;
        for round in 0..5 {
            let server = server(1024);
            let addr = server.local_addr();
            let start = Arc::new(std::sync::Barrier::new(CLIENTS));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        let stream = TcpStream::connect(addr).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                        let mut writer = stream.try_clone().unwrap();
                        let mut reader = BufReader::new(stream);
                        let body = "Action=DescribeVpcs&Version=2016-11-15";
                        write!(
                            writer,
                            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .unwrap();
                        let mut status = String::new();
                        let answered = reader.read_line(&mut status).is_ok_and(|n| n > 0);
                        // Stay connected, idle, until every client is done.
                        (answered, reader)
                    })
                })
                .collect();
            let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            let unanswered = results.iter().filter(|(answered, _)| !answered).count();
            assert_eq!(
                unanswered, 0,
                "round {round}: {unanswered} of {CLIENTS} clients waited 10 s"
            );
            drop(results);
            server.shutdown();
        }
    }

    #[test]
    fn oversized_bodies_are_refused_by_length_and_while_chunked() {
        let server = server(64);
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        let body = "x".repeat(65);
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let (status, text) = read_response(&mut BufReader::new(stream));
        assert_eq!(status, 413);
        assert!(text.contains("<Code>RequestEntityTooLarge</Code>"));

        // The whole chunked request in one write: the server answers and
        // closes as soon as the body passes the limit, so a write after
        // that point could fail with a broken pipe (it did, once, in CI).
        let mut chunked = TcpStream::connect(server.local_addr()).unwrap();
        let mut request = String::from(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        for _ in 0..3 {
            request.push_str("20\r\n");
            request.push_str(&"y".repeat(32));
            request.push_str("\r\n");
        }
        request.push_str("0\r\n\r\n");
        chunked.write_all(request.as_bytes()).unwrap();
        let (status, _) = read_response(&mut BufReader::new(chunked));
        assert_eq!(status, 413);
        drop(server);
    }

    /// A client that writes its whole oversized body before reading (as
    /// Python's `http.client` does) reads the 413: the body is drained,
    /// not cut off with a reset that fails the client's write.
    #[test]
    fn an_oversized_body_sent_whole_is_answered_not_reset() {
        let server = server(64);
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let body = "x".repeat(4 << 20);
        let sender = std::thread::spawn(move || {
            write!(
                writer,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        assert!(sender.join().unwrap().is_ok(), "the body could not be sent");
        let (status, text) = read_response(&mut BufReader::new(stream));
        assert_eq!(status, 413);
        assert!(text.contains("<Code>RequestEntityTooLarge</Code>"));
    }

    #[test]
    fn accepted_connections_have_tcp_nodelay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(socket2::SockRef::from(&accepted).tcp_nodelay().unwrap());
    }

    #[test]
    fn a_taken_address_is_a_bind_error() {
        let first = server(64);
        let taken = spawn(
            first.local_addr(),
            ApiSettings::new("123456789012", Vec::new()),
            Arc::new(MemoryBackend::new(Model::default())),
        );
        assert!(
            matches!(&taken, Err(ServeError::Bind { addr, .. }) if *addr == first.local_addr()),
            "{taken:?}"
        );
    }

    #[test]
    fn shutdown_stops_accepting() {
        let server = server(64);
        let addr = server.local_addr();
        server.shutdown();
        let refused = TcpStream::connect(addr)
            .and_then(|mut s| {
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
                let mut buf = [0u8; 1];
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.read(&mut buf)
            })
            .map_or(true, |n| n == 0);
        assert!(refused, "a stopped server must not answer");
    }
}
