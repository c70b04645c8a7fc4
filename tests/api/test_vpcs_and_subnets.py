"""CreateVpc, DeleteVpc, DescribeVpcs, Describe/ModifyVpcAttribute, CreateSubnet,
DeleteSubnet, DescribeSubnets: success, errors and filters."""

import tempfile

import botocore.exceptions
import pytest

from conftest import ACCOUNT, AwsCliError, Palisade, client, error_code


def ids(items, key):
    return {item[key] for item in items}


@pytest.fixture(scope="module")
def vpc(ec2):
    created = ec2.create_vpc(
        CidrBlock="10.10.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "alpha"},
                                                             {"Key": "team", "Value": "net"}]}],
    )["Vpc"]
    return created


def test_create_vpc_answers_aws_shape(vpc, ec2):
    assert vpc["VpcId"].startswith("vpc-") and len(vpc["VpcId"]) == 21
    assert vpc["CidrBlock"] == "10.10.0.0/16"
    assert vpc["State"] == "available"
    assert vpc["OwnerId"] == ACCOUNT
    assert vpc["IsDefault"] is False
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlock"] == "10.10.0.0/16"
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]} == {"Name": "alpha", "team": "net"}
    # Its default group exists, with AWS's default rules.
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    assert groups[0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == groups[0]["GroupId"]
    assert groups[0]["IpPermissionsEgress"][0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"


def test_create_vpc_with_ipv6_and_the_cli(aws):
    out = aws("ec2", "create-vpc", "--cidr-block", "10.11.0.0/16", "--ipv6-cidr-block", "fd11::/56")["Vpc"]
    assert out["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"] == "fd11::/56"
    found = aws("ec2", "describe-vpcs", "--vpc-ids", out["VpcId"])["Vpcs"]
    assert found[0]["VpcId"] == out["VpcId"]
    aws("ec2", "delete-vpc", "--vpc-id", out["VpcId"])


@pytest.mark.parametrize("cidr,code", [
    ("10.0.0.0/8", "InvalidVpc.Range"),
    ("10.0.0.0/29", "InvalidVpc.Range"),
    ("10.0.0.1/16", "InvalidParameterValue"),
    ("10.0.0.0/33", "InvalidParameterValue"),
    ("not-a-cidr", "InvalidParameterValue"),
])
def test_create_vpc_refuses_bad_blocks(ec2, cidr, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock=cidr)
    assert error_code(e) == code


def test_create_vpc_refuses_bad_tags_and_creates_nothing(ec2):
    before = len(ec2.describe_vpcs()["Vpcs"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.12.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "aws:reserved", "Value": "x"}]}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.12.0.0/16", TagSpecifications=[
            {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "x"}]}])
    assert error_code(e) == "InvalidParameterValue"
    assert len(ec2.describe_vpcs()["Vpcs"]) == before


def test_describe_vpcs_filters(ec2, vpc):
    other = ec2.create_vpc(CidrBlock="10.13.0.0/16")["Vpc"]["VpcId"]
    mine = vpc["VpcId"]

    def found(*filters):
        return ids(ec2.describe_vpcs(Filters=[{"Name": n, "Values": v} for n, v in filters])["Vpcs"], "VpcId")

    assert found(("vpc-id", [mine])) == {mine}
    assert found(("cidr", ["10.10.0.0/16"])) == {mine}
    assert found(("cidr-block-association.cidr-block", ["10.13.0.0/16"])) == {other}
    assert found(("tag:Name", ["alpha"])) == {mine}
    assert found(("tag:Name", ["al*"])) == {mine}
    assert found(("tag-key", ["team"])) == {mine}
    assert found(("tag-value", ["net"])) == {mine}
    assert {mine, other} <= found(("state", ["available"]))
    assert {mine, other} <= found(("is-default", ["false"]))
    assert found(("is-default", ["true"])) == set()
    assert {mine, other} <= found(("owner-id", [ACCOUNT]))
    assert found(("vpc-id", [mine, other]), ("cidr", ["10.13.*"])) == {other}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        found(("colour", ["blue"]))
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(VpcIds=["vpc-00000000000000000"])
    assert error_code(e) == "InvalidVpcID.NotFound"
    ec2.delete_vpc(VpcId=other)


