"""DescribeRouteTables: each VPC's main table with its local routes and the
routes of its active peerings, through boto3 and the AWS CLI."""

import botocore.exceptions
import pytest

from conftest import ACCOUNT, error_code


@pytest.fixture(scope="module")
def vpcs(ec2):
    a = ec2.create_vpc(CidrBlock="10.70.0.0/16", Ipv6CidrBlock="2001:db8:70::/56")["Vpc"]["VpcId"]
    b = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    return a, b


def table_of(ec2, vpc):
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    assert len(tables) == 1
    return tables[0]


def destinations(table):
    return sorted((r.get("DestinationCidrBlock") or r["DestinationIpv6CidrBlock"],
                   r.get("GatewayId") or r.get("VpcPeeringConnectionId")) for r in table["Routes"])


def test_main_table_with_local_routes(ec2, vpcs):
    a, _ = vpcs
    table = table_of(ec2, a)
    assert table["RouteTableId"].startswith("rtb-") and table["VpcId"] == a
    assert table["OwnerId"] == ACCOUNT
    assert destinations(table) == [("10.70.0.0/16", "local"), ("2001:db8:70::/56", "local")]
    assert all(r["State"] == "active" and r["Origin"] == "CreateRouteTable" for r in table["Routes"])
    (assoc,) = table["Associations"]
    assert assoc["Main"] is True and assoc["RouteTableId"] == table["RouteTableId"]
    assert assoc["RouteTableAssociationId"].startswith("rtbassoc-")
    assert "SubnetId" not in assoc
    # Stable: the same id on every call.
    assert table_of(ec2, a)["RouteTableId"] == table["RouteTableId"]


def test_active_peering_adds_routes_both_ways(ec2, aws, vpcs):
    a, b = vpcs
    pid = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"]
    assert destinations(table_of(ec2, b)) == [("10.71.0.0/16", "local")], "pending routes nothing"
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert destinations(table_of(ec2, b)) == [
        ("10.70.0.0/16", pid), ("10.71.0.0/16", "local"), ("2001:db8:70::/56", pid)]
    assert ("10.71.0.0/16", pid) in destinations(table_of(ec2, a))
    out = aws("ec2", "describe-route-tables", "--filters",
              f"Name=route.vpc-peering-connection-id,Values={pid}")
    assert {t["VpcId"] for t in out["RouteTables"]} == {a, b}
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert destinations(table_of(ec2, b)) == [("10.71.0.0/16", "local")]


def test_ids_filters_tags_and_errors(ec2, aws, vpcs):
    a, b = vpcs
    rtb = table_of(ec2, a)["RouteTableId"]
    got = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert [t["VpcId"] for t in got] == [a]

    def vpcs_of(*filters):
        found = ec2.describe_route_tables(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["RouteTables"]
        return {t["VpcId"] for t in found}

    assert vpcs_of(("route-table-id", [rtb])) == {a}
    assert {a, b} <= vpcs_of(("association.main", ["true"]))
    assert vpcs_of(("association.subnet-id", ["subnet-0123456789abcdef0"])) == set()
    assert vpcs_of(("route.destination-cidr-block", ["10.71.0.0/16"])) == {b}
    assert vpcs_of(("route.destination-ipv6-cidr-block", ["2001:db8:70::/56"])) == {a}
    assert a in vpcs_of(("route.gateway-id", ["local"]))

    aws("ec2", "create-tags", "--resources", rtb, "--tags", "Key=Name,Value=main-a")
    assert vpcs_of(("tag:Name", ["main-a"])) == {a}
    assert table_of(ec2, a)["Tags"] == [{"Key": "Name", "Value": "main-a"}]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_route_tables(RouteTableIds=["rtb-0123456789abcdef0"])
    assert error_code(e) == "InvalidRouteTableID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_route_tables(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"
