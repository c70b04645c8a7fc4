"""Issue 16 items 1-2 with boto3 and the AWS CLI: IPv6 blocks from the
appliance's pool (AmazonProvidedIpv6CidrBlock), subnet IPv6 blocks and
attributes, Associate/Disassociate Vpc/Subnet CidrBlock; the account's
default VPC, CreateDefaultVpc, DescribeAccountAttributes,
DescribeAvailabilityZones, subnets' zones, CreateSecurityGroup without
VpcId. The appliance here runs in the region the clients sign for."""

import ipaddress
import tempfile

import botocore.exceptions
import pytest

from conftest import REGION, Palisade, client, error_code

POOL = "2600:1f00::/40"
CONFIG = f"""\
[appliance]
account_id = "123456789012"
region = "{REGION}"
ipv6_pool = "{POOL}"
"""


@pytest.fixture(scope="module")
def palisade():
    with tempfile.TemporaryDirectory(prefix="palisade-ipv6-") as directory:
        p = Palisade(directory, config=CONFIG).start()
        try:
            yield p
        finally:
            p.stop()


def refused(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return error_code(e)


def zones():
    return [f"{REGION}{letter}" for letter in "abc"]


# ---- the default VPC -------------------------------------------------------

def test_the_account_has_a_default_vpc_with_a_subnet_per_zone(ec2, aws):
    found = aws("ec2", "describe-vpcs", "--filters", "Name=isDefault,Values=true")["Vpcs"]
    assert len(found) == 1
    vpc = found[0]
    assert vpc["IsDefault"] is True and vpc["CidrBlock"] == "172.31.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s for s in subnets}
    assert sorted(by_zone) == zones()
    assert [by_zone[z]["CidrBlock"] for z in zones()] == ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert by_zone[zones()[0]]["AvailabilityZoneId"] == "euc1-az1"
    assert ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"] != []
    # Its default group and ACL.
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["NetworkAcls"]
    assert [a["IsDefault"] for a in acls] == [True]
    # Not default: a VPC the user creates.
    other = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]
    assert other["IsDefault"] is False
    ids = {v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]}
    assert other["VpcId"] in ids and vpc["VpcId"] not in ids
    ec2.delete_vpc(VpcId=other["VpcId"])


def test_account_attributes_name_the_default_vpc(ec2):
    default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    attributes = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
                  for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attributes["supported-platforms"] == ["VPC"]
    assert attributes["default-vpc"] == [default]
    assert int(attributes["max-instances"][0]) > 0
    one = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert [a["AttributeName"] for a in one] == ["default-vpc"]


def test_availability_zones_of_the_region(ec2, aws):
    answer = aws("ec2", "describe-availability-zones")["AvailabilityZones"]
    assert [z["ZoneName"] for z in answer] == zones()
    assert [z["ZoneId"] for z in answer] == ["euc1-az1", "euc1-az2", "euc1-az3"]
    assert all(z["State"] == "available" and z["RegionName"] == REGION for z in answer)
    picked = ec2.describe_availability_zones(ZoneNames=[zones()[1]])["AvailabilityZones"]
    assert [z["ZoneId"] for z in picked] == ["euc1-az2"]
    filtered = ec2.describe_availability_zones(
        Filters=[{"Name": "zone-id", "Values": ["euc1-az3"]}])["AvailabilityZones"]
    assert [z["ZoneName"] for z in filtered] == [zones()[2]]
    assert refused(ec2.describe_availability_zones, ZoneNames=["us-east-1a"]) == "InvalidParameterValue"


def test_a_group_without_vpc_id_goes_to_the_default_vpc(ec2):
    default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="no-vpc-given", Description="x")["GroupId"]
    found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert found["VpcId"] == default
    ec2.delete_security_group(GroupId=group)


def test_create_default_vpc_refuses_a_second_and_remakes_a_deleted_one(ec2):
    assert refused(ec2.create_default_vpc) == "DefaultVpcAlreadyExists"
    default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    ec2.delete_vpc(VpcId=default)
    assert ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"] == []
    # Without a default VPC, a group needs its VpcId (AWS's VPCIdNotSpecified).
    assert refused(ec2.create_security_group, GroupName="g", Description="d") == "VPCIdNotSpecified"
    remade = ec2.create_default_vpc()["Vpc"]
    assert remade["IsDefault"] is True and remade["CidrBlock"] == "172.31.0.0/16"
    assert len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [remade["VpcId"]]}])["Subnets"]) == 3


# ---- IPv6 ------------------------------------------------------------------