def test_describe_vpcs_pages(ec2, signed):
    made = [ec2.create_vpc(CidrBlock=f"10.{20 + i}.0.0/16")["Vpc"]["VpcId"] for i in range(6)]
    seen = []
    for page in ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5}):
        assert len(page["Vpcs"]) <= 5
        seen.extend(v["VpcId"] for v in page["Vpcs"])
    assert len(seen) == len(set(seen)) and set(made) <= set(seen)
    # botocore refuses MaxResults below 5 itself: send it by hand.
    assert signed({"Action": "DescribeVpcs", "MaxResults": "3"}).code == "InvalidParameterValue"
    assert signed({"Action": "DescribeVpcs", "NextToken": "forged"}).code == "InvalidPaginationToken"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(VpcIds=made[:1], MaxResults=5)
    assert error_code(e) == "InvalidParameterCombination"
    for v in made:
        ec2.delete_vpc(VpcId=v)


def test_describe_vpc_attribute(ec2, aws, vpc):
    support = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsSupport")
    assert support["EnableDnsSupport"]["Value"] is True and support["VpcId"] == vpc["VpcId"]
    hostnames = aws("ec2", "describe-vpc-attribute", "--vpc-id", vpc["VpcId"], "--attribute", "enableDnsHostnames")
    assert hostnames["EnableDnsHostnames"]["Value"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpc_attribute(VpcId="vpc-00000000000000000", Attribute="enableDnsSupport")
    assert error_code(e) == "InvalidVpcID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableTeleport")
    assert error_code(e) == "InvalidParameterValue"


def attribute(ec2, vpc_id, name):
    out = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)
    return out[name[0].upper() + name[1:]]["Value"]


