//! A minimal SigV4-signing EC2 Query client over one keep-alive HTTP/1.1
//! connection, as botocore talks to an endpoint: form-encoded POST, the
//! `host`, `content-type` and `x-amz-date` headers signed.
//!
//! Hand-written rather than a client crate so that what the benchmark
//! times is the request on the wire and palisade's answer, nothing else:
//! one `write` of the request, a read of the status line, headers and a
//! `Content-Length` (or chunked) body. Signing uses the control plane's own
//! [`sigv4::sign`], the same canonicalization the server verifies with.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_controlplane::api::sigv4::{self, Credentials, SignedRequest};

/// The region the requests are signed for (palisade accepts any).
const REGION: &str = "us-east-1";
/// Form bodies, as botocore sends them.
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error("{what} {addr}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The endpoint.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The answer was not the HTTP the client understands.
    #[error("malformed HTTP response from {addr}: {what}")]
    Malformed {
        /// The endpoint.
        addr: SocketAddr,
        /// What was wrong.
        what: String,
    },
    /// The request could not be signed.
    #[error("signing: {0}")]
    Sign(String),
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body (AWS's XML).
    pub body: String,
}

impl Reply {
    /// The text of the first `<name>…</name>` element, if any.
    pub fn first(&self, name: &str) -> Option<&str> {
        first_element(&self.body, name)
    }
}

/// The text of the first `<name>…</name>` in `xml`.
pub fn first_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// Percent-encodes `text` as SigV4 and AWS's form bodies want it: every
/// byte but the RFC 3986 unreserved ones.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The form body of `params`.
pub fn form_body(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One connection to the endpoint, reopened when the server closes it.
#[derive(Debug)]
pub struct SignedClient {
    addr: SocketAddr,
    key: Credentials,
    connection: Option<BufReader<TcpStream>>,
}

impl SignedClient {
    /// A client of the endpoint at `addr` signing with `key`; connects on
    /// the first request.
    pub fn new(addr: SocketAddr, key: Credentials) -> Self {
        Self {
            addr,
            key,
            connection: None,
        }
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> ClientError + use<> {
        let addr = self.addr;
        move |source| ClientError::Io { what, addr, source }
    }

    fn malformed(&self, what: impl Into<String>) -> ClientError {
        ClientError::Malformed {
            addr: self.addr,
            what: what.into(),
        }
    }

    /// Sends one signed EC2 Query request (`Action`, `Version` and the
    /// rest in `params`) and reads the answer. A broken connection is an
    /// error (no retry: a mutating request may have been applied); the next
    /// call reconnects.
    pub fn call(&mut self, params: &[(&str, String)]) -> Result<Reply, ClientError> {
        let body = form_body(params);
        let request = self.signed_request(&body)?;
        if self.connection.is_none() {
            let stream = TcpStream::connect(self.addr).map_err(self.io("connect to"))?;
            stream.set_nodelay(true).map_err(self.io("configure"))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .map_err(self.io("configure"))?;
            self.connection = Some(BufReader::new(stream));
        }
        let result = self.exchange(&request);
        if !matches!(result, Ok((_, true))) {
            self.connection = None;
        }
        result.map(|(reply, _)| reply)
    }

    fn signed_request(&self, body: &str) -> Result<Vec<u8>, ClientError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let host = self.addr.to_string();
        let headers = vec![
            ("Host".to_owned(), host.clone()),
            ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
            ("X-Amz-Date".to_owned(), sigv4::format_amz_date(now)),
        ];
        let authorization = sigv4::sign(
            &SignedRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: body.as_bytes(),
            },
            &self.key,
            REGION,
            "ec2",
            &["host", "content-type", "x-amz-date"],
        )
        .map_err(|e| ClientError::Sign(e.message))?;
        let mut request = String::with_capacity(body.len() + 512);
        request.push_str("POST / HTTP/1.1\r\n");
        for (name, value) in &headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        let _ = write!(
            request,
            "Authorization: {authorization}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(request.into_bytes())
    }

    /// Writes `request`, reads one response; also says whether the
    /// connection may be reused.
    fn exchange(&mut self, request: &[u8]) -> Result<(Reply, bool), ClientError> {
        let write_error = self.io("write to");
        let read_error = self.io("read from");
        let Some(connection) = self.connection.as_mut() else {
            return Err(self.malformed("no connection"));
        };
        connection
            .get_mut()
            .write_all(request)
            .map_err(write_error)?;
        let head = read_head(connection).map_err(read_error)?;
        let (status, length, chunked, keep_alive) =
            parse_head(&head).map_err(|what| self.malformed(what))?;
        let Some(connection) = self.connection.as_mut() else {
            return Err(self.malformed("no connection"));
        };
        let read_error = |source| ClientError::Io {
            what: "read from",
            addr: self.addr,
            source,
        };
        let body = if chunked {
            read_chunked(connection).map_err(read_error)?
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            connection.read_exact(&mut body).map_err(read_error)?;
            body
        };
        let body = String::from_utf8(body).map_err(|_| self.malformed("body is not UTF-8"))?;
        Ok((Reply { status, body }, keep_alive))
    }
}

/// The status line and headers, up to the blank line.
fn read_head(connection: &mut BufReader<TcpStream>) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if connection.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Status, `Content-Length`, whether chunked, whether keep-alive.
fn parse_head(head: &[String]) -> Result<(u16, Option<usize>, bool, bool), String> {
    let status_line = head.first().ok_or("no status line")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = status_line.starts_with("HTTP/1.1");
    for line in &head[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    if !chunked && length.is_none() {
        return Err("neither Content-Length nor chunked".to_owned());
    }
    Ok((status, length, chunked, keep_alive))
}

fn read_chunked(connection: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        connection.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                if connection.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        connection.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        connection.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// `GET /metrics` on the Prometheus endpoint at `addr` (a fresh connection,
/// closed after).
pub fn scrape(addr: SocketAddr) -> Result<String, ClientError> {
    let io = |what| move |source| ClientError::Io { what, addr, source };
    let mut stream = TcpStream::connect(addr).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io("configure"))?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(io("write to"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(io("read from"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ClientError::Malformed {
        addr,
        what: "no end of headers".to_owned(),
    })?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(ClientError::Malformed {
            addr,
            what: format!("status {:?}", head.lines().next()),
        });
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_controlplane::api::{self, ApiSettings, MemoryBackend};
    use palisade_controlplane::config::Config;
    use palisade_controlplane::model::Model;

    use super::*;

    fn key() -> Credentials {
        Credentials {
            access_key_id: "AKIDBENCHCLIENT".to_owned(),
            secret_access_key: "bench/secret+key".to_owned(),
        }
    }

    fn server() -> api::ApiServer {
        let config =
            Config::from_toml_str("[[vpc]]\nname = \"v\"\ncidr = \"10.0.0.0/16\"\n", "test")
                .expect("config");
        let model = Model::from_config(&config);
        api::spawn(
            "127.0.0.1:0".parse().unwrap(),
            ApiSettings::new("123456789012", vec![key()]),
            Arc::new(MemoryBackend::new(model)),
        )
        .expect("server")
    }

    fn action(name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Action", name.to_owned()),
            ("Version", api::EC2_VERSION.to_owned()),
        ]
    }

    #[test]
    fn signed_requests_are_accepted_and_answered_on_one_connection() {
        let server = server();
        let mut client = SignedClient::new(server.local_addr(), key());
        let vpcs = client.call(&action("DescribeVpcs")).unwrap();
        assert_eq!(vpcs.status, 200, "{}", vpcs.body);
        let vpc = vpcs.first("vpcId").expect("a vpc id").to_owned();
        // Characters a form body must escape, signed and sent intact.
        let mut create = action("CreateSecurityGroup");
        create.extend([
            ("GroupName", "bench & co/1".to_owned()),
            ("GroupDescription", "100% = all + more".to_owned()),
            ("VpcId", vpc),
        ]);
        let created = client.call(&create).unwrap();
        assert_eq!(created.status, 200, "{}", created.body);
        let group = created.first("groupId").expect("group id").to_owned();
        let mut describe = action("DescribeSecurityGroups");
        describe.push(("GroupId.1", group.clone()));
        let described = client.call(&describe).unwrap();
        assert_eq!(described.status, 200, "{}", described.body);
        assert_eq!(described.first("groupId"), Some(group.as_str()));
        assert_eq!(described.first("groupName"), Some("bench &amp; co/1"));
        assert_eq!(
            described.first("groupDescription"),
            Some("100% = all + more")
        );
    }

    #[test]
    fn a_wrong_secret_is_refused_with_aws_error() {
        let server = server();
        let mut bad = key();
        bad.secret_access_key.push('x');
        let mut client = SignedClient::new(server.local_addr(), bad);
        let reply = client.call(&action("DescribeVpcs")).unwrap();
        assert_eq!(reply.status, 403);
        assert_eq!(reply.first("Code"), Some("SignatureDoesNotMatch"));
    }

    #[test]
    fn form_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(form_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(form_encode("a b/c=d&é"), "a%20b%2Fc%3Dd%26%C3%A9");
    }

    #[test]
    fn response_heads_are_parsed_for_length_chunking_and_keep_alive() {
        let head = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_head(&head(&["HTTP/1.1 200 OK", "Content-Length: 12"])),
            Ok((200, Some(12), false, true))
        );
        assert_eq!(
            parse_head(&head(&[
                "HTTP/1.1 400 Bad Request",
                "Transfer-Encoding: chunked",
                "Connection: close"
            ])),
            Ok((400, None, true, false))
        );
        assert!(parse_head(&head(&["HTTP/1.1 200 OK"])).is_err());
        assert!(parse_head(&head(&["garbage"])).is_err());
    }
}
