//! The dispatcher end to end, without HTTP: signed requests in, AWS's XML
//! out, against an in-memory model.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::{Model, Quotas};

const NOW: i64 = 1_700_000_000;

fn key() -> Credentials {
    Credentials {
        access_key_id: "AKIAPALISADETEST0001".to_owned(),
        secret_access_key: "secret/secret+secret".to_owned(),
    }
}

fn api() -> (Api, Arc<MemoryBackend>) {
    let backend = Arc::new(MemoryBackend::new(Model::new(
        Quotas::default(),
        [2, 0, 0, 0, 0, 1],
    )));
    let api = Api::new(
        ApiSettings::new("123456789012", vec![key()]),
        backend.clone(),
    );
    (api, backend)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs `pairs` signed with `signer` for `service` at `at`.
fn post_as(
    api: &Api,
    pairs: &[(&str, &str)],
    signer: &Credentials,
    service: &str,
    at: i64,
) -> HttpResponse {
    let body = form(pairs);
    let mut headers = vec![
        ("Host".to_owned(), "127.0.0.1:8080".to_owned()),
        ("X-Amz-Date".to_owned(), sigv4::format_amz_date(at)),
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
    ];
    let request = sigv4::SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = sigv4::sign(
        &request,
        signer,
        "us-east-1",
        service,
        &["content-type", "host", "x-amz-date"],
    )
    .unwrap();
    headers.push(("Authorization".to_owned(), auth));
    handle(
        api,
        &HttpRequest {
            method: "POST",
            url: "/",
            headers: &headers,
            body: body.as_bytes(),
        },
        NOW,
    )
}

fn post(api: &Api, pairs: &[(&str, &str)]) -> HttpResponse {
    post_as(api, pairs, &key(), "ec2", NOW)
}

fn code(response: &HttpResponse) -> &str {
    let start = response.body.find("<Code>").map_or(0, |i| i + 6);
    let end = response.body.find("</Code>").unwrap_or(start);
    &response.body[start..end]
}

fn text<'a>(response: &'a HttpResponse, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = match response.body.find(&open) {
        Some(i) => i + open.len(),
        None => panic!("no <{tag}> in {}", response.body),
    };
    let end = response.body[start..]
        .find('<')
        .map_or(start, |i| start + i);
    &response.body[start..end]
}

const V: (&str, &str) = ("Version", "2016-11-15");

