"""The protocol around the actions: SigV4, STS, errors, DryRun, limits,
metrics, restarts, credentials."""

import datetime
import os
import stat
import tempfile
import urllib.parse

import botocore.exceptions
import pytest

from conftest import ACCESS_KEY, ACCOUNT, SECRET_KEY, Palisade, client, error_code, send


def test_sts_get_caller_identity_with_boto3_and_the_cli(sts, aws):
    identity = sts.get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert identity["UserId"] == ACCOUNT
    assert aws("sts", "get-caller-identity")["Account"] == ACCOUNT


def test_an_unknown_access_key_is_an_auth_failure(palisade):
    stranger = client(palisade, "ec2", key="AKIANOTAPALISADEKEY1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stranger.describe_vpcs()
    assert error_code(e) == "AuthFailure"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_wrong_secret_does_not_match_the_signature(palisade, aws):
    wrong = client(palisade, "ec2", secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.describe_security_groups()
    assert error_code(e) == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_stale_signature_date_is_refused(signed):
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(hours=1)
    r = signed({"Action": "DescribeVpcs"}, at=an_hour_ago)
    assert (r.status, r.code) == (403, "RequestExpired")
    in_a_minute = an_hour_ago + datetime.timedelta(minutes=61)
    assert signed({"Action": "DescribeVpcs"}, at=in_a_minute).status == 200


def test_unsigned_and_tampered_requests_are_refused(palisade, signed):
    body = b"Action=DescribeVpcs&Version=2016-11-15"
    r = send(palisade.api_url + "/", body=body,
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.code) == (403, "MissingAuthenticationToken")
    assert "<Response><Errors><Error>" in r.body and "<RequestID>" in r.body


def test_presigned_get_urls_work(ec2):
    # botocore signs an EC2 presigned URL for the model's method (POST)
    # unless told otherwise.
    url = ec2.generate_presigned_url("describe_vpcs", Params={}, ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Signature=" in url
    r = send(url, method="GET")
    assert r.status == 200, r.body
    assert "<DescribeVpcsResponse" in r.body
    query = urllib.parse.urlsplit(url).query.replace("Action=DescribeVpcs", "Action=DescribeSubnets")
    tampered = send(url.split("?")[0] + "?" + query, method="GET")
    assert (tampered.status, tampered.code) == (403, "SignatureDoesNotMatch")


def test_unknown_actions_versions_and_parameters(signed):
    r = signed({"Action": "RunInstances"})
    assert (r.status, r.code) == (400, "InvalidAction")
    r = signed({"Action": "DescribeVpcs", "Version": "2014-01-01"})
    assert (r.status, r.code) == (400, "NoSuchVersion")
    r = signed({"Action": "DescribeVpcs", "Version": None})
    assert (r.status, r.code) == (400, "MissingParameter")
    r = signed({"Version": "2016-11-15"})
    assert (r.status, r.code) == (400, "MissingAction")
    r = signed({"Action": "DescribeVpcs", "VpcIds.1": "vpc-1"})
    assert (r.status, r.code) == (400, "UnknownParameter")


def test_missing_and_malformed_parameters(signed):
    assert signed({"Action": "CreateVpc"}).code == "MissingParameter"
    assert signed({"Action": "CreateVpc", "CidrBlock": "10.0.0.0/33"}).code == "InvalidParameterValue"
    assert signed({"Action": "CreateVpc", "CidrBlock": "banana"}).code == "InvalidParameterValue"
    assert signed({"Action": "DescribeVpcs", "MaxResults": "many"}).code == "InvalidParameterValue"
    assert signed({"Action": "DescribeVpcs", "DryRun": "perhaps"}).code == "InvalidParameterValue"
    assert signed({"Action": "DescribeVpcs", "VpcId.first": "vpc-1"}).code == "InvalidParameterValue"
    r = signed({"Action": "DescribeVpcs", "Filter.1.Value.1": "x"})
    assert (r.status, r.code) == (400, "InvalidParameterValue")


def test_an_oversized_body_is_refused_without_a_hang(palisade):
    body = b"Action=DescribeVpcs&Version=2016-11-15&Pad=" + b"x" * (2 << 20)
    r = send(palisade.api_url + "/", body=body,
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.code) == (413, "RequestEntityTooLarge")


def test_dry_run_reports_412_and_changes_nothing(ec2):
    before = len(ec2.describe_vpcs()["Vpcs"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.77.0.0/16", DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert len(ec2.describe_vpcs()["Vpcs"]) == before
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_security_groups(DryRun=True)
    assert error_code(e) == "DryRunOperation"
    # Invalid parameters are still reported under DryRun.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.77.0.1/16", DryRun=True)
    assert error_code(e) == "InvalidParameterValue"


def test_metrics_count_requests_and_publications(palisade, ec2):
    generation = palisade.metric("palisade_policy_generation")
    publishes = palisade.metric("palisade_policy_publish_duration_seconds_count")
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="metered", Description="m", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    assert palisade.metric("palisade_policy_generation") == generation + 3
    assert palisade.metric("palisade_policy_publish_duration_seconds_count") == publishes + 3
    assert palisade.metric("palisade_api_requests_total",
                           '{action="AuthorizeSecurityGroupIngress",code="Success"}') >= 1
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.delete_vpc(VpcId="vpc-00000000000000000")
    assert palisade.metric("palisade_api_requests_total",
                           '{action="DeleteVpc",code="InvalidVpcID.NotFound"}') >= 1
    assert palisade.metric("palisade_policy_generation") == generation + 3


def test_acknowledged_changes_survive_kill_9_and_restart():
    with tempfile.TemporaryDirectory(prefix="palisade-api-") as directory:
        p = Palisade(directory).start()
        try:
            ec2 = client(p, "ec2")
            vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
            group = ec2.create_security_group(GroupName="kept", Description="k", VpcId=vpc)["GroupId"]
            p.kill9()
            p.start()
            ec2 = client(p, "ec2")
            assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["GroupName"] == "kept"
            assert "loaded" in p.output() and "seeded" not in p.output()
        finally:
            p.stop()


def test_without_configured_keys_a_pair_is_generated_printed_once_and_kept():
    with tempfile.TemporaryDirectory(prefix="palisade-api-") as directory:
        p = Palisade(directory, credentials=None).start()
        try:
            out = p.output()
            assert "generated API credentials" in out
            key = out.split("AWS_ACCESS_KEY_ID=")[1].split()[0]
            secret = out.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
            assert key.startswith("AKIA") and len(key) == 20 and len(secret) == 40
            mode = os.stat(p.state_dir / "credentials").st_mode
            assert stat.S_IMODE(mode) == 0o600
            assert client(p, "sts", key=key, secret=secret).get_caller_identity()["Account"] == ACCOUNT
            p.stop()
            p.start()
            assert "generated" not in p.output() and key in p.output()
            assert secret not in p.output()
            assert client(p, "ec2", key=key, secret=secret).describe_vpcs()["Vpcs"] is not None
            with pytest.raises(botocore.exceptions.ClientError) as e:
                client(p, "ec2").describe_vpcs()
            assert error_code(e) == "AuthFailure"
        finally:
            p.stop()
