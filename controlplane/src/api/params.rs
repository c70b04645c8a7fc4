//! The request's parameters, flattened the way the EC2 Query protocol
//! flattens them (`GroupId.1`, `IpPermissions.1.IpRanges.2.CidrIp`,
//! `Filter.1.Value.1`), with typed getters that fail with AWS's error codes
//! so a handler never has to think about malformed input.

use std::collections::BTreeMap;

use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

/// Decoded query / form parameters, keyed by their full dotted name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

/// One `Filter.N`: a name and the values any of which may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `Filter.N.Name`, e.g. `vpc-id` or `tag:Name`.
    pub name: String,
    /// `Filter.N.Value.M`, in index order.
    pub values: Vec<String>,
}

impl Filter {
    /// Whether `candidate` matches one of the values, with AWS's `*` (any
    /// run) and `?` (any one character) wildcards.
    pub fn matches(&self, candidate: &str) -> bool {
        self.values.iter().any(|v| wildcard_match(v, candidate))
    }

    /// Whether any of `candidates` matches.
    pub fn matches_any<'a>(&self, candidates: impl IntoIterator<Item = &'a str>) -> bool {
        candidates.into_iter().any(|c| self.matches(c))
    }
}

/// AWS filter values: `*` matches any run of characters, `?` exactly one.
/// Iterative with backtracking to the last star: linear-ish, no recursion,
/// so a hostile pattern cannot blow the stack.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        // The common case (ids, names, CIDRs): no allocation.
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Percent-decodes `text` as `application/x-www-form-urlencoded` (`+` is a
/// space). Invalid escapes and invalid UTF-8 are refused rather than
/// guessed at.
pub fn form_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| malformed_query(text))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| malformed_query(text))
}

fn malformed_query(text: &str) -> ApiError {
    let shown: String = text.chars().take(64).collect();
    ApiError::new(
        Ec2ErrorCode::MalformedQueryString,
        format!("The query string is malformed near '{shown}'"),
    )
}

fn invalid(message: String) -> ApiError {
    ApiError::new(Ec2ErrorCode::InvalidParameterValue, message)
}

