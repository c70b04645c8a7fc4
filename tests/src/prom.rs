//! Just enough HTTP and Prometheus text format for the tests to scrape
//! palisade's `/metrics` and ask a Prometheus server's query API, over a
//! plain `TcpStream` (HTTP/1.0, so no chunked bodies come back).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why a scrape or a query failed.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// Connecting, sending or receiving failed.
    #[error("GET http://{addr}{path}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// The path asked for.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The answer is not an HTTP response.
    #[error("GET http://{addr}{path}: not an HTTP response: {start:?}")]
    NotHttp {
        /// The server.
        addr: SocketAddr,
        /// The path asked for.
        path: String,
        /// Its first bytes.
        start: String,
    },
    /// A sample line of the exposition could not be read.
    #[error("exposition line {line}: {text:?}")]
    BadSample {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// `GET path` from `addr`, the whole answer read within `timeout` per step.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, PromError> {
    let io = |source| PromError::Io {
        addr,
        path: path.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let not_http = || PromError::NotHttp {
        addr,
        path: path.to_owned(),
        start: text.chars().take(80).collect(),
    };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(not_http)?;
    let status = head
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_http)?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (with `_total` etc. as exposed).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Reads `{a="x",b="y"}` starting after the `{`; returns the labels and
/// the rest after the `}`.
fn parse_labels(text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        rest = &after[end + 1..];
    }
}

/// The samples of a Prometheus text exposition (comments skipped).
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, PromError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || PromError::BadSample {
            line: index + 1,
            text: line.to_owned(),
        };
        let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
        let name = &line[..name_end];
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).ok_or_else(bad)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| match v {
                "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                "NaN" => Some(f64::NAN),
                v => v.parse().ok(),
            })
            .ok_or_else(bad)?;
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The sum of `name`'s samples whose labels include every `(key, value)`
/// of `filter`; `None` when no sample matches.
pub fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    let mut matched = samples
        .iter()
        .filter(|s| {
            s.name == name
                && filter
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .peekable();
    matched.peek()?;
    Some(matched.map(|s| s.value).sum())
}

/// Scrapes `http://addr/metrics` and parses it.
pub fn scrape(addr: SocketAddr) -> Result<Vec<Sample>, PromError> {
    let response = http_get(addr, "/metrics", Duration::from_secs(2))?;
    parse_exposition(&response.body)
}

/// The sample values of a Prometheus query API answer
/// (`{"status":"success","data":{"resultType":"vector","result":[{…,"value":[T,"V"]}]}}`),
/// in order; empty unless the status is success. A string search, not a
/// JSON parser: the API's shape is fixed and the tests need only values.
pub fn query_values(json: &str) -> Vec<f64> {
    if !json.contains("\"status\":\"success\"") {
        return Vec::new();
    }
    let mut values = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("\"value\":[") {
        rest = &rest[at + "\"value\":[".len()..];
        let value = rest
            .split_once(",\"")
            .and_then(|(_, after)| after.split_once('"'))
            .and_then(|(v, _)| v.parse().ok());
        if let Some(v) = value {
            values.push(v);
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_samples_with_and_without_labels() {
        let text = "# HELP palisade_flows Flows.\n# TYPE palisade_flows gauge\n\
                    palisade_flows{worker=\"0\"} 3\n\
                    palisade_drops_total{reason=\"spoofed\",worker=\"0\"} 2\n\
                    palisade_drops_total{reason=\"malformed\",worker=\"0\"} 5\n\
                    palisade_drops_total{reason=\"malformed\",worker=\"1\"} 1\n\
                    palisade_policy_generation 1\n\
                    odd{path=\"a\\\"b,c}\"} 1.5e3 1700000000\n";
        let samples = parse_exposition(text).unwrap();
        assert_eq!(samples.len(), 6);
        assert_eq!(sum(&samples, "palisade_flows", &[]), Some(3.0));
        assert_eq!(
            sum(&samples, "palisade_drops_total", &[("reason", "malformed")]),
            Some(6.0)
        );
        assert_eq!(sum(&samples, "palisade_drops_total", &[]), Some(8.0));
        assert_eq!(sum(&samples, "palisade_policy_generation", &[]), Some(1.0));
        assert_eq!(sum(&samples, "palisade_nothing", &[]), None);
        assert_eq!(samples[5].labels["path"], "a\"b,c}");
        assert!((samples[5].value - 1500.0).abs() < f64::EPSILON);
    }

    #[test]
    fn broken_sample_lines_are_errors() {
        assert!(parse_exposition("metric{a=\"1\" 3\n").is_err());
        assert!(parse_exposition("metric three\n").is_err());
        assert!(parse_exposition("metric\n").is_err());
    }

    #[test]
    fn query_api_values() {
        let json = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"palisade"},"value":[1700000000.123,"1"]},{"metric":{},"value":[1700000000.123,"42"]}]}}"#;
        assert_eq!(query_values(json), vec![1.0, 42.0]);
        assert!(
            query_values(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
                .is_empty()
        );
        assert!(
            query_values(r#"{"status":"error","errorType":"bad_data","error":"x"}"#).is_empty()
        );
    }
}
