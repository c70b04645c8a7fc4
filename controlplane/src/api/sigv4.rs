//! AWS Signature Version 4 verification: the server side of what botocore,
//! the AWS CLI and Terraform's provider sign every request with.
//!
//! The server rebuilds the canonical request from what arrived (method,
//! path, query, the headers the client says it signed, the body's SHA-256),
//! derives the signing key from the secret of the access key named in the
//! credential scope, and compares signatures in constant time. Both the
//! `Authorization` header form and the presigned query form
//! (`X-Amz-Signature=…`) are accepted. Any region is accepted (a client's
//! region is only a name here); the service must be one the endpoint
//! serves (`ec2`, `sts`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

/// The only algorithm SigV4 defines.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `X-Amz-Date` may be from the server's clock, as AWS
/// allows (15 minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// The hex SHA-256 of an empty payload.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key pair the endpoint accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…`: public, names the key in the credential scope.
    pub access_key_id: String,
    /// The shared secret; never logged.
    pub secret_access_key: String,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What arrived, as the signature covers it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The request path as sent (percent-encoded).
    pub path: &'a str,
    /// The raw query string (without `?`), possibly empty.
    pub query: &'a str,
    /// Every header as sent, names in any case.
    pub headers: &'a [(String, String)],
    /// The body bytes.
    pub body: &'a [u8],
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key that signed.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope (`ec2`, `sts`).
    pub service: String,
}

/// The parts of an `Authorization` header or a presigned query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    presigned: bool,
    amz_date: String,
    expires: Option<i64>,
}

fn auth_failure(message: impl Into<String>) -> ApiError {
    ApiError::new(Ec2ErrorCode::AuthFailure, message)
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new(Ec2ErrorCode::IncompleteSignature, message)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies `request` against `keys` at `now` (Unix seconds), for one of
/// `services`. Errors carry AWS's codes: `MissingAuthenticationToken`,
/// `IncompleteSignature`, `AuthFailure` (unknown key, wrong scope),
/// `SignatureDoesNotMatch`, `RequestExpired`.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &[Credentials],
    services: &[&str],
    now: i64,
) -> Result<Verified, ApiError> {
    let auth = parse_authorization(request)?;
    if !services.contains(&auth.service.as_str()) {
        return Err(auth_failure(format!(
            "Credential should be scoped to a valid service ({}), not '{}'.",
            services.join(", "),
            auth.service
        )));
    }
    let key = keys
        .iter()
        .find(|k| k.access_key_id == auth.access_key_id)
        .ok_or_else(|| {
            auth_failure("AWS was not able to validate the provided access credentials")
        })?;
    let signed_at = parse_amz_date(&auth.amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date '{}' must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z'",
            auth.amz_date
        ))
    })?;
    if !auth.amz_date.starts_with(&auth.date) {
        return Err(ApiError::new(
            Ec2ErrorCode::SignatureDoesNotMatch,
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                auth.date,
                &auth.amz_date[..8]
            ),
        ));
    }
    if let Some(expires) = auth.expires {
        if now > signed_at + expires {
            return Err(ApiError::new(
                Ec2ErrorCode::RequestExpired,
                "Request has expired.",
            ));
        }
    }
    if (now - signed_at).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            Ec2ErrorCode::RequestExpired,
            format!(
                "Request has expired: its date {} is more than 15 minutes from the server's time.",
                auth.amz_date
            ),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("'Host' must be a signed header."));
    }
    let payload_hash = hex(&Sha256::digest(request.body));
    let mut candidates = vec![payload_hash];
    if auth.presigned {
        candidates.push("UNSIGNED-PAYLOAD".to_owned());
    }
    let signing_key = signing_key(
        &key.secret_access_key,
        &auth.date,
        &auth.region,
        &auth.service,
    );
    for payload in &candidates {
        let canonical = canonical_request(request, &auth.signed_headers, payload)?;
        let string_to_sign = string_to_sign(&auth, &canonical);
        let expected = hex(&hmac(&signing_key, string_to_sign.as_bytes()));
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            return Ok(Verified {
                access_key_id: auth.access_key_id,
                region: auth.region,
                service: auth.service,
            });
        }
    }
    Err(ApiError::new(
        Ec2ErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    ))
}

fn parse_authorization(request: &SignedRequest<'_>) -> Result<Authorization, ApiError> {
    if let Some(value) = header(request.headers, "authorization") {
        return parse_header(value, request.headers);
    }
    let query = query_pairs(request.query)?;
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(algorithm) = get("X-Amz-Algorithm") else {
        return Err(ApiError::new(
            Ec2ErrorCode::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("Unsupported algorithm {algorithm}")));
    }
    let credential =
        get("X-Amz-Credential").ok_or_else(|| incomplete("Missing X-Amz-Credential"))?;
    let signed =
        get("X-Amz-SignedHeaders").ok_or_else(|| incomplete("Missing X-Amz-SignedHeaders"))?;
    let signature = get("X-Amz-Signature").ok_or_else(|| incomplete("Missing X-Amz-Signature"))?;
    let amz_date = get("X-Amz-Date").ok_or_else(|| incomplete("Missing X-Amz-Date"))?;
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|e| (1..=604_800).contains(e))
                .ok_or_else(|| incomplete(format!("Invalid X-Amz-Expires {v}")))?,
        ),
    };
    let scope = parse_scope(credential)?;
    Ok(Authorization {
        access_key_id: scope.0,
        date: scope.1,
        region: scope.2,
        service: scope.3,
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: signature.to_owned(),
        presigned: true,
        amz_date: amz_date.to_owned(),
        expires,
    })
}

