"""The NetworkAcl and NetworkAclEntry actions with associations, through
boto3 and the AWS CLI: success, AWS's error codes, filters, and that an
ACL change reaches the data plane as a new policy generation."""

import botocore.exceptions
import pytest

from conftest import error_code


@pytest.fixture(scope="module")
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16", Ipv6CidrBlock="2001:db8:40::/56")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24")["Subnet"]["SubnetId"]
    default = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"]
    assert len(default) == 1
    return {"vpc": vpc, "other": other, "a": a, "b": b, "default": default[0]}


def entries(acl, egress):
    return sorted(((e["RuleNumber"], e["RuleAction"], e["Protocol"],
                    e.get("CidrBlock") or e.get("Ipv6CidrBlock"))
                   for e in acl["Entries"] if e["Egress"] == egress))


def association_of(ec2, subnet):
    acl = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    assert len(acl) == 1
    (assoc,) = [a for a in acl[0]["Associations"] if a["SubnetId"] == subnet]
    return acl[0]["NetworkAclId"], assoc["NetworkAclAssociationId"]


def test_default_acl_allows_all_and_shows_the_star_denies(net):
    acl = net["default"]
    assert acl["IsDefault"] is True and acl["VpcId"] == net["vpc"]
    for egress in (False, True):
        assert entries(acl, egress) == [
            (100, "allow", "-1", "0.0.0.0/0"),
            (101, "allow", "-1", "::/0"),
            (32767, "deny", "-1", "0.0.0.0/0"),
            (32768, "deny", "-1", "::/0"),
        ]
    assocs = {a["SubnetId"]: a["NetworkAclAssociationId"] for a in acl["Associations"]}
    assert set(assocs) == {net["a"], net["b"]}
    assert all(i.startswith("aclassoc-") for i in assocs.values())
    assert len(set(assocs.values())) == 2