fn create_vpc(api: &Api) -> String {
    let r = post(
        api,
        &[("Action", "CreateVpc"), V, ("CidrBlock", "10.0.0.0/16")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    text(&r, "vpcId").to_owned()
}

#[test]
fn requests_without_a_valid_signature_are_refused_with_403() {
    let (api, _) = api();
    let body = "Action=DescribeVpcs&Version=2016-11-15";
    let unsigned = handle(
        &api,
        &HttpRequest {
            method: "POST",
            url: "/",
            headers: &[("Host".to_owned(), "x".to_owned())],
            body: body.as_bytes(),
        },
        NOW,
    );
    assert_eq!(
        (unsigned.status, code(&unsigned)),
        (403, "MissingAuthenticationToken")
    );
    let stranger = Credentials {
        access_key_id: "AKIASTRANGER".to_owned(),
        ..key()
    };
    let r = post_as(
        &api,
        &[("Action", "DescribeVpcs"), V],
        &stranger,
        "ec2",
        NOW,
    );
    assert_eq!((r.status, code(&r)), (403, "AuthFailure"));
    let wrong_secret = Credentials {
        secret_access_key: "nope".to_owned(),
        ..key()
    };
    let r = post_as(
        &api,
        &[("Action", "DescribeVpcs"), V],
        &wrong_secret,
        "ec2",
        NOW,
    );
    assert_eq!((r.status, code(&r)), (403, "SignatureDoesNotMatch"));
    let r = post_as(
        &api,
        &[("Action", "DescribeVpcs"), V],
        &key(),
        "ec2",
        NOW - 3600,
    );
    assert_eq!((r.status, code(&r)), (403, "RequestExpired"));
    assert!(r.body.contains("<Response><Errors><Error>"));
}

#[test]
fn envelope_unknown_actions_versions_and_parameters() {
    let (api, _) = api();
    let r = post(&api, &[("Action", "DescribeVpcs"), V]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains(
        "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>"
    ));
    assert!(r.body.contains("<vpcSet></vpcSet>"));

    let r = post(&api, &[("Action", "LaunchRockets"), V]);
    assert_eq!((r.status, code(&r)), (400, "InvalidAction"));
    let r = post(&api, &[("Action", "DescribeVpcs")]);
    assert_eq!((r.status, code(&r)), (400, "MissingParameter"));
    let r = post(
        &api,
        &[("Action", "DescribeVpcs"), ("Version", "2012-01-01")],
    );
    assert_eq!((r.status, code(&r)), (400, "NoSuchVersion"));
    let r = post(&api, &[("Version", "2016-11-15")]);
    assert_eq!((r.status, code(&r)), (400, "MissingAction"));
    let r = post(
        &api,
        &[("Action", "DescribeVpcs"), V, ("VpcIdd.1", "vpc-1")],
    );
    assert_eq!((r.status, code(&r)), (400, "UnknownParameter"));
    let counts = api.counts.snapshot();
    assert!(counts.contains(&("DescribeVpcs", "Success", 1)));
    assert!(counts.contains(&("unknown", "InvalidAction", 1)));
}

#[test]
fn dry_run_answers_412_and_writes_nothing() {
    let (api, backend) = api();
    let r = post(
        &api,
        &[
            ("Action", "CreateVpc"),
            V,
            ("CidrBlock", "10.0.0.0/16"),
            ("DryRun", "true"),
        ],
    );
    assert_eq!((r.status, code(&r)), (412, "DryRunOperation"));
    assert!(
        r.body
            .contains("Request would have succeeded, but DryRun flag is set.")
    );
    let mut vpcs = 1;
    backend.read(&mut |m| vpcs = m.vpcs.len());
    assert_eq!(vpcs, 0);
    let r = post(&api, &[("Action", "DescribeVpcs"), V, ("DryRun", "true")]);
    assert_eq!((r.status, code(&r)), (412, "DryRunOperation"));
    // A bad parameter is still reported under DryRun.
    let r = post(&api, &[("Action", "CreateVpc"), V, ("DryRun", "true")]);
    assert_eq!(code(&r), "MissingParameter");
    let r = post(
        &api,
        &[
            ("Action", "CreateVpc"),
            V,
            ("CidrBlock", "10.0.0.1/16"),
            ("DryRun", "true"),
        ],
    );
    assert_eq!(code(&r), "InvalidParameterValue");
}

#[test]
fn group_life_cycle_with_rules_filters_and_errors() {
    let (api, _) = api();
    let vpc = create_vpc(&api);
    let r = post(
        &api,
        &[
            ("Action", "CreateSecurityGroup"),
            V,
            ("GroupName", "web"),
            ("GroupDescription", "web <tier>"),
            ("VpcId", &vpc),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let group = text(&r, "groupId").to_owned();
    assert!(
        text(&r, "securityGroupArn").ends_with(&format!(":123456789012:security-group/{group}"))
    );

    let r = post(
        &api,
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            V,
            ("GroupId", &group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "443"),
            ("IpPermissions.1.ToPort", "443"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "10.1.0.0/16"),
            ("IpPermissions.1.IpRanges.1.Description", "office"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(text(&r, "return"), "true");
    assert!(text(&r, "securityGroupRuleId").starts_with("sgr-"));
    assert_eq!(text(&r, "cidrIpv4"), "10.1.0.0/16");
    assert_eq!(text(&r, "isEgress"), "false");

    let again = post(
        &api,
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            V,
            ("GroupId", &group),
            ("IpProtocol", "tcp"),
            ("FromPort", "443"),
            ("ToPort", "443"),
            ("CidrIp", "10.1.0.0/16"),
        ],
    );
    assert_eq!(code(&again), "InvalidPermission.Duplicate");
    assert!(
        again
            .body
            .contains("peer: 10.1.0.0/16, TCP, from port: 443, to port: 443, ALLOW"),
        "{}",
        again.body
    );
    let bad_port = post(
        &api,
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            V,
            ("GroupId", &group),
            ("IpProtocol", "tcp"),
            ("FromPort", "eighty"),
            ("ToPort", "80"),
            ("CidrIp", "10.1.0.0/16"),
        ],
    );
    assert_eq!(code(&bad_port), "InvalidParameterValue");

    let by_filter = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("Filter.1.Name", "ip-permission.from-port"),
            ("Filter.1.Value.1", "443"),
            ("Filter.2.Name", "vpc-id"),
            ("Filter.2.Value.1", &vpc),
        ],
    );
    assert_eq!(by_filter.status, 200, "{}", by_filter.body);
    assert!(
        by_filter
            .body
            .contains(&format!("<groupId>{group}</groupId>"))
    );
    assert!(
        by_filter
            .body
            .contains("<groupDescription>web &lt;tier&gt;</groupDescription>")
    );
    assert!(by_filter.body.contains("<ipRanges><item><cidrIp>10.1.0.0/16</cidrIp><description>office</description></item></ipRanges>"));
    assert_eq!(
        by_filter.body.matches("<groupName>").count(),
        1,
        "the default group has no port 443 rule"
    );

    let none = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("Filter.1.Name", "ip-permission.cidr"),
            ("Filter.1.Value.1", "192.168.*"),
        ],
    );
    assert!(
        none.body
            .contains("<securityGroupInfo></securityGroupInfo>")
    );
    let unknown = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("Filter.1.Name", "colour"),
            ("Filter.1.Value.1", "red"),
        ],
    );
    assert_eq!(code(&unknown), "InvalidParameterValue");

    let r = post(
        &api,
        &[
            ("Action", "DeleteSecurityGroup"),
            V,
            ("GroupName", "default"),
        ],
    );
    assert_eq!(code(&r), "CannotDelete");
    let r = post(
        &api,
        &[("Action", "DeleteSecurityGroup"), V, ("GroupId", &group)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("GroupId.1", &group),
        ],
    );
    assert_eq!(code(&r), "InvalidGroup.NotFound");
    let r = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("GroupId.1", "web"),
        ],
    );
    assert_eq!(code(&r), "InvalidGroupId.Malformed");
}

