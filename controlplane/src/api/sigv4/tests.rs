//! Vectors from AWS's published Signature Version 4 test suite (credentials
//! `AKIDEXAMPLE`, 2015-08-30 12:36:00 UTC, region us-east-1, service
//! `service`), then the verifier's refusals.

use proptest::prelude::*;

use super::*;

const AMZ_DATE: &str = "20150830T123600Z";

fn suite_key() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
    }
}

fn headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![
        ("Host".to_owned(), "example.amazonaws.com".to_owned()),
        ("X-Amz-Date".to_owned(), AMZ_DATE.to_owned()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    h
}

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    extra: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signed: &'static [&'static str],
    signature: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        signed: &["host", "x-amz-date"],
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        extra: &[],
        body: b"",
        signed: &["host", "x-amz-date"],
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        extra: &[],
        body: b"",
        signed: &["host", "x-amz-date"],
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        extra: &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
        body: b"",
        signed: &["host", "my-header1", "my-header2", "x-amz-date"],
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: "",
        extra: &[],
        body: b"",
        signed: &["host", "x-amz-date"],
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-vanilla-query",
        method: "POST",
        path: "/",
        query: "Param1=value1",
        extra: &[],
        body: b"",
        signed: &["host", "x-amz-date"],
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "post-header-value-case",
        method: "POST",
        path: "/",
        query: "",
        extra: &[("My-Header1", "VALUE1")],
        body: b"",
        signed: &["host", "my-header1", "x-amz-date"],
        signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: "",
        extra: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"Param1=value1",
        signed: &["content-type", "host", "x-amz-date"],
        signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
];

fn now() -> i64 {
    parse_amz_date(AMZ_DATE).unwrap()
}

#[test]
fn the_get_vanilla_canonical_request_is_the_suites() {
    let h = headers(&[]);
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &h,
        body: b"",
    };
    let canonical = canonical_request(
        &request,
        &["host".to_owned(), "x-amz-date".to_owned()],
        EMPTY_PAYLOAD_SHA256,
    )
    .unwrap();
    assert_eq!(
        canonical,
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&Sha256::digest(canonical.as_bytes())),
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
}

#[test]
fn suite_vectors_sign_and_verify() {
    for v in VECTORS {
        let h = headers(v.extra);
        let request = SignedRequest {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: &h,
            body: v.body,
        };
        let authorization = sign(&request, &suite_key(), "us-east-1", "service", v.signed).unwrap();
        assert!(
            authorization.ends_with(&format!("Signature={}", v.signature)),
            "{}: {authorization}",
            v.name
        );
        let mut with_auth = h.clone();
        with_auth.push(("Authorization".to_owned(), authorization));
        let request = SignedRequest {
            headers: &with_auth,
            ..request
        };
        let verified = verify(&request, &[suite_key()], &["service"], now())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(verified.access_key_id, "AKIDEXAMPLE");
        assert_eq!(verified.region, "us-east-1");
    }
}

/// A request signed with the suite's key, ready to be tampered with.
fn signed_post(body: &[u8], key: &Credentials, date: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("Host".to_owned(), "127.0.0.1:8080".to_owned()),
        ("X-Amz-Date".to_owned(), date.to_owned()),
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
    ];
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body,
    };
    let auth = sign(
        &request,
        key,
        "eu-west-3",
        "ec2",
        &["content-type", "host", "x-amz-date"],
    )
    .unwrap();
    h.push(("Authorization".to_owned(), auth));
    h
}

fn post<'a>(h: &'a [(String, String)], body: &'a [u8]) -> SignedRequest<'a> {
    SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: h,
        body,
    }
}