def test_custom_acl_entries_create_replace_delete(ec2, aws, net):
    acl = aws("ec2", "create-network-acl", "--vpc-id", net["vpc"], "--tag-specifications",
              "ResourceType=network-acl,Tags=[{Key=Name,Value=entries}]")["NetworkAcl"]
    acl_id = acl["NetworkAclId"]
    assert acl["IsDefault"] is False and acl["Associations"] == []
    assert {t["Key"]: t["Value"] for t in acl["Tags"]} == {"Name": "entries"}
    # A new ACL denies everything: only the * rules.
    assert [e[0] for e in entries(acl, False)] == [32767, 32768]

    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=110, Protocol="6",
                                 RuleAction="allow", Egress=False, CidrBlock="10.0.0.0/8",
                                 PortRange={"From": 80, "To": 443})
    aws("ec2", "create-network-acl-entry", "--network-acl-id", acl_id, "--rule-number", "120",
        "--protocol", "icmp", "--rule-action", "deny", "--ingress", "--cidr-block", "0.0.0.0/0",
        "--icmp-type-code", "Type=8,Code=-1")
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=110, Protocol="-1",
                                 RuleAction="allow", Egress=True, Ipv6CidrBlock="::/0")
    got = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    by_rule = {(e["RuleNumber"], e["Egress"]): e for e in got["Entries"]}
    assert by_rule[(110, False)]["PortRange"] == {"From": 80, "To": 443}
    assert by_rule[(110, False)]["Protocol"] == "6"
    assert by_rule[(120, False)]["IcmpTypeCode"] == {"Type": 8, "Code": -1}
    assert by_rule[(120, False)]["Protocol"] == "1" and by_rule[(120, False)]["RuleAction"] == "deny"
    assert by_rule[(110, True)]["Ipv6CidrBlock"] == "::/0"

    for call, kwargs, code in [
        (ec2.create_network_acl_entry, dict(RuleNumber=110, Protocol="-1", RuleAction="deny",
                                            Egress=False, CidrBlock="0.0.0.0/0"),
         "NetworkAclEntryAlreadyExists"),
        (ec2.replace_network_acl_entry, dict(RuleNumber=130, Protocol="-1", RuleAction="deny",
                                             Egress=False, CidrBlock="0.0.0.0/0"),
         "InvalidNetworkAclEntry.NotFound"),
        (ec2.create_network_acl_entry, dict(RuleNumber=32767, Protocol="-1", RuleAction="deny",
                                            Egress=False, CidrBlock="0.0.0.0/0"),
         "InvalidParameterValue"),
        (ec2.create_network_acl_entry, dict(RuleNumber=0, Protocol="-1", RuleAction="deny",
                                            Egress=False, CidrBlock="0.0.0.0/0"),
         "InvalidParameterValue"),
        (ec2.create_network_acl_entry, dict(RuleNumber=140, Protocol="6", RuleAction="allow",
                                            Egress=False, CidrBlock="0.0.0.0/0"),
         "MissingParameter"),
        (ec2.create_network_acl_entry, dict(RuleNumber=140, Protocol="tcpp", RuleAction="allow",
                                            Egress=False, CidrBlock="0.0.0.0/0",
                                            PortRange={"From": 1, "To": 2}),
         "InvalidParameterValue"),
        (ec2.create_network_acl_entry, dict(RuleNumber=140, Protocol="-1", RuleAction="allow",
                                            Egress=False, CidrBlock="10.0.0.1/8"),
         "InvalidParameterValue"),
        (ec2.create_network_acl_entry, dict(RuleNumber=140, Protocol="-1", RuleAction="allow",
                                            Egress=False), "MissingParameter"),
        (ec2.delete_network_acl_entry, dict(RuleNumber=130, Egress=False),
         "InvalidNetworkAclEntry.NotFound"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(NetworkAclId=acl_id, **kwargs)
        assert error_code(e) == code, kwargs
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_acl_entry(NetworkAclId="acl-0123456789abcdef0", RuleNumber=1,
                                     Protocol="-1", RuleAction="allow", Egress=False,
                                     CidrBlock="0.0.0.0/0")
    assert error_code(e) == "InvalidNetworkAclID.NotFound"

    ec2.replace_network_acl_entry(NetworkAclId=acl_id, RuleNumber=110, Protocol="17",
                                  RuleAction="deny", Egress=False, CidrBlock="192.168.0.0/16",
                                  PortRange={"From": 53, "To": 53})
    aws("ec2", "delete-network-acl-entry", "--network-acl-id", acl_id, "--rule-number", "120",
        "--ingress")
    got = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    assert entries(got, False) == [(110, "deny", "17", "192.168.0.0/16"),
                                   (32767, "deny", "-1", "0.0.0.0/0"),
                                   (32768, "deny", "-1", "::/0")]


def test_associations_and_deletion(ec2, aws, net):
    acl_id = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    owner, first = association_of(ec2, net["a"])
    assert owner == net["default"]["NetworkAclId"]
    moved = ec2.replace_network_acl_association(AssociationId=first, NetworkAclId=acl_id)[
        "NewAssociationId"]
    assert moved.startswith("aclassoc-") and moved != first
    assert association_of(ec2, net["a"]) == (acl_id, moved)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.replace_network_acl_association(AssociationId=first, NetworkAclId=acl_id)
    assert error_code(e) == "InvalidAssociationID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_network_acl(NetworkAclId=acl_id)
    assert error_code(e) == "DependencyViolation"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_network_acl(NetworkAclId=net["default"]["NetworkAclId"])
    assert error_code(e) == "InvalidParameterValue"
    foreign = ec2.create_network_acl(VpcId=net["other"])["NetworkAcl"]["NetworkAclId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.replace_network_acl_association(AssociationId=moved, NetworkAclId=foreign)
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.replace_network_acl_association(AssociationId=moved, NetworkAclId="acl-0123456789abcdef0")
    assert error_code(e) == "InvalidNetworkAclID.NotFound"

    back = aws("ec2", "replace-network-acl-association", "--association-id", moved,
               "--network-acl-id", net["default"]["NetworkAclId"])["NewAssociationId"]
    assert back not in (first, moved)
    aws("ec2", "delete-network-acl", "--network-acl-id", acl_id)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_acls(NetworkAclIds=[acl_id])
    assert error_code(e) == "InvalidNetworkAclID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_network_acl(NetworkAclId=acl_id)
    assert error_code(e) == "InvalidNetworkAclID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_acl(VpcId="vpc-0123456789abcdef0")
    assert error_code(e) == "InvalidVpcID.NotFound"


def test_describe_filters(ec2, aws, net):
    acl_id = ec2.create_network_acl(
        VpcId=net["vpc"], TagSpecifications=[{"ResourceType": "network-acl",
                                              "Tags": [{"Key": "Name", "Value": "filtered"}]}]
    )["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=77, Protocol="6",
                                 RuleAction="allow", Egress=True, CidrBlock="10.9.0.0/16",
                                 PortRange={"From": 22, "To": 22})
    _, assoc = association_of(ec2, net["b"])
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl_id)

    def ids(*filters):
        found = ec2.describe_network_acls(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["NetworkAcls"]
        return {a["NetworkAclId"] for a in found}

    default = net["default"]["NetworkAclId"]
    assert ids(("network-acl-id", [acl_id])) == {acl_id}
    assert acl_id in ids(("vpc-id", [net["vpc"]])) and default in ids(("vpc-id", [net["vpc"]]))
    assert ids(("vpc-id", [net["vpc"]]), ("default", ["false"])) >= {acl_id}
    assert default not in ids(("default", ["false"]))
    assert ids(("association.subnet-id", [net["b"]])) == {acl_id}
    assert ids(("entry.rule-number", ["77"])) == {acl_id}
    assert ids(("entry.rule-number", ["78"])) == set()
    # Each filter is matched against the whole ACL (any entry), as in AWS.
    assert ids(("entry.rule-number", ["77"]), ("entry.egress", ["true"])) == {acl_id}
    assert ids(("entry.port-range.from", ["22"]), ("entry.protocol", ["6"])) == {acl_id}
    assert ids(("entry.cidr", ["10.9.0.0/16"])) == {acl_id}
    assert acl_id in ids(("entry.rule-number", ["32767"]))
    assert ids(("tag:Name", ["filt*"])) == {acl_id}
    out = aws("ec2", "describe-network-acls", "--filters", "Name=entry.rule-action,Values=allow",
              "Name=entry.rule-number,Values=77")
    assert [a["NetworkAclId"] for a in out["NetworkAcls"]] == [acl_id]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_network_acls(Filters=[{"Name": "entry.bogus", "Values": ["1"]}])
    assert error_code(e) == "InvalidParameterValue"


def test_acl_changes_publish_a_new_generation(ec2, palisade, net):
    acl_id = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    generation = palisade.metric("palisade_policy_generation")
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=10, Protocol="-1",
                                 RuleAction="deny", Egress=False, CidrBlock="10.66.0.0/16")
    assert palisade.metric("palisade_policy_generation") == generation + 1
    _, assoc = association_of(ec2, net["a"])
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl_id)
    assert palisade.metric("palisade_policy_generation") == generation + 2
    ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=10, Egress=False)
    assert palisade.metric("palisade_policy_generation") == generation + 3
    # A refused change publishes nothing.
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.delete_network_acl(NetworkAclId=acl_id)
    assert palisade.metric("palisade_policy_generation") == generation + 3
