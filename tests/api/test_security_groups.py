"""Security groups and their rules: Create/Delete/DescribeSecurityGroups
(with AWS's filters), Authorize/Revoke Ingress/Egress (by permission and
by rule id), DescribeSecurityGroupRules, ModifySecurityGroupRules,
UpdateSecurityGroupRuleDescriptionsIngress/Egress."""

import botocore.exceptions
import pytest

from conftest import ACCOUNT, AwsCliError, error_code, seeded_id


def raises(code, call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value


@pytest.fixture(scope="module")
def vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]


@pytest.fixture(scope="module")
def prefix_list():
    # Seeded from the test configuration (see conftest.CONFIG); the
    # ManagedPrefixList actions are not served yet.
    return seeded_id("pl", "corp")


@pytest.fixture
def group(ec2, vpc, request):
    name = request.node.name[:60]
    created = ec2.create_security_group(
        GroupName=name, Description=f"for {name}", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": name}]}])
    yield created["GroupId"]
    try:
        ec2.delete_security_group(GroupId=created["GroupId"])
    except botocore.exceptions.ClientError:
        pass


def describe(ec2, group_id):
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def rules(ec2, group_id):
    return ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def test_create_answers_id_arn_and_tags_and_starts_with_egress_allow_all(ec2, vpc):
    out = ec2.create_security_group(GroupName="shape", Description="d", VpcId=vpc,
                                    TagSpecifications=[{"ResourceType": "security-group",
                                                        "Tags": [{"Key": "env", "Value": "test"}]}])
    gid = out["GroupId"]
    assert gid.startswith("sg-") and len(gid) == 20
    assert out["SecurityGroupArn"] == f"arn:aws:ec2:eu-central-1:{ACCOUNT}:security-group/{gid}"
    assert out["Tags"] == [{"Key": "env", "Value": "test"}]
    g = describe(ec2, gid)
    assert (g["GroupName"], g["Description"], g["VpcId"], g["OwnerId"]) == ("shape", "d", vpc, ACCOUNT)
    assert g["IpPermissions"] == []
    assert g["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                         "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    ec2.delete_security_group(GroupId=gid)


def test_create_errors(ec2, aws, vpc):
    ec2.create_security_group(GroupName="twice", Description="d", VpcId=vpc)
    raises("InvalidGroup.Duplicate", ec2.create_security_group, GroupName="twice", Description="d", VpcId=vpc)
    raises("InvalidParameterValue", ec2.create_security_group, GroupName="sg-bad", Description="d", VpcId=vpc)
    raises("InvalidParameterValue", ec2.create_security_group, GroupName="x" * 256, Description="d", VpcId=vpc)
    raises("InvalidVpcID.NotFound", ec2.create_security_group, GroupName="n", Description="d",
           VpcId="vpc-00000000000000000")
    raises("VPCIdNotSpecified", ec2.create_security_group, GroupName="n", Description="d")
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "create-security-group", "--group-name", "twice", "--description", "d", "--vpc-id", vpc)
    assert e.value.code == "InvalidGroup.Duplicate"
    ec2.delete_security_group(GroupName="twice")


def test_authorize_ingress_every_peer_kind_and_describe_groups_them(ec2, vpc, group):
    peer = ec2.create_security_group(GroupName="peer-of-ingress", Description="p", VpcId=vpc)["GroupId"]
    out = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "corp"}, {"CidrIp": "192.168.0.0/16"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32", "Description": "v6"}],
         "UserIdGroupPairs": [{"GroupId": peer, "Description": "peers"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5010, "IpRanges": [{"CidrIp": "172.16.0.0/12"}]},
    ])
    assert out["Return"] is True
    made = out["SecurityGroupRules"]
    assert len(made) == 6
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and r["GroupId"] == group and not r["IsEgress"]
               for r in made)
    by_peer = {r.get("CidrIpv4") or r.get("CidrIpv6") or r["ReferencedGroupInfo"]["GroupId"]: r for r in made}
    assert by_peer["10.0.0.0/8"]["Description"] == "corp"
    assert by_peer[peer]["ReferencedGroupInfo"]["UserId"] == ACCOUNT
    assert (by_peer["0.0.0.0/0"]["FromPort"], by_peer["0.0.0.0/0"]["ToPort"]) == (8, -1)

    perms = {(p["IpProtocol"], p.get("FromPort")): p for p in describe(ec2, group)["IpPermissions"]}
    tcp = perms[("tcp", 443)]
    assert tcp["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "corp"}, {"CidrIp": "192.168.0.0/16"}]
    assert tcp["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32", "Description": "v6"}]
    assert tcp["UserIdGroupPairs"] == [{"GroupId": peer, "UserId": ACCOUNT, "Description": "peers"}]
    assert perms[("udp", 5000)]["ToPort"] == 5010
    assert perms[("icmp", 8)]["ToPort"] == -1
    # The referenced group cannot be deleted while referenced.
    raises("DependencyViolation", ec2.delete_security_group, GroupId=peer)
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": peer}]}])
    ec2.delete_security_group(GroupId=peer)


