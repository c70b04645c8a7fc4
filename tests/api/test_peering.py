"""The VpcPeeringConnection actions and DescribeStaleSecurityGroups through
boto3 and the AWS CLI."""

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, error_code


@pytest.fixture(scope="module")
def vpcs(ec2):
    return [ec2.create_vpc(CidrBlock=c)["Vpc"]["VpcId"]
            for c in ("10.60.0.0/16", "10.61.0.0/16", "10.62.0.0/16")]


def test_request_accept_delete_lifecycle(ec2, aws, vpcs):
    a, b, _ = vpcs
    pcx = ec2.create_vpc_peering_connection(
        VpcId=a, PeerVpcId=b, PeerOwnerId=ACCOUNT, PeerRegion=REGION,
        TagSpecifications=[{"ResourceType": "vpc-peering-connection",
                            "Tags": [{"Key": "Name", "Value": "a-b"}]}],
    )["VpcPeeringConnection"]
    pid = pcx["VpcPeeringConnectionId"]
    assert pid.startswith("pcx-")
    assert pcx["Status"] == {"Code": "pending-acceptance",
                             "Message": f"Pending Acceptance by {ACCOUNT}"}
    assert pcx["RequesterVpcInfo"]["VpcId"] == a and pcx["RequesterVpcInfo"]["CidrBlock"] == "10.60.0.0/16"
    assert pcx["AccepterVpcInfo"]["VpcId"] == b and pcx["AccepterVpcInfo"]["OwnerId"] == ACCOUNT
    assert pcx["AccepterVpcInfo"]["Region"] == REGION
    assert pcx["Tags"] == [{"Key": "Name", "Value": "a-b"}]

    accepted = aws("ec2", "accept-vpc-peering-connection", "--vpc-peering-connection-id", pid)
    assert accepted["VpcPeeringConnection"]["Status"]["Code"] == "active"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert error_code(e) == "InvalidStateTransition"

    assert ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)["Return"] is True
    got = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pid])["VpcPeeringConnections"]
    assert got[0]["Status"]["Code"] == "deleted"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert error_code(e) == "InvalidStateTransition"


def test_create_errors(ec2, vpcs):
    a, b, _ = vpcs
    overlapping = ec2.create_vpc(CidrBlock="10.60.0.0/20")["Vpc"]["VpcId"]
    for kwargs, code in [
        (dict(VpcId=a, PeerVpcId="vpc-0123456789abcdef0"), "InvalidVpcID.NotFound"),
        (dict(VpcId="vpc-0123456789abcdef0", PeerVpcId=b), "InvalidVpcID.NotFound"),
        (dict(VpcId=a, PeerVpcId=b, PeerOwnerId="210987654321"), "InvalidParameterValue"),
        (dict(VpcId=a, PeerVpcId=b, PeerRegion="xx-nowhere-1"), "InvalidParameterValue"),
        (dict(VpcId=a, PeerVpcId=overlapping), "InvalidVpcPeeringConnection.Overlap"),
        (dict(VpcId=a), "MissingParameter"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.create_vpc_peering_connection(**kwargs)
        assert error_code(e) == code, kwargs
    for call in (ec2.accept_vpc_peering_connection, ec2.delete_vpc_peering_connection):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(VpcPeeringConnectionId="pcx-0123456789abcdef0")
        assert error_code(e) == "InvalidVpcPeeringConnectionID.NotFound"


def test_describe_filters(ec2, aws, vpcs):
    a, _, c = vpcs
    pid = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=c)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"]

    def ids(*filters):
        found = ec2.describe_vpc_peering_connections(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["VpcPeeringConnections"]
        return {p["VpcPeeringConnectionId"] for p in found}

    assert pid in ids(("status-code", ["pending-acceptance"]))
    assert pid not in ids(("status-code", ["active", "deleted"]))
    assert ids(("accepter-vpc-info.vpc-id", [c])) == {pid}
    assert pid in ids(("requester-vpc-info.vpc-id", [a]), ("accepter-vpc-info.cidr-block", ["10.62.*"]))
    assert ids(("vpc-peering-connection-id", [pid])) == {pid}
    assert pid in ids(("requester-vpc-info.owner-id", [ACCOUNT]))
    out = aws("ec2", "describe-vpc-peering-connections", "--filters",
              "Name=status-message,Values=Pending*", f"Name=accepter-vpc-info.vpc-id,Values={c}")
    assert [p["VpcPeeringConnectionId"] for p in out["VpcPeeringConnections"]] == [pid]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpc_peering_connections(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=["pcx-0123456789abcdef0"])
    assert error_code(e) == "InvalidVpcPeeringConnectionID.NotFound"
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)


def test_deleted_peering_leaves_stale_group_references(ec2, aws):
    a = ec2.create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    b = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    app = ec2.create_security_group(GroupName="app", Description="d", VpcId=a)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="d", VpcId=b)["GroupId"]
    pid = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
    ec2.authorize_security_group_egress(GroupId=app, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": db}]}])
    assert ec2.describe_stale_security_groups(VpcId=a)["StaleSecurityGroupSet"] == []

    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)
    stale = aws("ec2", "describe-stale-security-groups", "--vpc-id", a)["StaleSecurityGroupSet"]
    assert [s["GroupId"] for s in stale] == [app]
    assert stale[0]["GroupName"] == "app" and stale[0]["VpcId"] == a
    assert stale[0].get("StaleIpPermissions", []) == []
    (permission,) = stale[0]["StaleIpPermissionsEgress"]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"]) == ("tcp", 5432, 5432)
    (pair,) = permission["UserIdGroupPairs"]
    assert pair["GroupId"] == db and pair["VpcPeeringConnectionId"] == pid
    assert pair["PeeringStatus"] == "deleted" and pair["VpcId"] == b
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_stale_security_groups(VpcId="vpc-0123456789abcdef0")
    assert error_code(e) == "InvalidVpcID.NotFound"


def test_peering_changes_publish_a_new_generation(ec2, palisade):
    a = ec2.create_vpc(CidrBlock="10.65.0.0/16")["Vpc"]["VpcId"]
    b = ec2.create_vpc(CidrBlock="10.66.0.0/16")["Vpc"]["VpcId"]
    generation = palisade.metric("palisade_policy_generation")
    pid = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert palisade.metric("palisade_policy_generation") == generation + 2