fn parse_header(value: &str, headers: &[(String, String)]) -> Result<Authorization, ApiError> {
    let value = value.trim();
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        return Err(incomplete(format!(
            "Unsupported authorization type: only {ALGORITHM} is accepted"
        )));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ));
    };
    let amz_date = header(headers, "x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of the 'X-Amz-Date' header.")
    })?;
    let scope = parse_scope(credential)?;
    Ok(Authorization {
        access_key_id: scope.0,
        date: scope.1,
        region: scope.2,
        service: scope.3,
        signed_headers: signed
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        signature: signature.to_owned(),
        presigned: false,
        amz_date: amz_date.trim().to_owned(),
        expires: None,
    })
}

/// `KEY/DATE/REGION/SERVICE/aws4_request`.
fn parse_scope(credential: &str) -> Result<(String, String, String, String), ApiError> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty() && date.len() == 8 && !region.is_empty() =>
        {
            Ok((
                (*key).to_owned(),
                (*date).to_owned(),
                (*region).to_owned(),
                (*service).to_owned(),
            ))
        }
        _ => Err(incomplete(format!(
            "Credential '{credential}' is not of the form KEY/YYYYMMDD/REGION/SERVICE/aws4_request"
        ))),
    }
}

fn string_to_sign(auth: &Authorization, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        auth.amz_date,
        auth.date,
        auth.region,
        auth.service,
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The canonical request, exactly as SigV4 specifies it for services other
/// than S3 (normalized, double-encoded path).
fn canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> Result<String, ApiError> {
    let mut out = String::new();
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_path(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query)?);
    out.push('\n');
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    for name in &names {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| collapse_spaces(v))
            .collect();
        if values.is_empty() {
            return Err(ApiError::new(
                Ec2ErrorCode::SignatureDoesNotMatch,
                format!("The signed header '{name}' is not in the request"),
            ));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes `.` and `..` segments and empty segments, then encodes the path
/// once more (a `%` becomes `%25`), as botocore does for non-S3 services.
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(&normalized, false)
}

/// Decoded query pairs (no `+` → space: SigV4 clients encode spaces as
/// `%20`, and the signature is over what they meant).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn canonical_query(query: &str) -> Result<String, ApiError> {
    let mut pairs: Vec<(String, String)> = query_pairs(query)?
        .into_iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, true), uri_encode(&v, true)))
        .collect();
    pairs.sort();
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let value = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        Ec2ErrorCode::MalformedQueryString,
                        "Invalid percent-encoding",
                    )
                })?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::new(
            Ec2ErrorCode::MalformedQueryString,
            "The query string is not UTF-8",
        )
    })
}

/// RFC 3986 encoding: unreserved characters stay, everything else is
/// `%XX` (upper-case hex); `/` stays too unless `encode_slash`.
fn uri_encode(text: &str, encode_slash: bool) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !encode_slash)
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: core::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Unix seconds → `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Signs a request the way a SigV4 client does: the `Authorization`
/// header value for `request` (which must already carry `X-Amz-Date` and
/// `Host`). The server never needs this; tests and benchmarks use it to
/// build requests, and it is the same code path as verification, so the
/// vectors below check both.
pub fn sign(
    request: &SignedRequest<'_>,
    key: &Credentials,
    region: &str,
    service: &str,
    signed_headers: &[&str],
) -> Result<String, ApiError> {
    let amz_date = header(request.headers, "x-amz-date")
        .ok_or_else(|| incomplete("no X-Amz-Date"))?
        .to_owned();
    let auth = Authorization {
        access_key_id: key.access_key_id.clone(),
        date: amz_date.get(..8).unwrap_or_default().to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature: String::new(),
        presigned: false,
        amz_date,
        expires: None,
    };
    let canonical = canonical_request(
        request,
        &auth.signed_headers,
        &hex(&Sha256::digest(request.body)),
    )?;
    let signature = hex(&hmac(
        &signing_key(&key.secret_access_key, &auth.date, region, service),
        string_to_sign(&auth, &canonical).as_bytes(),
    ));
    let mut names = auth.signed_headers.clone();
    names.sort();
    Ok(format!(
        "{ALGORITHM} Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        key.access_key_id,
        auth.date,
        names.join(";")
    ))
}

#[cfg(test)]
mod tests;