def test_authorize_with_a_prefix_list_and_the_legacy_cli_form(ec2, aws, group, prefix_list):
    aws("ec2", "authorize-security-group-ingress", "--group-id", group,
        "--protocol", "tcp", "--port", "22", "--cidr", "203.0.113.0/24")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "PrefixListIds": [{"PrefixListId": prefix_list, "Description": "corp"}]}])
    perms = describe(ec2, group)["IpPermissions"]
    assert perms == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}],
         "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [], "Ipv6Ranges": [],
         "PrefixListIds": [{"PrefixListId": prefix_list, "Description": "corp"}], "UserIdGroupPairs": []},
    ]
    found = ec2.describe_security_groups(Filters=[
        {"Name": "ip-permission.prefix-list-id", "Values": [prefix_list]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [group]
    rule = next(r for r in rules(ec2, group) if r.get("PrefixListId"))
    assert rule["PrefixListId"] == prefix_list


def test_authorize_errors_write_nothing(ec2, aws, group):
    ok = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ok])
    before = describe(ec2, group)

    def refused(code, *permissions, group_id=group):
        raises(code, ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=list(permissions))

    refused("InvalidPermission.Duplicate", ok)
    # All or nothing: a good permission next to a bad one is not added.
    good = {"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    refused("InvalidParameterValue", good, {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
                                            "IpRanges": [{"CidrIp": "10.0.0.1/8"}]})
    refused("InvalidParameterValue", {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80,
                                      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    refused("InvalidParameterValue", {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 70000,
                                      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    refused("InvalidParameterValue", {"IpProtocol": "icmp", "FromPort": -1, "ToPort": 3,
                                      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    refused("InvalidParameterValue", {"IpProtocol": "bogus", "FromPort": 1, "ToPort": 1,
                                      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    refused("MissingParameter", {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    refused("MissingParameter", {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1})
    refused("InvalidGroup.NotFound", {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
                                      "UserIdGroupPairs": [{"GroupId": "sg-00000000000000000"}]})
    refused("InvalidGroup.NotFound", ok, group_id="sg-00000000000000000")
    refused("InvalidGroupId.Malformed", ok, group_id="web-servers")
    assert describe(ec2, group) == before
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "authorize-security-group-ingress", "--group-id", group,
            "--protocol", "tcp", "--port", "80", "--cidr", "10.0.0.0/8")
    assert e.value.code == "InvalidPermission.Duplicate"


def test_malformed_rule_parameters_by_hand(signed, group):
    def call(**extra):
        params = {"Action": "AuthorizeSecurityGroupIngress", "GroupId": group}
        params.update(extra)
        return signed(params)

    assert call(**{"IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "eighty",
                   "IpPermissions.1.ToPort": "80", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"}
                ).code == "InvalidParameterValue"
    assert call(IpProtocol="tcp", FromPort="80", ToPort="80", CidrIp="10.0.0.0/8",
                **{"IpPermissions.1.IpProtocol": "udp"}).code == "InvalidParameterCombination"
    assert call(**{"IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "1",
                   "IpPermissions.1.ToPort": "1", "IpPermissions.1.IpRanges.1.CidrIp": "2001:db8::/32"}
                ).code == "InvalidParameterValue"
    assert signed({"Action": "AuthorizeSecurityGroupIngress"}).code == "MissingParameter"
    assert call(Bogus="1").code == "UnknownParameter"


def test_egress_authorize_and_revoke_by_permission_and_by_id(ec2, group):
    allow_all = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[allow_all])
    assert describe(ec2, group)["IpPermissionsEgress"] == []
    made = ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]},
    ])["SecurityGroupRules"]
    assert all(r["IsEgress"] for r in made)
    dns = next(r for r in made if r["IpProtocol"] == "udp")
    out = ec2.revoke_security_group_egress(GroupId=group, SecurityGroupRuleIds=[dns["SecurityGroupRuleId"]])
    assert out["Return"] is True
    assert [r["SecurityGroupRuleId"] for r in out["RevokedSecurityGroupRules"]] == [dns["SecurityGroupRuleId"]]
    egress = describe(ec2, group)["IpPermissionsEgress"]
    assert [(p["IpProtocol"], p["FromPort"]) for p in egress] == [("tcp", 443)]
    raises("InvalidSecurityGroupRuleId.NotFound", ec2.revoke_security_group_egress,
           GroupId=group, SecurityGroupRuleIds=[dns["SecurityGroupRuleId"]])
    raises("InvalidPermission.NotFound", ec2.revoke_security_group_egress, GroupId=group,
           IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443,
                           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    raises("InvalidParameterCombination", ec2.revoke_security_group_egress, GroupId=group,
           SecurityGroupRuleIds=[made[0]["SecurityGroupRuleId"]], IpPermissions=[allow_all])


def test_revoke_ingress_with_the_cli_and_by_rule_id(ec2, aws, group):
    aws("ec2", "authorize-security-group-ingress", "--group-id", group,
        "--ip-permissions", "IpProtocol=tcp,FromPort=8080,ToPort=8080,IpRanges=[{CidrIp=10.1.0.0/16}]",
        "IpProtocol=tcp,FromPort=9090,ToPort=9090,IpRanges=[{CidrIp=10.2.0.0/16}]")
    rule_ids = {r["FromPort"]: r["SecurityGroupRuleId"] for r in rules(ec2, group) if not r["IsEgress"]}
    out = aws("ec2", "revoke-security-group-ingress", "--group-id", group,
              "--security-group-rule-ids", rule_ids[9090])
    assert out["Return"] is True
    aws("ec2", "revoke-security-group-ingress", "--group-id", group,
        "--protocol", "tcp", "--port", "8080", "--cidr", "10.1.0.0/16")
    assert describe(ec2, group)["IpPermissions"] == []
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "revoke-security-group-ingress", "--group-id", group,
            "--protocol", "tcp", "--port", "8080", "--cidr", "10.1.0.0/16")
    assert e.value.code == "InvalidPermission.NotFound"


def test_describe_security_groups_filters(ec2, vpc, group):
    other = ec2.create_security_group(GroupName="filter-other", Description="other desc", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/48"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": other}]},
    ])
    ec2.authorize_security_group_egress(GroupId=other, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.30.5.0/24"}]}])

    def found(*filters, **kwargs):
        got = ec2.describe_security_groups(Filters=[{"Name": n, "Values": v} for n, v in filters], **kwargs)
        return {g["GroupId"] for g in got["SecurityGroups"]}

    in_vpc = ("vpc-id", [vpc])
    assert found(in_vpc, ("group-id", [group])) == {group}
    assert found(in_vpc, ("group-name", ["filter-*"])) == {other}
    assert found(in_vpc, ("description", ["other desc"])) == {other}
    assert found(in_vpc, ("owner-id", [ACCOUNT])) >= {group, other}
    assert found(in_vpc, ("tag:Name", ["test_describe_security_groups_filters"])) == {group}
    assert found(in_vpc, ("tag-key", ["Name"])) >= {group}
    assert found(in_vpc, ("ip-permission.cidr", ["198.51.100.0/24"])) == {group}
    assert found(in_vpc, ("ip-permission.from-port", ["22"])) == {group}
    assert found(in_vpc, ("ip-permission.to-port", ["53"])) == {group}
    assert found(in_vpc, ("ip-permission.protocol", ["udp"])) == {group}
    assert found(in_vpc, ("ip-permission.ipv6-cidr", ["2001:db8::/48"])) == {group}
    assert found(in_vpc, ("ip-permission.group-id", [other])) == {group}
    assert found(in_vpc, ("ip-permission.group-name", ["filter-other"])) == {group}
    assert found(in_vpc, ("egress.ip-permission.cidr", ["10.30.5.0/24"])) == {other}
    assert found(in_vpc, ("egress.ip-permission.from-port", ["5432"])) == {other}
    assert found(in_vpc, ("egress.ip-permission.protocol", ["tcp"])) == {other}
    assert found(in_vpc, ("ip-permission.cidr", ["198.51.100.0/24"]), ("ip-permission.protocol", ["udp"])) == {group}
    assert found(in_vpc, ("ip-permission.cidr", ["198.51.100.0/24"]), ("group-name", ["nope"])) == set()
    assert found(GroupNames=["filter-other"]) == {other}
    raises("InvalidParameterValue", ec2.describe_security_groups, Filters=[{"Name": "colour", "Values": ["x"]}])
    raises("InvalidGroup.NotFound", ec2.describe_security_groups, GroupNames=["no-such-group"])
    raises("InvalidGroup.NotFound", ec2.describe_security_groups, GroupIds=["sg-00000000000000000"])
    raises("InvalidGroupId.Malformed", ec2.describe_security_groups, GroupIds=["default"])
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": other}]}])
    ec2.delete_security_group(GroupId=other)


def test_an_unknown_prefix_list_is_refused(signed, group):
    r = signed({"Action": "AuthorizeSecurityGroupIngress", "GroupId": group,
                "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "443",
                "IpPermissions.1.ToPort": "443",
                "IpPermissions.1.PrefixListIds.1.PrefixListId": "pl-00000000000000000"})
    assert (r.status, r.code) == (400, "InvalidPrefixListID.NotFound")


def test_describe_security_group_rules_and_pages(ec2, signed, group):
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        for p in range(1000, 1007)])
    mine = rules(ec2, group)
    assert len(mine) == 8  # seven ingress, the default egress
    one = mine[0]
    assert ec2.describe_security_group_rules(SecurityGroupRuleIds=[one["SecurityGroupRuleId"]])[
        "SecurityGroupRules"] == [one]
    assert ec2.describe_security_group_rules(Filters=[
        {"Name": "security-group-rule-id", "Values": [one["SecurityGroupRuleId"]]}])["SecurityGroupRules"] == [one]
    assert one["GroupOwnerId"] == ACCOUNT and one["SecurityGroupRuleArn"].endswith(one["SecurityGroupRuleId"])
    seen = []
    paginator = ec2.get_paginator("describe_security_group_rules")
    for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group]}],
                                   PaginationConfig={"PageSize": 5}):
        assert len(page["SecurityGroupRules"]) <= 5
        seen.extend(r["SecurityGroupRuleId"] for r in page["SecurityGroupRules"])
    assert sorted(seen) == sorted(r["SecurityGroupRuleId"] for r in mine)
    raises("InvalidSecurityGroupRuleId.NotFound", ec2.describe_security_group_rules,
           SecurityGroupRuleIds=["sgr-00000000000000000"])
    raises("InvalidParameterValue", ec2.describe_security_group_rules,
           Filters=[{"Name": "ip-protocol", "Values": ["tcp"]}])
    assert signed({"Action": "DescribeSecurityGroupRules", "MaxResults": "1"}).code == "InvalidParameterValue"