def test_amazon_provided_ipv6_comes_from_the_pool(ec2, aws):
    a = aws("ec2", "create-vpc", "--cidr-block", "10.50.0.0/16", "--amazon-provided-ipv6-cidr-block")["Vpc"]
    b = ec2.create_vpc(CidrBlock="10.51.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    blocks = []
    for vpc in (a, b):
        [assoc] = vpc["Ipv6CidrBlockAssociationSet"]
        assert assoc["Ipv6Pool"] == "Amazon"
        assert assoc["Ipv6CidrBlockState"]["State"] == "associated"
        block = ipaddress.ip_network(assoc["Ipv6CidrBlock"])
        assert block.prefixlen == 56 and block.subnet_of(ipaddress.ip_network(POOL))
        blocks.append(block)
    assert not blocks[0].overlaps(blocks[1])
    found = ec2.describe_vpcs(Filters=[{"Name": "ipv6-cidr-block-association.ipv6-cidr-block",
                                        "Values": [str(blocks[1])]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [b["VpcId"]]
    assert refused(ec2.create_vpc, CidrBlock="10.52.0.0/16", AmazonProvidedIpv6CidrBlock=True,
                   Ipv6CidrBlock="fd00::/56") == "InvalidParameterCombination"
    for vpc in (a, b):
        ec2.delete_vpc(VpcId=vpc["VpcId"])


@pytest.fixture(scope="module")
def v6vpc(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ipaddress.ip_network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    return vpc["VpcId"], block


def test_a_subnet_takes_a_64_of_its_vpc_block(ec2, aws, v6vpc):
    vpc, block = v6vpc
    first, second, *_ = block.subnets(new_prefix=64)
    out = aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.60.1.0/24",
              "--ipv6-cidr-block", str(first), "--availability-zone", zones()[1])["Subnet"]
    assert out["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"] == str(first)
    assert out["AvailabilityZone"] == zones()[1] and out["AvailabilityZoneId"] == "euc1-az2"
    # AWS's refusals.
    outside = next(ipaddress.ip_network("2001:db8::/56").subnets(new_prefix=64))
    for ipv6, code in [(str(first), "InvalidSubnet.Conflict"),
                       (str(outside), "InvalidSubnet.Range"),
                       (str(second).replace("/64", "/65"), "InvalidSubnet.Range"),
                       ("not-a-block", "InvalidParameterValue")]:
        assert refused(ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.2.0/24",
                       Ipv6CidrBlock=ipv6) == code, ipv6
    assert refused(ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.2.0/24",
                   AvailabilityZone="us-east-1a") == "InvalidParameterValue"
    by_id = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.3.0/24", AvailabilityZoneId="euc1-az3")["Subnet"]
    assert by_id["AvailabilityZone"] == zones()[2]
    found = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zones()[2]]},
                                          {"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    assert [s["SubnetId"] for s in found] == [by_id["SubnetId"]]
    ec2.delete_subnet(SubnetId=by_id["SubnetId"])
    ec2.delete_subnet(SubnetId=out["SubnetId"])


def test_subnet_cidr_blocks_and_attributes(ec2, v6vpc):
    vpc, block = v6vpc
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.4.0/24")["Subnet"]["SubnetId"]
    assert refused(ec2.modify_subnet_attribute, SubnetId=subnet,
                   AssignIpv6AddressOnCreation={"Value": True}) == "InvalidParameterValue"
    target = list(block.subnets(new_prefix=64))[4]
    assoc = ec2.associate_subnet_cidr_block(SubnetId=subnet, Ipv6CidrBlock=str(target))
    assert assoc["SubnetId"] == subnet
    assert assoc["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"] == str(target)
    association = assoc["Ipv6CidrBlockAssociation"]["AssociationId"]
    assert refused(ec2.associate_subnet_cidr_block, SubnetId=subnet,
                   Ipv6CidrBlock=str(list(block.subnets(new_prefix=64))[5])) == "CidrLimitExceeded"
    ec2.modify_subnet_attribute(SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True})
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    s = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
    assert s["AssignIpv6AddressOnCreation"] is True and s["MapPublicIpOnLaunch"] is True
    assert s["Ipv6CidrBlockAssociationSet"][0]["AssociationId"] == association
    # The VPC's block is in use now.
    vpc_assoc = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["AssociationId"]
    assert refused(ec2.disassociate_vpc_cidr_block, AssociationId=vpc_assoc) == "DependencyViolation"
    gone = ec2.disassociate_subnet_cidr_block(AssociationId=association)
    assert gone["SubnetId"] == subnet
    s = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
    assert s.get("Ipv6CidrBlockAssociationSet", []) == [] and s["AssignIpv6AddressOnCreation"] is False
    assert refused(ec2.disassociate_subnet_cidr_block, AssociationId=association) == "InvalidAssociationID.NotFound"
    ec2.delete_subnet(SubnetId=subnet)


def test_vpc_ipv6_blocks_associate_and_disassociate(ec2, aws):
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    out = aws("ec2", "associate-vpc-cidr-block", "--vpc-id", vpc, "--amazon-provided-ipv6-cidr-block")
    assoc = out["Ipv6CidrBlockAssociation"]
    assert out["VpcId"] == vpc and assoc["Ipv6Pool"] == "Amazon"
    assert ipaddress.ip_network(assoc["Ipv6CidrBlock"]).subnet_of(ipaddress.ip_network(POOL))
    found = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"]
    assert [a["Ipv6CidrBlock"] for a in found] == [assoc["Ipv6CidrBlock"]]
    # Terraform waits for the association by these filters.
    by_assoc = ec2.describe_vpcs(Filters=[
        {"Name": "ipv6-cidr-block-association.association-id", "Values": [assoc["AssociationId"]]},
        {"Name": "ipv6-cidr-block-association.state", "Values": ["associated"]}])["Vpcs"]
    assert [v["VpcId"] for v in by_assoc] == [vpc]
    assert refused(ec2.associate_vpc_cidr_block, VpcId=vpc,
                   AmazonProvidedIpv6CidrBlock=True) == "CidrLimitExceeded"
    assert refused(ec2.associate_vpc_cidr_block, VpcId=vpc,
                   CidrBlock="10.62.0.0/16") == "InvalidParameterValue"
    ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet", []) == []
    assert refused(ec2.disassociate_vpc_cidr_block,
                   AssociationId=assoc["AssociationId"]) == "InvalidAssociationID.NotFound"
    ec2.delete_vpc(VpcId=vpc)