#[test]
fn refusals_carry_aws_codes() {
    let body = b"Action=DescribeVpcs&Version=2016-11-15";
    let h = signed_post(body, &suite_key(), AMZ_DATE);
    let keys = [suite_key()];
    assert!(verify(&post(&h, body), &keys, &["ec2"], now()).is_ok());

    let other = Credentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "not-the-secret".to_owned(),
    };
    let code = |r: Result<Verified, ApiError>| r.unwrap_err().code;
    assert_eq!(
        code(verify(&post(&h, body), &[other], &["ec2"], now())),
        "SignatureDoesNotMatch"
    );
    let stranger = Credentials {
        access_key_id: "AKIAOTHER".to_owned(),
        ..suite_key()
    };
    assert_eq!(
        code(verify(&post(&h, body), &[stranger], &["ec2"], now())),
        "AuthFailure"
    );
    assert_eq!(
        code(verify(
            &post(&h, b"Action=DeleteVpc"),
            &keys,
            &["ec2"],
            now()
        )),
        "SignatureDoesNotMatch"
    );
    assert_eq!(
        code(verify(&post(&h, body), &keys, &["sts"], now())),
        "AuthFailure"
    );
    assert_eq!(
        code(verify(&post(&h, body), &keys, &["ec2"], now() + 16 * 60)),
        "RequestExpired"
    );
    assert_eq!(
        code(verify(&post(&h, body), &keys, &["ec2"], now() - 16 * 60)),
        "RequestExpired"
    );
    assert!(verify(&post(&h, body), &keys, &["ec2"], now() + 14 * 60).is_ok());

    let unsigned: Vec<(String, String)> = h
        .iter()
        .filter(|(n, _)| n != "Authorization")
        .cloned()
        .collect();
    assert_eq!(
        code(verify(&post(&unsigned, body), &keys, &["ec2"], now())),
        "MissingAuthenticationToken"
    );

    let mut garbled = unsigned.clone();
    garbled.push((
        "Authorization".to_owned(),
        "AWS4-HMAC-SHA256 Credential=x".to_owned(),
    ));
    assert_eq!(
        code(verify(&post(&garbled, body), &keys, &["ec2"], now())),
        "IncompleteSignature"
    );

    // A signed header that was changed in transit.
    let mut changed = h.clone();
    changed[0].1 = "evil.example".to_owned();
    assert_eq!(
        code(verify(&post(&changed, body), &keys, &["ec2"], now())),
        "SignatureDoesNotMatch"
    );
}

#[test]
fn presigned_query_requests_verify() {
    // Build the presigned form by hand: the canonical query is everything
    // but X-Amz-Signature, the only signed header is host.
    let key = suite_key();
    let base = format!(
        "Action=DescribeVpcs&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2%2Faws4_request\
         &X-Amz-Date={AMZ_DATE}&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
    );
    let h = vec![("Host".to_owned(), "localhost".to_owned())];
    let unsigned = SignedRequest {
        method: "GET",
        path: "/",
        query: &base,
        headers: &h,
        body: b"",
    };
    let auth = Authorization {
        access_key_id: key.access_key_id.clone(),
        date: "20150830".to_owned(),
        region: "us-east-1".to_owned(),
        service: "ec2".to_owned(),
        signed_headers: vec!["host".to_owned()],
        signature: String::new(),
        presigned: true,
        amz_date: AMZ_DATE.to_owned(),
        expires: Some(300),
    };
    let canonical =
        canonical_request(&unsigned, &auth.signed_headers, EMPTY_PAYLOAD_SHA256).unwrap();
    let signature = hex(&hmac(
        &signing_key(&key.secret_access_key, "20150830", "us-east-1", "ec2"),
        string_to_sign(&auth, &canonical).as_bytes(),
    ));
    let query = format!("{base}&X-Amz-Signature={signature}");
    let request = SignedRequest {
        query: &query,
        ..unsigned
    };
    assert!(verify(&request, std::slice::from_ref(&key), &["ec2"], now() + 200).is_ok());
    assert_eq!(
        verify(&request, &[key], &["ec2"], now() + 400)
            .unwrap_err()
            .code,
        "RequestExpired"
    );
}

#[test]
fn amz_dates_round_trip_and_reject_garbage() {
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date(AMZ_DATE), Some(1_440_938_160));
    assert_eq!(format_amz_date(1_440_938_160), AMZ_DATE);
    for bad in [
        "2015-08-30T12:36:00Z",
        "20151330T123600Z",
        "20150830T123600",
        "2015083xT123600Z",
        "",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_body_verifies_and_any_flipped_byte_does_not(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<prop::sample::Index>(),
        seconds in 0i64..4_000_000_000,
    ) {
        let date = format_amz_date(seconds);
        prop_assert_eq!(parse_amz_date(&date), Some(seconds));
        let h = signed_post(&body, &suite_key(), &date);
        prop_assert!(verify(&post(&h, &body), &[suite_key()], &["ec2"], seconds).is_ok());
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1;
            prop_assert_eq!(
                verify(&post(&h, &tampered), &[suite_key()], &["ec2"], seconds).unwrap_err().code,
                "SignatureDoesNotMatch"
            );
        }
    }
}