def test_modify_security_group_rules(ec2, aws, group):
    made = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    ])["SecurityGroupRules"]
    first, second = made[0]["SecurityGroupRuleId"], made[1]["SecurityGroupRuleId"]
    out = ec2.modify_security_group_rules(GroupId=group, SecurityGroupRules=[{
        "SecurityGroupRuleId": first,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8081,
                              "CidrIpv4": "172.16.0.0/12", "Description": "moved"}}])
    assert out["Return"] is True
    after = ec2.describe_security_group_rules(SecurityGroupRuleIds=[first])["SecurityGroupRules"][0]
    assert (after["FromPort"], after["ToPort"], after["CidrIpv4"], after["Description"]) == (
        8080, 8081, "172.16.0.0/12", "moved")
    # Becoming a duplicate of another rule, an unknown id, two peers: refused.
    raises("InvalidPermission.Duplicate", ec2.modify_security_group_rules, GroupId=group, SecurityGroupRules=[{
        "SecurityGroupRuleId": first,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "CidrIpv4": "10.0.0.0/8"}}])
    raises("InvalidSecurityGroupRuleId.NotFound", ec2.modify_security_group_rules, GroupId=group,
           SecurityGroupRules=[{"SecurityGroupRuleId": "sgr-00000000000000000", "SecurityGroupRule": {
               "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}}])
    raises("InvalidParameterCombination", ec2.modify_security_group_rules, GroupId=group, SecurityGroupRules=[{
        "SecurityGroupRuleId": second, "SecurityGroupRule": {
            "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8", "CidrIpv6": "::/0"}}])
    unchanged = ec2.describe_security_group_rules(SecurityGroupRuleIds=[second])["SecurityGroupRules"][0]
    assert unchanged["FromPort"] == 81
    aws("ec2", "modify-security-group-rules", "--group-id", group, "--security-group-rules",
        f"SecurityGroupRuleId={second},SecurityGroupRule={{IpProtocol=udp,FromPort=53,ToPort=53,CidrIpv4=10.0.0.2/32}}")
    assert ec2.describe_security_group_rules(SecurityGroupRuleIds=[second])["SecurityGroupRules"][0][
        "IpProtocol"] == "udp"


def test_update_rule_descriptions_ingress_and_egress(ec2, aws, group):
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    out = ec2.update_security_group_rule_descriptions_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "admins"}]}])
    assert out["Return"] is True
    assert describe(ec2, group)["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "admins"}]
    egress_id = next(r["SecurityGroupRuleId"] for r in rules(ec2, group) if r["IsEgress"])
    aws("ec2", "update-security-group-rule-descriptions-egress", "--group-id", group,
        "--security-group-rule-descriptions", f"SecurityGroupRuleId={egress_id},Description=anywhere")
    assert describe(ec2, group)["IpPermissionsEgress"][0]["IpRanges"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "anywhere"}]
    raises("InvalidPermission.NotFound", ec2.update_security_group_rule_descriptions_ingress, GroupId=group,
           IpPermissions=[{"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23,
                           "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "x"}]}])
    raises("InvalidSecurityGroupRuleId.NotFound", ec2.update_security_group_rule_descriptions_egress,
           GroupId=group, SecurityGroupRuleDescriptions=[{"SecurityGroupRuleId": "sgr-00000000000000000",
                                                          "Description": "x"}])
    raises("InvalidParameterValue", ec2.update_security_group_rule_descriptions_egress,
           GroupId=group, SecurityGroupRuleDescriptions=[{"SecurityGroupRuleId": egress_id,
                                                          "Description": "x" * 256}])


def test_delete_rules(ec2, aws, vpc):
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                    {"Name": "group-name", "Values": ["default"]}])
    default_id = default["SecurityGroups"][0]["GroupId"]
    raises("CannotDelete", ec2.delete_security_group, GroupId=default_id)
    raises("InvalidGroup.NotFound", ec2.delete_security_group, GroupId="sg-00000000000000000")
    raises("InvalidGroupId.Malformed", ec2.delete_security_group, GroupId="nope")
    raises("InvalidGroup.NotFound", ec2.delete_security_group, GroupName="no-such-name")
    ec2.create_security_group(GroupName="by-name", Description="d", VpcId=vpc)
    out = aws("ec2", "delete-security-group", "--group-name", "by-name")
    assert out["Return"] is True
    raises("InvalidGroup.NotFound", ec2.describe_security_groups, GroupNames=["by-name"])
