//! The EC2 endpoint's HTTP/1.1 server.
//!
//! `tiny_http`, synchronous, with a few worker threads pulling from one
//! accept queue: the control plane does one store transaction per request
//! and is never on the packet path, so an async runtime would buy nothing
//! but a dependency tree. The crate is a patched copy
//! (`vendor/tiny_http/PALISADE.md`): upstream's connection pool could leave
//! connections accepted together waiting for another one to close.
//! tiny_http gives keep-alive, pipelining and `Expect: 100-continue`;
//! this module adds the body limit (checked on
//! `Content-Length` before reading, and again while reading chunked
//! bodies), the clock, a graceful shutdown, and `TCP_NODELAY` on every
//! connection ([`listen`]).

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Api, ApiSettings, Backend, HttpRequest, RequestCounts, handle, refuse, unix_now};
use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

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
    let bind_failed = |reason: String| ServeError::Bind {
        addr: listen,
        reason,
    };
    let listener = self::listen(listen).map_err(|e| bind_failed(e.to_string()))?;
    let server =
        tiny_http::Server::from_listener(listener, None).map_err(|e| bind_failed(e.to_string()))?;
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

/// A listening socket on `addr` whose accepted connections have
/// `TCP_NODELAY`: Linux copies the option from the listener to each
/// socket `accept` returns. tiny_http writes a response's headers and its
/// body in two sends; with Nagle's algorithm on, the body waited for the
/// client's delayed ACK of the headers, ~40 ms on every small answer.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std's `TcpListener::bind` does: a restart must not be refused
    // while the last run's connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
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
        Ec2ErrorCode::RequestEntityTooLarge,
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