#[test]
fn pagination_walks_every_group_once() {
    let (api, _) = api();
    let vpc = create_vpc(&api);
    for i in 0..11 {
        let name = format!("g{i}");
        let r = post(
            &api,
            &[
                ("Action", "CreateSecurityGroup"),
                V,
                ("GroupName", &name),
                ("GroupDescription", "d"),
                ("VpcId", &vpc),
            ],
        );
        assert_eq!(r.status, 200);
    }
    let mut seen = 0;
    let mut token: Option<String> = None;
    loop {
        let mut pairs = vec![("Action", "DescribeSecurityGroups"), V, ("MaxResults", "5")];
        if let Some(t) = &token {
            pairs.push(("NextToken", t.as_str()));
        }
        let r = post(&api, &pairs);
        assert_eq!(r.status, 200, "{}", r.body);
        seen += r.body.matches("<groupName>").count();
        if r.body.contains("<nextToken>") {
            token = Some(text(&r, "nextToken").to_owned());
        } else {
            break;
        }
    }
    assert_eq!(seen, 12, "11 groups and the default one");
    let r = post(
        &api,
        &[("Action", "DescribeSecurityGroups"), V, ("MaxResults", "4")],
    );
    assert_eq!(code(&r), "InvalidParameterValue");
    let r = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("MaxResults", "5"),
            ("GroupId.1", "sg-00000000000000001"),
        ],
    );
    assert_eq!(code(&r), "InvalidParameterCombination");
    let r = post(
        &api,
        &[
            ("Action", "DescribeSecurityGroups"),
            V,
            ("NextToken", "garbage"),
        ],
    );
    assert_eq!(code(&r), "InvalidPaginationToken");
}

