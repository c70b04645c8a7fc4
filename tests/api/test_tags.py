"""CreateTags / DeleteTags / DescribeTags through boto3 and the AWS CLI, and
TagSpecification on the create calls."""

import botocore.exceptions
import pytest

from conftest import error_code


@pytest.fixture(scope="module")
def res(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tagged", Description="d", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="10.80.1.10",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "palisade:port", "Value": "eni-c"}, {"Key": "Name", "Value": "tagged-eni"}]}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    return {"vpc": vpc, "subnet": subnet, "group": group, "eni": eni}


def tags(ec2, *filters):
    found = ec2.describe_tags(Filters=[{"Name": n, "Values": v} for n, v in filters])["Tags"]
    return {(t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in found}


def test_create_and_describe(ec2, aws, res):
    aws("ec2", "create-tags", "--resources", res["vpc"], res["subnet"], res["group"],
        "--tags", "Key=env,Value=prod", "Key=owner,Value=net")
    got = tags(ec2, ("key", ["env"]))
    assert {(res["vpc"], "vpc", "env", "prod"), (res["subnet"], "subnet", "env", "prod"),
            (res["group"], "security-group", "env", "prod")} <= got
    assert tags(ec2, ("resource-id", [res["subnet"]])) == {
        (res["subnet"], "subnet", "env", "prod"), (res["subnet"], "subnet", "owner", "net")}
    assert {t[0] for t in tags(ec2, ("resource-type", ["security-group"]), ("value", ["net"]))} == {res["group"]}
    assert {t[2] for t in tags(ec2, ("resource-id", [res["vpc"]]), ("tag:owner", ["net"]))} == {"env", "owner"}
    # The binding of an interface shows up as tags of a network-interface.
    eni_tags = tags(ec2, ("resource-id", [res["eni"]]))
    assert (res["eni"], "network-interface", "palisade:port", "eni-c") in eni_tags
    assert (res["eni"], "network-interface", "Name", "tagged-eni") in eni_tags
    # Overwrite.
    ec2.create_tags(Resources=[res["vpc"]], Tags=[{"Key": "env", "Value": "staging"}])
    assert tags(ec2, ("resource-id", [res["vpc"]]), ("key", ["env"])) == {
        (res["vpc"], "vpc", "env", "staging")}
    out = aws("ec2", "describe-tags", "--filters", f"Name=resource-id,Values={res['subnet']}",
              "Name=key,Values=own*")
    assert [(t["Key"], t["Value"]) for t in out["Tags"]] == [("owner", "net")]


def test_delete_by_key_by_value_and_all(ec2, aws, res):
    sg = res["group"]
    ec2.create_tags(Resources=[sg], Tags=[{"Key": k, "Value": v} for k, v in
                                          [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]])
    ec2.delete_tags(Resources=[sg], Tags=[{"Key": "a", "Value": "other"}])
    assert ("a", "1") in {(t[2], t[3]) for t in tags(ec2, ("resource-id", [sg]))}
    ec2.delete_tags(Resources=[sg], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b"}])
    assert {t[2] for t in tags(ec2, ("resource-id", [sg]))} >= {"c", "d"}
    assert not {"a", "b"} & {t[2] for t in tags(ec2, ("resource-id", [sg]))}
    aws("ec2", "delete-tags", "--resources", sg)
    assert tags(ec2, ("resource-id", [sg])) == set()


@pytest.mark.parametrize("resource, tag, code", [
    ("vpc-0123456789abcdef0", {"Key": "k", "Value": "v"}, "InvalidID"),
    (None, {"Key": "aws:x", "Value": "v"}, "InvalidParameterValue"),
    (None, {"Key": "palisade:port", "Value": "v"}, "InvalidParameterValue"),
    (None, {"Key": "k" * 128, "Value": "v"}, "InvalidParameterValue"),
    (None, {"Key": "k", "Value": "v" * 256}, "InvalidParameterValue"),
])
def test_create_errors(ec2, res, resource, tag, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[resource or res["vpc"]], Tags=[tag])
    assert error_code(e) == code


def test_limits_paging_and_request_errors(ec2, res, signed):
    subnet = res["subnet"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert error_code(e) == "TagLimitExceeded"
    ec2.create_tags(Resources=[subnet], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(12)])
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}],
                                 MaxResults=5, **kwargs)
        seen += [t["Key"] for t in page["Tags"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert pages >= 3 and len(seen) == len(set(seen)) and {f"k{i}" for i in range(12)} <= set(seen)
    assert signed({"Action": "CreateTags", "Tag.1.Key": "k", "Tag.1.Value": "v"}).code == "MissingParameter"
    assert signed({"Action": "CreateTags", "ResourceId.1": subnet}).code == "MissingParameter"
    assert signed({"Action": "DescribeTags", "Filter.1.Name": "bogus",
                   "Filter.1.Value.1": "x"}).code == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": "x", "Value": "y"}], DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert tags(ec2, ("resource-id", [subnet]), ("key", ["x"])) == set()


def test_tag_specifications_on_the_new_creates(ec2, res):
    spec = lambda kind: [{"ResourceType": kind, "Tags": [{"Key": "made-by", "Value": "spec"}]}]
    acl = ec2.create_network_acl(VpcId=res["vpc"], TagSpecifications=spec("network-acl"))
    pl = ec2.create_managed_prefix_list(PrefixListName="spec", MaxEntries=1, AddressFamily="IPv4",
                                        TagSpecifications=spec("prefix-list"))
    got = {t[0] for t in tags(ec2, ("key", ["made-by"]))}
    assert {acl["NetworkAcl"]["NetworkAclId"], pl["PrefixList"]["PrefixListId"]} <= got
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_network_acl(VpcId=res["vpc"], TagSpecifications=spec("vpc"))
    assert error_code(e) == "InvalidParameterValue"


def test_tag_specifications_on_authorize_tag_every_new_rule(ec2, aws, res):
    spec = [{"ResourceType": "security-group-rule", "Tags": [{"Key": "Name", "Value": "ssh"}]}]
    out = ec2.authorize_security_group_ingress(
        GroupId=res["group"], TagSpecifications=spec,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "10.1.0.0/16"}, {"CidrIp": "10.2.0.0/16"}]}])
    created = out["SecurityGroupRules"]
    assert len(created) == 2
    assert all(r["Tags"] == [{"Key": "Name", "Value": "ssh"}] for r in created)
    ids = {r["SecurityGroupRuleId"] for r in created}
    described = ec2.describe_security_group_rules(Filters=[{"Name": "tag:Name", "Values": ["ssh"]}])
    assert {r["SecurityGroupRuleId"] for r in described["SecurityGroupRules"]} == ids
    assert {(t[0], t[1]) for t in tags(ec2, ("resource-type", ["security-group-rule"]))} == {
        (i, "security-group-rule") for i in ids}
    # The CLI's egress form, and the rule ids are ordinary CreateTags targets.
    egress = aws("ec2", "authorize-security-group-egress", "--group-id", res["group"],
                 "--ip-permissions", "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.3.0.0/16}]",
                 "--tag-specifications", "ResourceType=security-group-rule,Tags=[{Key=dns,Value=yes}]")
    egress_id = egress["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    assert egress["SecurityGroupRules"][0]["Tags"] == [{"Key": "dns", "Value": "yes"}]
    aws("ec2", "create-tags", "--resources", egress_id, "--tags", "Key=more,Value=1")
    assert {t[2] for t in tags(ec2, ("resource-id", [egress_id]))} == {"dns", "more"}

    # A revoked rule's tags go with it.
    ec2.revoke_security_group_ingress(GroupId=res["group"], SecurityGroupRuleIds=sorted(ids))
    ec2.revoke_security_group_egress(GroupId=res["group"], SecurityGroupRuleIds=[egress_id])
    assert tags(ec2, ("resource-type", ["security-group-rule"])) == set()


def test_tag_specifications_on_authorize_refuse_bad_tags_and_write_no_rule(ec2, res):
    before = ec2.describe_security_groups(GroupIds=[res["group"]])["SecurityGroups"][0]["IpPermissions"]
    permission = [{"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}]
    for spec, code in [
        ([{"ResourceType": "security-group", "Tags": [{"Key": "a", "Value": "b"}]}], "InvalidParameterValue"),
        ([{"ResourceType": "security-group-rule", "Tags": [{"Key": "aws:x", "Value": "b"}]}], "InvalidParameterValue"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.authorize_security_group_ingress(GroupId=res["group"], TagSpecifications=spec,
                                                 IpPermissions=permission)
        assert error_code(e) == code
    after = ec2.describe_security_groups(GroupIds=[res["group"]])["SecurityGroups"][0]["IpPermissions"]
    assert after == before