def test_modify_vpc_attribute_keeps_what_it_is_given(ec2, aws, signed):
    vpc_id = ec2.create_vpc(CidrBlock="10.11.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    assert attribute(ec2, vpc_id, "enableDnsHostnames") is True
    aws("ec2", "modify-vpc-attribute", "--vpc-id", vpc_id, "--enable-network-address-usage-metrics")
    assert attribute(ec2, vpc_id, "enableNetworkAddressUsageMetrics") is True
    aws("ec2", "modify-vpc-attribute", "--vpc-id", vpc_id, "--no-enable-dns-hostnames")
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    assert [attribute(ec2, vpc_id, a) for a in
            ("enableDnsSupport", "enableDnsHostnames", "enableNetworkAddressUsageMetrics")] == [False, False, True]

    def refused(code, **kwargs):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.modify_vpc_attribute(**kwargs)
        assert error_code(e) == code, e.value.response["Error"]

    # AWS: DNS hostnames only with DNS support.
    refused("InvalidParameterValue", VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    assert attribute(ec2, vpc_id, "enableDnsHostnames") is False
    refused("InvalidVpcID.NotFound", VpcId="vpc-00000000000000000", EnableDnsSupport={"Value": True})
    refused("InvalidParameterCombination", VpcId=vpc_id, EnableDnsSupport={"Value": True},
            EnableDnsHostnames={"Value": True})
    assert signed({"Action": "ModifyVpcAttribute", "VpcId": vpc_id}).code == "MissingParameter"
    assert signed({"Action": "ModifyVpcAttribute", "VpcId": vpc_id,
                   "EnableDnsSupport.Value": "maybe"}).code == "InvalidParameterValue"
    dry = signed({"Action": "ModifyVpcAttribute", "VpcId": vpc_id, "EnableDnsSupport.Value": "true",
                  "DryRun": "true"})
    assert dry.code == "DryRunOperation"
    assert attribute(ec2, vpc_id, "enableDnsSupport") is False
    ec2.delete_vpc(VpcId=vpc_id)


def test_vpc_attributes_survive_a_restart():
    with tempfile.TemporaryDirectory(prefix="palisade-api-") as directory:
        p = Palisade(directory).start()
        try:
            ec2 = client(p, "ec2")
            vpc_id = ec2.create_vpc(CidrBlock="10.12.0.0/16")["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
            p.kill9()
            p.start()
            assert attribute(client(p, "ec2"), vpc_id, "enableDnsHostnames") is True
        finally:
            p.stop()


def test_subnet_life_cycle_errors_and_filters(ec2, aws, vpc):
    vpc_id = vpc["VpcId"]
    a = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.1.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "web"}]}])["Subnet"]
    assert a["SubnetId"].startswith("subnet-") and a["VpcId"] == vpc_id
    assert a["CidrBlock"] == "10.10.1.0/24" and a["State"] == "available"
    assert a["AvailableIpAddressCount"] == 251
    assert a["SubnetArn"] == f"arn:aws:ec2:eu-central-1:{ACCOUNT}:subnet/{a['SubnetId']}"
    b = aws("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.10.2.0/24")["Subnet"]

    for cidr, code in [("10.10.1.128/25", "InvalidSubnet.Conflict"),
                       ("10.99.0.0/24", "InvalidSubnet.Range"),
                       ("10.10.3.0/29", "InvalidSubnet.Range"),
                       ("10.10.3.1/24", "InvalidParameterValue")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr)
        assert error_code(e) == code, cidr
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "create-subnet", "--vpc-id", "vpc-00000000000000000", "--cidr-block", "10.0.0.0/24")
    assert e.value.code == "InvalidVpcID.NotFound"

    def found(*filters):
        return ids(ec2.describe_subnets(Filters=[{"Name": n, "Values": v} for n, v in filters])["Subnets"], "SubnetId")

    assert found(("vpc-id", [vpc_id])) == {a["SubnetId"], b["SubnetId"]}
    assert found(("cidr-block", ["10.10.2.0/24"])) == {b["SubnetId"]}
    assert found(("subnet-id", [a["SubnetId"]])) == {a["SubnetId"]}
    assert found(("tag:Name", ["web"])) == {a["SubnetId"]}
    assert found(("vpc-id", [vpc_id]), ("state", ["available"])) == {a["SubnetId"], b["SubnetId"]}
    assert found(("vpc-id", [vpc_id]), ("state", ["pending"])) == set()
    assert ids(ec2.describe_subnets(SubnetIds=[b["SubnetId"]])["Subnets"], "SubnetId") == {b["SubnetId"]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_subnets(SubnetIds=["subnet-00000000000000000"])
    assert error_code(e) == "InvalidSubnetID.NotFound"

    # A VPC with subnets cannot go; its subnets can, then it can.
    other = ec2.create_vpc(CidrBlock="10.14.0.0/16")["Vpc"]["VpcId"]
    s = ec2.create_subnet(VpcId=other, CidrBlock="10.14.0.0/24")["Subnet"]["SubnetId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_vpc(VpcId=other)
    assert error_code(e) == "DependencyViolation"
    ec2.delete_subnet(SubnetId=s)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_subnet(SubnetId=s)
    assert error_code(e) == "InvalidSubnetID.NotFound"
    aws("ec2", "delete-vpc", "--vpc-id", other)
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "delete-vpc", "--vpc-id", other)
    assert e.value.code == "InvalidVpcID.NotFound"


def test_a_vpc_with_a_custom_group_cannot_be_deleted(ec2):
    v = ec2.create_vpc(CidrBlock="10.15.0.0/16")["Vpc"]["VpcId"]
    g = ec2.create_security_group(GroupName="custom", Description="c", VpcId=v)["GroupId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_vpc(VpcId=v)
    assert error_code(e) == "DependencyViolation"
    ec2.delete_security_group(GroupId=g)
    ec2.delete_vpc(VpcId=v)
    remaining = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v]}])["SecurityGroups"]
    assert remaining == [], "the default group went with its VPC"