#[test]
fn sts_get_caller_identity_answers_in_the_sts_shape() {
    let (api, _) = api();
    let r = post_as(
        &api,
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        &key(),
        "sts",
        NOW,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"));
    assert_eq!(text(&r, "Arn"), "arn:aws:iam::123456789012:root");
    assert_eq!(text(&r, "Account"), "123456789012");
    let r = post_as(
        &api,
        &[("Action", "GetSessionToken"), ("Version", "2011-06-15")],
        &key(),
        "sts",
        NOW,
    );
    assert_eq!((r.status, code(&r)), (400, "InvalidAction"));
    assert!(r.body.starts_with("<?xml") && r.body.contains("<ErrorResponse"));
}

#[test]
fn get_requests_carry_parameters_in_the_query() {
    let (api, _) = api();
    let query =
        "Action=DescribeVpcAttribute&Version=2016-11-15&VpcId=vpc-1&Attribute=enableDnsSupport";
    let mut headers = vec![
        ("Host".to_owned(), "localhost".to_owned()),
        ("X-Amz-Date".to_owned(), sigv4::format_amz_date(NOW)),
    ];
    let request = sigv4::SignedRequest {
        method: "GET",
        path: "/",
        query,
        headers: &headers,
        body: b"",
    };
    let auth = sigv4::sign(
        &request,
        &key(),
        "us-east-1",
        "ec2",
        &["host", "x-amz-date"],
    )
    .unwrap();
    headers.push(("Authorization".to_owned(), auth));
    let url = format!("/?{query}");
    let r = handle(
        &api,
        &HttpRequest {
            method: "GET",
            url: &url,
            headers: &headers,
            body: b"",
        },
        NOW,
    );
    assert_eq!(code(&r), "InvalidVpcID.NotFound", "{}", r.body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary Authorize parameters: either accepted with every rule
    /// added, or refused with the model untouched. Never a panic, never a
    /// partial write.
    #[test]
    fn authorize_is_all_or_nothing(
        entries in proptest::collection::vec(
            (
                prop::sample::select(vec!["tcp", "udp", "icmp", "-1", "50", "bogus", ""]),
                prop::sample::select(vec!["0", "22", "80", "-1", "65536", "x", "443"]),
                prop::sample::select(vec!["0", "22", "80", "-1", "65535", "8", "443"]),
                prop::sample::select(vec!["10.0.0.0/8", "10.0.0.1/8", "::/0", "300.0.0.0/8", "0.0.0.0/0", "fe80::/10"]),
            ),
            1..5,
        )
    ) {
        let (api, backend) = api();
        let vpc = create_vpc(&api);
        let r = post(&api, &[("Action", "CreateSecurityGroup"), V, ("GroupName", "g"), ("GroupDescription", "d"), ("VpcId", &vpc)]);
        let group = text(&r, "groupId").to_owned();
        let mut before = Model::default();
        backend.read(&mut |m| before = m.clone());
        let mut pairs: Vec<(String, String)> = vec![
            ("Action".into(), "AuthorizeSecurityGroupIngress".into()),
            ("Version".into(), "2016-11-15".into()),
            ("GroupId".into(), group.clone()),
        ];
        for (i, (protocol, from, to, cidr)) in entries.iter().enumerate() {
            let n = i + 1;
            pairs.push((format!("IpPermissions.{n}.IpProtocol"), (*protocol).into()));
            pairs.push((format!("IpPermissions.{n}.FromPort"), (*from).into()));
            pairs.push((format!("IpPermissions.{n}.ToPort"), (*to).into()));
            let range = if cidr.contains(':') { "Ipv6Ranges" } else { "IpRanges" };
            let field = if cidr.contains(':') { "CidrIpv6" } else { "CidrIp" };
            pairs.push((format!("IpPermissions.{n}.{range}.1.{field}"), (*cidr).into()));
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = post(&api, &borrowed);
        let mut after = Model::default();
        backend.read(&mut |m| after = m.clone());
        if r.status == 200 {
            let added = after.security_groups[&group].ingress.len();
            prop_assert_eq!(added, entries.len());
        } else {
            prop_assert_eq!(r.status, 400, "{}", r.body);
            prop_assert!(r.body.contains("<Code>"));
            prop_assert_eq!(before, after);
        }
    }
}
