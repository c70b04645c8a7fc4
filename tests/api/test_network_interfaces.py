"""CreateNetworkInterface / DeleteNetworkInterface / DescribeNetworkInterfaces
/ DescribeNetworkInterfaceAttribute / ModifyNetworkInterfaceAttribute through
boto3 and the AWS CLI, with the data-plane binding passed as `palisade:` tags
in TagSpecification (README, "Network interfaces")."""

import ipaddress
import json

import botocore.exceptions
import pytest

from conftest import error_code


def binding(port="eni-a", vlan=None, mac=None, **extra):
    tags = [{"Key": "palisade:port", "Value": port}]
    if vlan is not None:
        tags.append({"Key": "palisade:vlan", "Value": str(vlan)})
    if mac is not None:
        tags.append({"Key": "palisade:mac", "Value": mac})
    tags += [{"Key": k, "Value": v} for k, v in extra.items()]
    return [{"ResourceType": "network-interface", "Tags": tags}]


@pytest.fixture(scope="module")
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    foreign = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    default = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    return {"vpc": vpc, "subnet": subnet, "web": web, "db": db, "foreign": foreign,
            "default": default}


def tags_of(eni):
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}


def test_create_with_binding_tags_and_options(ec2, net):
    eni = ec2.create_network_interface(
        SubnetId=net["subnet"], Description="web server", Groups=[net["web"]],
        PrivateIpAddress="10.20.1.10",
        TagSpecifications=binding(port="eni-a", vlan=12, Name="web-1"),
        ConnectionTrackingSpecification={"TcpEstablishedTimeout": 3600},
    )["NetworkInterface"]
    assert eni["NetworkInterfaceId"].startswith("eni-")
    assert eni["SubnetId"] == net["subnet"] and eni["VpcId"] == net["vpc"]
    assert eni["PrivateIpAddress"] == "10.20.1.10"
    assert [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]] == ["10.20.1.10"]
    assert eni["PrivateIpAddresses"][0]["Primary"] is True
    assert [g["GroupId"] for g in eni["Groups"]] == [net["web"]]
    assert eni["Groups"][0]["GroupName"] == "web"
    assert eni["Description"] == "web server"
    assert eni["Status"] == "available"
    assert eni["SourceDestCheck"] is True
    mac = eni["MacAddress"]
    first = int(mac.split(":")[0], 16)
    assert len(mac.split(":")) == 6 and first & 0b11 == 0b10, f"locally administered unicast: {mac}"
    assert tags_of(eni) == {"palisade:port": "eni-a", "palisade:vlan": "12",
                            "palisade:mac": mac, "Name": "web-1"}
    assert eni["ConnectionTrackingConfiguration"] == {
        "TcpEstablishedTimeout": 3600, "UdpStreamTimeout": 180, "UdpTimeout": 30}


def test_cli_explicit_mac_picked_addresses_and_default_group(aws, net):
    spec = ("ResourceType=network-interface,Tags=[{Key=palisade:port,Value=eni-b},"
            "{Key=palisade:mac,Value=02:AA:bb:cc:dd:ee}]")
    eni = aws("ec2", "create-network-interface", "--subnet-id", net["subnet"],
              "--secondary-private-ip-address-count", "1",
              "--tag-specifications", spec)["NetworkInterface"]
    assert eni["MacAddress"] == "02:aa:bb:cc:dd:ee"
    assert [g["GroupId"] for g in eni["Groups"]] == [net["default"]]
    addresses = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]]
    assert len(set(addresses)) == 2
    assert [a["Primary"] for a in eni["PrivateIpAddresses"]] == [True, False]
    subnet = ipaddress.ip_network("10.20.1.0/24")
    reserved = {subnet[i] for i in (0, 1, 2, 3, 255)}
    for a in addresses:
        assert ipaddress.ip_address(a) in subnet and ipaddress.ip_address(a) not in reserved
    assert eni["PrivateIpAddress"] == addresses[0]
    assert tags_of(eni)["palisade:port"] == "eni-b"
    assert "palisade:vlan" not in tags_of(eni)