/// Parses a list index (`1`, `2`, …); AWS lists are 1-based.
fn list_index(full_name: &str, text: &str) -> Result<u32, ApiError> {
    match text.parse::<u32>() {
        Ok(n) if n >= 1 && !text.starts_with('+') => Ok(n),
        _ => Err(invalid(format!(
            "Invalid list index '{text}' in parameter {full_name}"
        ))),
    }
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` string (a POST body
    /// or a GET query string). A name given twice keeps its last value.
    pub fn parse(form: &str) -> Result<Self, ApiError> {
        let mut params = Self::default();
        params.extend_from_form(form)?;
        Ok(params)
    }

    /// Adds the pairs of another form string (GET query + POST body).
    pub fn extend_from_form(&mut self, form: &str) -> Result<(), ApiError> {
        for pair in form.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = form_decode(name)?;
            if name.is_empty() {
                continue;
            }
            self.map.insert(name, form_decode(value)?);
        }
        Ok(())
    }

    /// Parameters from already-decoded pairs (tests, sub-structures).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every (name, value) pair, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no parameter is present.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Whether `name` or anything under `name.` is present.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.map.keys().any(|k| is_under(k, name))
    }

    /// `name`, which must be present: `MissingParameter` otherwise.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| missing(name))
    }

    /// `name` as a boolean (`true` / `false`, any case).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(format!(
                    "Value ({v}) for parameter {name} is invalid. Expected: 'true' or 'false'."
                ))),
            })
            .transpose()
    }

    /// `name` as a 32-bit integer.
    pub fn int(&self, name: &str) -> Result<Option<i32>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i32>().map_err(|_| {
                    invalid(format!(
                        "Value ({v}) for parameter {name} is invalid. Expected an integer."
                    ))
                })
            })
            .transpose()
    }

    /// The scalar list `prefix.1`, `prefix.2`, … in index order (gaps are
    /// allowed, as in AWS).
    pub fn list(&self, prefix: &str) -> Result<Vec<&str>, ApiError> {
        let mut items: Vec<(u32, &str)> = Vec::new();
        for (key, value) in &self.map {
            let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            if rest.contains('.') {
                return Err(invalid(format!("Unexpected parameter {key}")));
            }
            items.push((list_index(key, rest)?, value.as_str()));
        }
        items.sort_by_key(|&(n, _)| n);
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }

    /// The structure list `prefix.N.Member…`: one [`Params`] per index, in
    /// index order, holding the members with `prefix.N.` removed.
    pub fn members(&self, prefix: &str) -> Result<Vec<Params>, ApiError> {
        let mut items: BTreeMap<u32, Params> = BTreeMap::new();
        for (key, value) in &self.map {
            let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some((index, member)) = rest.split_once('.') else {
                return Err(invalid(format!(
                    "Parameter {key} needs a member name after its index"
                )));
            };
            items
                .entry(list_index(key, index)?)
                .or_default()
                .map
                .insert(member.to_owned(), value.clone());
        }
        Ok(items.into_values().collect())
    }

    /// The single structure `prefix.Member…` (no index), if any member is
    /// present.
    pub fn structure(&self, prefix: &str) -> Option<Params> {
        let inner: BTreeMap<String, String> = self
            .map
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('.'))
                    .map(|r| (r.to_owned(), v.clone()))
            })
            .collect();
        (!inner.is_empty()).then_some(Params { map: inner })
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub fn filters(&self) -> Result<Vec<Filter>, ApiError> {
        let mut filters = Vec::new();
        for member in self.members("Filter")? {
            let name = member.required("Name").map_err(|_| {
                ApiError::new(
                    Ec2ErrorCode::InvalidParameterValue,
                    "The filter 'null' is invalid: every Filter needs a Name",
                )
            })?;
            let values = member
                .list("Value")?
                .into_iter()
                .map(str::to_owned)
                .collect();
            filters.push(Filter {
                name: name.to_owned(),
                values,
            });
        }
        Ok(filters)
    }

    /// Refuses any top-level parameter whose root (the part before the
    /// first `.`) is not in `known` or the protocol's own names, with
    /// AWS's `UnknownParameter`. This turns a misspelt parameter into an
    /// error instead of a silently ignored option.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ApiError> {
        for key in self.map.keys() {
            let root = key.split('.').next().unwrap_or(key);
            if PROTOCOL_PARAMETERS.contains(&root) || known.contains(&root) {
                continue;
            }
            return Err(ApiError::new(
                Ec2ErrorCode::UnknownParameter,
                format!("The parameter {root} is not recognized"),
            ));
        }
        Ok(())
    }
}

/// Names every action accepts: the protocol's own, and the presigned-URL
/// form of SigV4.
const PROTOCOL_PARAMETERS: &[&str] = &[
    "Action",
    "Version",
    "DryRun",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

fn is_under(key: &str, name: &str) -> bool {
    key.strip_prefix(name).is_some_and(|r| r.starts_with('.'))
}

/// AWS's `MissingParameter` for `name`.
pub fn missing(name: &str) -> ApiError {
    ApiError::new(
        Ec2ErrorCode::MissingParameter,
        format!("The request must contain the parameter {name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn form_decoding_handles_plus_percent_and_refuses_bad_escapes() {
        assert_eq!(form_decode("a+b%2Fc%3D").unwrap(), "a b/c=");
        assert_eq!(form_decode("%E1%88%B4").unwrap(), "\u{1234}");
        assert_eq!(form_decode("%zz").unwrap_err().code, "MalformedQueryString");
        assert_eq!(form_decode("%4").unwrap_err().code, "MalformedQueryString");
        assert_eq!(form_decode("%FF").unwrap_err().code, "MalformedQueryString");
    }

    #[test]
    fn lists_come_back_in_index_order_with_gaps() {
        let p = Params::parse("GroupId.10=c&GroupId.2=b&GroupId.1=a&GroupIdX=z").unwrap();
        assert_eq!(p.list("GroupId").unwrap(), ["a", "b", "c"]);
        let bad = Params::parse("GroupId.x=a").unwrap();
        assert_eq!(
            bad.list("GroupId").unwrap_err().code,
            "InvalidParameterValue"
        );
        let zero = Params::parse("GroupId.0=a").unwrap();
        assert!(zero.list("GroupId").is_err());
    }

    #[test]
    fn nested_members_split_per_index() {
        let p = Params::parse(
            "IpPermissions.2.IpProtocol=udp&IpPermissions.1.IpProtocol=tcp\
             &IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8\
             &IpPermissions.1.IpRanges.2.CidrIp=192.168.0.0%2F16",
        )
        .unwrap();
        let perms = p.members("IpPermissions").unwrap();
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[0].get("IpProtocol"), Some("tcp"));
        assert_eq!(perms[1].get("IpProtocol"), Some("udp"));
        let ranges = perms[0].members("IpRanges").unwrap();
        assert_eq!(ranges[0].get("CidrIp"), Some("10.0.0.0/8"));
        assert_eq!(ranges[1].get("CidrIp"), Some("192.168.0.0/16"));
        assert!(
            Params::parse("IpPermissions.1=x")
                .unwrap()
                .members("IpPermissions")
                .is_err()
        );
    }

    #[test]
    fn filters_parse_and_need_a_name() {
        let p = Params::parse(
            "Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2\
             &Filter.2.Name=tag%3AName&Filter.2.Value.1=web*",
        )
        .unwrap();
        let f = p.filters().unwrap();
        assert_eq!(f[0].name, "vpc-id");
        assert_eq!(f[0].values, ["vpc-1", "vpc-2"]);
        assert_eq!(f[1].name, "tag:Name");
        assert!(f[1].matches("web-server"));
        assert!(!f[1].matches("db"));
        let nameless = Params::parse("Filter.1.Value.1=x").unwrap();
        assert_eq!(
            nameless.filters().unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn typed_getters_refuse_with_aws_codes() {
        let p = Params::parse("FromPort=80&ToPort=abc&DryRun=maybe&Flag=TRUE").unwrap();
        assert_eq!(p.int("FromPort").unwrap(), Some(80));
        assert_eq!(p.int("ToPort").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(p.int("Absent").unwrap(), None);
        assert_eq!(p.bool("Flag").unwrap(), Some(true));
        assert_eq!(p.bool("DryRun").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(p.required("GroupId").unwrap_err().code, "MissingParameter");
    }

    #[test]
    fn unknown_top_level_parameters_are_refused() {
        let p = Params::parse("Action=X&Version=1&GroupId.1=a&GropuName=b").unwrap();
        let e = p.check_known(&["GroupId", "GroupName"]).unwrap_err();
        assert_eq!(e.code, "UnknownParameter");
        assert!(e.message.contains("GropuName"));
        assert!(p.check_known(&["GroupId", "GropuName"]).is_ok());
    }

    /// The obviously-correct reference: recursive wildcard matching.
    fn reference_match(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                reference_match(&p[1..], t) || (!t.is_empty() && reference_match(p, &t[1..]))
            }
            (Some('?'), Some(_)) => reference_match(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference_match(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn wildcards_agree_with_the_recursive_reference(
            pattern in "[ab*?]{0,8}",
            text in "[ab]{0,10}",
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(wildcard_match(&pattern, &text), reference_match(&p, &t));
        }

        #[test]
        fn form_encoding_round_trips(value in "\\PC{0,20}") {
            let encoded: String = value.bytes().fold(String::new(), |mut s, b| {
                use core::fmt::Write as _;
                let _ = write!(s, "%{b:02X}");
                s
            });
            prop_assert_eq!(form_decode(&encoded).unwrap(), value);
        }
    }
}
