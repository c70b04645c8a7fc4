"""The ManagedPrefixList actions through boto3 and the AWS CLI: versions,
entries with descriptions, families, size, in-use deletion, filters."""

import botocore.exceptions
import pytest

from conftest import ACCOUNT, REGION, error_code


def entries_of(ec2, pl):
    return {e["Cidr"]: e.get("Description") for e in
            ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]}


def test_create_describe_and_get_entries(ec2):
    pl = ec2.create_managed_prefix_list(
        PrefixListName="office", MaxEntries=3, AddressFamily="IPv4",
        Entries=[{"Cidr": "10.0.0.0/8", "Description": "hq"}, {"Cidr": "192.168.0.0/16"}],
        TagSpecifications=[{"ResourceType": "prefix-list", "Tags": [{"Key": "env", "Value": "prod"}]}],
    )["PrefixList"]
    assert pl["PrefixListId"].startswith("pl-")
    assert pl["State"] == "create-complete" and pl["Version"] == 1
    assert pl["AddressFamily"] == "IPv4" and pl["MaxEntries"] == 3
    assert pl["OwnerId"] == ACCOUNT
    assert pl["PrefixListArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:prefix-list/{pl['PrefixListId']}"
    assert pl["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert entries_of(ec2, pl["PrefixListId"]) == {"10.0.0.0/8": "hq", "192.168.0.0/16": None}

    listed = ec2.describe_managed_prefix_lists(PrefixListIds=[pl["PrefixListId"]])["PrefixLists"]
    assert [p["PrefixListName"] for p in listed] == ["office"]

    def names(*filters):
        found = ec2.describe_managed_prefix_lists(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["PrefixLists"]
        return {p["PrefixListName"] for p in found}

    # The configuration seeded "corp".
    assert {"office", "corp"} <= names(("owner-id", [ACCOUNT]))
    assert names(("prefix-list-name", ["off*"])) == {"office"}
    assert names(("prefix-list-id", [pl["PrefixListId"]])) == {"office"}
    assert names(("tag:env", ["prod"])) == {"office"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_managed_prefix_lists(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_managed_prefix_lists(PrefixListIds=["pl-0123456789abcdef0"])
    assert error_code(e) == "InvalidPrefixListID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.get_managed_prefix_list_entries(PrefixListId="pl-0123456789abcdef0")
    assert error_code(e) == "InvalidPrefixListID.NotFound"


@pytest.mark.parametrize("kwargs, code", [
    (dict(AddressFamily="IPv4", MaxEntries=2, Entries=[{"Cidr": "2001:db8::/32"}]),
     "InvalidParameterValue"),
    (dict(AddressFamily="IPv4", MaxEntries=1, Entries=[{"Cidr": "10.0.0.0/8"}, {"Cidr": "10.1.0.0/16"}]),
     "PrefixListMaxEntriesExceeded"),
    (dict(AddressFamily="IPv4", MaxEntries=2, Entries=[{"Cidr": "10.0.0.1/8"}]), "InvalidParameterValue"),
    (dict(AddressFamily="IPv5", MaxEntries=2), "InvalidParameterValue"),
    (dict(AddressFamily="IPv4", MaxEntries=0), "InvalidParameterValue"),
    (dict(AddressFamily="IPv4", MaxEntries=1001), "InvalidParameterValue"),
    (dict(AddressFamily="IPv4", MaxEntries=2, Entries=[{"Cidr": "10.0.0.0/8", "Description": "d" * 256}]),
     "InvalidParameterValue"),
])
def test_create_errors(ec2, kwargs, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_managed_prefix_list(PrefixListName="bad", **kwargs)
    assert error_code(e) == code


def test_modify_checks_versions_entries_and_size(ec2, aws):
    pl = ec2.create_managed_prefix_list(PrefixListName="branches", MaxEntries=2, AddressFamily="IPv4",
                                        Entries=[{"Cidr": "10.1.0.0/16", "Description": "a"}]
                                        )["PrefixList"]["PrefixListId"]
    got = ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1,
                                         AddEntries=[{"Cidr": "10.2.0.0/16", "Description": "b"}],
                                         RemoveEntries=[{"Cidr": "10.1.0.0/16"}])["PrefixList"]
    assert got["Version"] == 2 and got["State"] == "modify-complete"
    assert entries_of(ec2, pl) == {"10.2.0.0/16": "b"}
    for kwargs, code in [
        (dict(CurrentVersion=1, AddEntries=[{"Cidr": "10.3.0.0/16"}]), "PrefixListVersionMismatch"),
        (dict(RemoveEntries=[{"Cidr": "10.9.0.0/16"}]), "InvalidPrefixListModification"),
        (dict(AddEntries=[{"Cidr": "10.3.0.0/16"}, {"Cidr": "10.4.0.0/16"}]),
         "PrefixListMaxEntriesExceeded"),
        (dict(AddEntries=[{"Cidr": "2001:db8::/32"}]), "InvalidParameterValue"),
        (dict(MaxEntries=5, AddEntries=[{"Cidr": "10.3.0.0/16"}]), "InvalidParameterCombination"),
        (dict(PrefixListName="com.amazonaws.mine"), "InvalidParameterValue"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.modify_managed_prefix_list(PrefixListId=pl, **kwargs)
        assert error_code(e) == code, kwargs
    assert entries_of(ec2, pl) == {"10.2.0.0/16": "b"}, "refusals change nothing"

    got = aws("ec2", "modify-managed-prefix-list", "--prefix-list-id", pl, "--max-entries", "4",
              "--prefix-list-name", "all-branches")["PrefixList"]
    assert (got["MaxEntries"], got["PrefixListName"], got["Version"]) == (4, "all-branches", 2)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.get_managed_prefix_list_entries(PrefixListId=pl, TargetVersion=1)
    assert error_code(e) == "InvalidParameterValue"
    assert ec2.get_managed_prefix_list_entries(PrefixListId=pl, TargetVersion=2)["Entries"] == [
        {"Cidr": "10.2.0.0/16", "Description": "b"}]


def test_cli_ipv6_list_and_paged_entries(aws):
    pl = aws("ec2", "create-managed-prefix-list", "--prefix-list-name", "v6", "--max-entries", "3",
             "--address-family", "IPv6", "--entries", "Cidr=2001:db8:1::/48,Description=one",
             "Cidr=2001:db8:2::/48", "Cidr=2001:db8:3::/48")["PrefixList"]
    assert pl["AddressFamily"] == "IPv6"
    page = aws("ec2", "get-managed-prefix-list-entries", "--prefix-list-id", pl["PrefixListId"],
               "--max-items", "2")
    assert len(page["Entries"]) == 2
    every = aws("ec2", "get-managed-prefix-list-entries", "--prefix-list-id", pl["PrefixListId"])
    assert [e["Cidr"] for e in every["Entries"]] == ["2001:db8:1::/48", "2001:db8:2::/48",
                                                     "2001:db8:3::/48"]
    assert every["Entries"][0]["Description"] == "one"


def test_delete_refuses_while_a_rule_names_the_list(ec2, aws):
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="uses-pl", Description="d", VpcId=vpc)["GroupId"]
    pl = ec2.create_managed_prefix_list(PrefixListName="in-use", MaxEntries=2,
                                        AddressFamily="IPv4")["PrefixList"]["PrefixListId"]
    permission = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                  "PrefixListIds": [{"PrefixListId": pl}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_managed_prefix_list(PrefixListId=pl)
    assert error_code(e) == "DependencyViolation"
    # A rule naming the list counts as its maximum size: 61 > the 60-rule quota.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=61)
    assert error_code(e) == "RulesPerSecurityGroupLimitExceeded"
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[permission])
    gone = aws("ec2", "delete-managed-prefix-list", "--prefix-list-id", pl)["PrefixList"]
    assert gone["PrefixListId"] == pl and gone["State"] == "delete-complete"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_managed_prefix_list(PrefixListId=pl)
    assert error_code(e) == "InvalidPrefixListID.NotFound"


def test_entry_changes_publish_a_new_generation(ec2, palisade):
    pl = ec2.create_managed_prefix_list(PrefixListName="live", MaxEntries=2,
                                        AddressFamily="IPv4")["PrefixList"]["PrefixListId"]
    generation = palisade.metric("palisade_policy_generation")
    ec2.modify_managed_prefix_list(PrefixListId=pl, AddEntries=[{"Cidr": "10.7.0.0/16"}])
    assert palisade.metric("palisade_policy_generation") == generation + 1