@pytest.mark.parametrize("kwargs, code", [
    ({"TagSpecifications": [{"ResourceType": "network-interface",
                             "Tags": [{"Key": "Name", "Value": "x"}]}]}, "MissingParameter"),
    ({}, "MissingParameter"),
    ({"TagSpecifications": binding(port="no-such-port")}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(vlan=4095)}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(mac="01:00:5e:00:00:01")}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "PrivateIpAddress": "10.20.1.1"}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "PrivateIpAddress": "10.20.2.9"}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "PrivateIpAddress": "10.20.1.300"}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "Groups": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
    ({"TagSpecifications": binding(), "Groups": ["nonsense"]}, "InvalidGroupId.Malformed"),
    ({"TagSpecifications": binding(), "ConnectionTrackingSpecification": {"UdpTimeout": 61}},
     "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "ConnectionTrackingSpecification":
      {"TcpEstablishedTimeout": 432001}}, "InvalidParameterValue"),
    ({"TagSpecifications": binding(), "Description": "d" * 256}, "InvalidParameterValue"),
])
def test_create_errors(ec2, net, kwargs, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=net["subnet"], **kwargs)
    assert error_code(e) == code


def test_create_errors_that_need_state(ec2, net):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId="subnet-0123456789abcdef0",
                                     TagSpecifications=binding())
    assert error_code(e) == "InvalidSubnetID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=net["subnet"], Groups=[net["foreign"]],
                                     TagSpecifications=binding())
    assert error_code(e) == "InvalidParameterValue"
    ec2.create_network_interface(SubnetId=net["subnet"], PrivateIpAddress="10.20.1.50",
                                 TagSpecifications=binding(port="eni-c"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=net["subnet"], PrivateIpAddress="10.20.1.50",
                                     TagSpecifications=binding(port="eni-c"))
    assert error_code(e) == "InvalidIPAddress.InUse"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=net["subnet"], PrivateIpAddress="10.20.1.51",
                                     TagSpecifications=binding(port="eni-c", mac="02:00:00:00:00:51"))
        ec2.create_network_interface(SubnetId=net["subnet"], PrivateIpAddress="10.20.1.52",
                                     TagSpecifications=binding(port="eni-c", mac="02:00:00:00:00:51"))
    assert error_code(e) == "InvalidParameterValue", "same (port, vlan, MAC) twice"
    before = ec2.describe_network_interfaces()["NetworkInterfaces"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=net["subnet"], TagSpecifications=binding(),
                                     DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == before


def test_describe_filters(ec2, aws, net):
    a = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.20", Groups=[net["db"]],
        TagSpecifications=binding(port="eni-a", vlan=20, Name="filter-a"))["NetworkInterface"]
    b = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.21", Groups=[net["db"], net["web"]],
        TagSpecifications=binding(port="eni-b", Name="filter-b"))["NetworkInterface"]

    def ids(*filters, **kwargs):
        found = ec2.describe_network_interfaces(
            Filters=[{"Name": n, "Values": v} for n, v in filters], **kwargs)["NetworkInterfaces"]
        return {e["NetworkInterfaceId"] for e in found} & {a["NetworkInterfaceId"], b["NetworkInterfaceId"]}

    both = {a["NetworkInterfaceId"], b["NetworkInterfaceId"]}
    assert ids(("network-interface-id", [a["NetworkInterfaceId"]])) == {a["NetworkInterfaceId"]}
    assert ids(("subnet-id", [net["subnet"]])) == both
    assert ids(("vpc-id", [net["vpc"]])) == both
    assert ids(("group-id", [net["web"]])) == {b["NetworkInterfaceId"]}
    assert ids(("group-id", [net["db"]])) == both
    assert ids(("private-ip-address", ["10.20.1.21"])) == {b["NetworkInterfaceId"]}
    assert ids(("addresses.private-ip-address", ["10.20.1.2?"])) == both
    assert ids(("mac-address", [a["MacAddress"]])) == {a["NetworkInterfaceId"]}
    assert ids(("status", ["available"])) == both
    assert ids(("status", ["in-use"])) == set()
    assert ids(("tag:Name", ["filter-*"]), ("tag:palisade:port", ["eni-b"])) == {b["NetworkInterfaceId"]}
    assert ids(("tag-key", ["palisade:vlan"])) >= {a["NetworkInterfaceId"]}
    assert ids(("tag:palisade:vlan", ["20"])) == {a["NetworkInterfaceId"]}
    found = ec2.describe_network_interfaces(NetworkInterfaceIds=[b["NetworkInterfaceId"]])
    assert [e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]] == [b["NetworkInterfaceId"]]

    out = aws("ec2", "describe-network-interfaces", "--filters",
              f"Name=mac-address,Values={b['MacAddress']}")
    assert [e["NetworkInterfaceId"] for e in out["NetworkInterfaces"]] == [b["NetworkInterfaceId"]]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_interfaces(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_interfaces(NetworkInterfaceIds=["eni-0123456789abcdef0"])
    assert error_code(e) == "InvalidNetworkInterfaceID.NotFound"


def test_modify_and_describe_attributes(ec2, aws, net):
    eni = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.30",
        TagSpecifications=binding(port="eni-a", vlan=30))["NetworkInterface"]["NetworkInterfaceId"]

    def describe():
        return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[net["web"], net["db"]])
    assert [g["GroupId"] for g in describe()["Groups"]] == [net["web"], net["db"]]
    aws("ec2", "modify-network-interface-attribute", "--network-interface-id", eni,
        "--no-source-dest-check")
    assert describe()["SourceDestCheck"] is False
    aws("ec2", "modify-network-interface-attribute", "--network-interface-id", eni,
        "--description", "Value=renamed")
    assert describe()["Description"] == "renamed"
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni, ConnectionTrackingSpecification={"TcpEstablishedTimeout": 7200})
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni, ConnectionTrackingSpecification={"UdpStreamTimeout": 60, "UdpTimeout": 60})
    assert describe()["ConnectionTrackingConfiguration"] == {
        "TcpEstablishedTimeout": 7200, "UdpStreamTimeout": 60, "UdpTimeout": 60}

    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute="description")
    assert attr["Description"]["Value"] == "renamed"
    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute="groupSet")
    assert [g["GroupId"] for g in attr["Groups"]] == [net["web"], net["db"]]
    attr = aws("ec2", "describe-network-interface-attribute", "--network-interface-id", eni,
               "--attribute", "sourceDestCheck")
    assert attr["SourceDestCheck"]["Value"] is False

    for kwargs, code in [
        ({"ConnectionTrackingSpecification": {"TcpEstablishedTimeout": 59}}, "InvalidParameterValue"),
        ({"ConnectionTrackingSpecification": {"UdpStreamTimeout": 181}}, "InvalidParameterValue"),
        ({"ConnectionTrackingSpecification": {"UdpTimeout": 29}}, "InvalidParameterValue"),
        ({"Groups": [net["foreign"]]}, "InvalidParameterValue"),
        ({"Groups": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
        ({"SourceDestCheck": {"Value": True}, "Description": {"Value": "x"}},
         "InvalidParameterCombination"),
        ({}, "MissingParameter"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, **kwargs)
        assert error_code(e) == code, kwargs
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_network_interface_attribute(NetworkInterfaceId="eni-0123456789abcdef0",
                                               SourceDestCheck={"Value": True})
    assert error_code(e) == "InvalidNetworkInterfaceID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute="bogus")
    assert error_code(e) in ("InvalidParameterValue",)
    assert describe()["ConnectionTrackingConfiguration"]["TcpEstablishedTimeout"] == 7200


def test_binding_tags_are_reserved_but_other_tags_work(ec2, net):
    eni = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.40",
        TagSpecifications=binding(port="eni-a", vlan=40))["NetworkInterface"]["NetworkInterfaceId"]
    for call in (ec2.create_tags, ec2.delete_tags):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(Resources=[eni], Tags=[{"Key": "palisade:port", "Value": "eni-b"}])
        assert error_code(e) == "InvalidParameterValue"
    ec2.create_tags(Resources=[eni], Tags=[{"Key": "team", "Value": "net"}])
    tags = tags_of(ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0])
    assert tags["team"] == "net" and tags["palisade:port"] == "eni-a" and tags["palisade:vlan"] == "40"


def test_delete(ec2, aws, net):
    eni = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.60",
        TagSpecifications=binding(port="eni-a", vlan=60))["NetworkInterface"]["NetworkInterfaceId"]
    aws("ec2", "delete-network-interface", "--network-interface-id", eni)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])
    assert error_code(e) == "InvalidNetworkInterfaceID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
    assert error_code(e) == "InvalidNetworkInterfaceID.NotFound"
    # Its address is free again.
    ec2.create_network_interface(SubnetId=net["subnet"], PrivateIpAddress="10.20.1.60",
                                 TagSpecifications=binding(port="eni-a", vlan=61))


def test_interface_changes_publish_a_new_generation(ec2, palisade, net):
    generation = palisade.metric("palisade_policy_generation")
    eni = ec2.create_network_interface(
        SubnetId=net["subnet"], PrivateIpAddress="10.20.1.70",
        TagSpecifications=binding(port="eni-a", vlan=70))["NetworkInterface"]["NetworkInterfaceId"]
    # The API answers only after the change is published.
    assert palisade.metric("palisade_policy_generation") == generation + 1
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    assert palisade.metric("palisade_policy_generation") == generation + 2
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[net["db"]])
    assert palisade.metric("palisade_policy_generation") == generation + 3
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    assert palisade.metric("palisade_policy_generation") == generation + 4
