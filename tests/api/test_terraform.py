"""Terraform's AWS provider against palisade (issue #5): create, read,
plan cleanly (no diff after apply), change one rule, and destroy VPCs,
subnets, security groups, their rules (inline, per-rule and legacy) and a
network ACL.

Needs Terraform on PATH (or `PALISADE_TERRAFORM`) and the AWS provider in a
filesystem mirror (`PALISADE_TF_PLUGINS`, default `/opt/tf-plugins`); the
test skips, naming what is missing, where they are not installed. Each
terraform run logs at DEBUG to `terraform-*.log` in the test's tmp_path
(kept by pytest), which shows every EC2 call and the answer the provider
could not use.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY

PROVIDER_VERSION = "5.100.0"
PLUGINS = pathlib.Path(os.environ.get("PALISADE_TF_PLUGINS", "/opt/tf-plugins"))
PROVIDER_DIR = PLUGINS / "registry.terraform.io" / "hashicorp" / "aws" / PROVIDER_VERSION / "linux_amd64"


def terraform_binary():
    """The terraform to run, or why there is none."""
    explicit = os.environ.get("PALISADE_TERRAFORM")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit, None
        return None, f"PALISADE_TERRAFORM={explicit} is not an executable"
    found = shutil.which("terraform")
    return (found, None) if found else (None, "terraform is not installed (not on PATH; PALISADE_TERRAFORM unset)")


CLI_CONFIG = f"""\
provider_installation {{
  filesystem_mirror {{
    path    = "{PLUGINS}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""


def configuration(api_url, changed=False):
    """One module: a VPC (DNS hostnames on, its default group stripped of
    its rules) with a subnet, a group with
    inline rules (web), a group with none whose rules are their own
    resources (app): a group-to-group rule, a CIDR rule, a prefix-list
    rule, a legacy aws_security_group_rule; a managed prefix list and a
    network ACL. `changed` edits one rule of each kind: a per-rule port
    (ModifySecurityGroupRules, same rule id), an inline CIDR added, the
    legacy rule's description, a prefix-list entry added."""
    app_https_port = 8443 if changed else 443
    ssh_cidrs = '"10.0.0.0/8", "192.168.0.0/16"' + (', "172.16.0.0/12"' if changed else "")
    ping_description = 'description       = "ping from the corp net"' if changed else ""
    extra_entry = """
  entry {
    cidr        = "192.0.2.0/24"
    description = "lab"
  }""" if changed else ""
    return f"""\
terraform {{
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = "{PROVIDER_VERSION}"
    }}
  }}
}}

provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "{ACCESS_KEY}"
  secret_key                  = "{SECRET_KEY}"
  endpoints {{
    ec2 = "{api_url}"
    sts = "{api_url}"
  }}
}}

resource "aws_vpc" "main" {{
  cidr_block           = "10.70.0.0/16"
  enable_dns_hostnames = true
  tags = {{
    Name = "tf-main"
  }}
}}

# The usual lock-down: the default group keeps no rules at all.
resource "aws_default_security_group" "locked" {{
  vpc_id = aws_vpc.main.id
}}

resource "aws_subnet" "a" {{
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.70.1.0/24"
  tags = {{
    Name = "tf-a"
  }}
}}

resource "aws_security_group" "web" {{
  name        = "tf-web"
  description = "web tier"
  vpc_id      = aws_vpc.main.id

  ingress {{
    description      = "https"
    from_port        = 443
    to_port          = 443
    protocol         = "tcp"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }}

  ingress {{
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [{ssh_cidrs}]
  }}

  egress {{
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }}

  tags = {{
    Name = "tf-web"
  }}
}}

resource "aws_security_group" "app" {{
  name        = "tf-app"
  description = "app tier"
  vpc_id      = aws_vpc.main.id
}}

resource "aws_vpc_security_group_ingress_rule" "app_from_web" {{
  security_group_id            = aws_security_group.app.id
  referenced_security_group_id = aws_security_group.web.id
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  description                  = "from web"
}}

resource "aws_vpc_security_group_ingress_rule" "app_https" {{
  security_group_id = aws_security_group.app.id
  cidr_ipv4         = "10.70.0.0/16"
  ip_protocol       = "tcp"
  from_port         = {app_https_port}
  to_port           = {app_https_port}
  tags = {{
    Name = "app-https"
  }}
}}

resource "aws_vpc_security_group_egress_rule" "app_all" {{
  security_group_id = aws_security_group.app.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}}

resource "aws_security_group_rule" "app_ping" {{
  type              = "ingress"
  security_group_id = aws_security_group.app.id
  protocol          = "icmp"
  from_port         = 8
  to_port           = 0
  cidr_blocks       = ["10.0.0.0/8"]
  {ping_description}
}}

resource "aws_ec2_managed_prefix_list" "corp" {{
  name           = "tf-corp"
  address_family = "IPv4"
  max_entries    = 5

  entry {{
    cidr        = "198.51.100.0/24"
    description = "office"
  }}
  entry {{
    cidr = "203.0.113.0/24"
  }}{extra_entry}
}}

resource "aws_vpc_security_group_ingress_rule" "app_from_corp" {{
  security_group_id = aws_security_group.app.id
  prefix_list_id    = aws_ec2_managed_prefix_list.corp.id
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}}

resource "aws_network_acl" "main" {{
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.a.id]

  ingress {{
    protocol   = "tcp"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 443
    to_port    = 443
  }}

  egress {{
    protocol   = "-1"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }}

  tags = {{
    Name = "tf-acl"
  }}
}}

output "vpc_id" {{
  value = aws_vpc.main.id
}}
output "subnet_id" {{
  value = aws_subnet.a.id
}}
output "web_id" {{
  value = aws_security_group.web.id
}}
output "app_id" {{
  value = aws_security_group.app.id
}}
output "acl_id" {{
  value = aws_network_acl.main.id
}}
output "default_group_id" {{
  value = aws_default_security_group.locked.id
}}
output "prefix_list_id" {{
  value = aws_ec2_managed_prefix_list.corp.id
}}
output "app_https_rule_id" {{
  value = aws_vpc_security_group_ingress_rule.app_https.security_group_rule_id
}}
"""


class Terraform:
    """terraform in one working directory, with its own CLI config and
    data dir, logging each run to its own file."""

    def __init__(self, binary, directory):
        self.binary = binary
        self.dir = pathlib.Path(directory)
        self.runs = 0
        cli_config = self.dir / "terraformrc"
        cli_config.write_text(CLI_CONFIG)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
        self.env.update({
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_DATA_DIR": str(self.dir / ".terraform"),
            "TF_LOG": "DEBUG",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        })

    def write(self, text):
        (self.dir / "main.tf").write_text(text)

    def __call__(self, *args, ok=(0,)):
        self.runs += 1
        log = self.dir / f"terraform-{self.runs}-{args[0]}.log"
        env = dict(self.env, TF_LOG_PATH=str(log))
        out = subprocess.run([self.binary, *args, "-no-color"], cwd=self.dir, env=env,
                             capture_output=True, text=True, timeout=300)
        if out.returncode not in ok:
            pytest.fail(f"terraform {' '.join(args)} exited {out.returncode} (log: {log}):\n"
                        f"{out.stdout[-6000:]}\n{out.stderr[-6000:]}")
        return out

    def outputs(self):
        out = self("output", "-json")
        return {k: v["value"] for k, v in json.loads(out.stdout).items()}


@pytest.fixture(scope="module")
def terraform(tmp_path_factory):
    binary, missing = terraform_binary()
    if not binary:
        pytest.skip(missing)
    if not PROVIDER_DIR.is_dir():
        pytest.skip(f"the AWS provider {PROVIDER_VERSION} mirror is missing: no {PROVIDER_DIR}")
    return Terraform(binary, tmp_path_factory.mktemp("terraform"))


def group_rules(ec2, group_id):
    return ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def rule_key(rule):
    """A rule as a comparable tuple: direction, protocol, ports, peer."""
    peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
            or rule.get("ReferencedGroupInfo", {}).get("GroupId"))
    return (rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], peer)


def prefix_list_entries(ec2, prefix_list_id):
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=prefix_list_id)["Entries"]
    return sorted((e["Cidr"], e.get("Description", "")) for e in entries)


def test_create_plan_change_and_destroy(terraform, palisade, ec2):
    terraform.write(configuration(palisade.api_url))
    terraform("init", "-input=false")
    terraform("apply", "-auto-approve", "-input=false")
    ids = terraform.outputs()

    vpc = ec2.describe_vpcs(VpcIds=[ids["vpc_id"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.70.0.0/16"
    assert {"Key": "Name", "Value": "tf-main"} in vpc["Tags"]
    hostnames = ec2.describe_vpc_attribute(VpcId=ids["vpc_id"], Attribute="enableDnsHostnames")
    assert hostnames["EnableDnsHostnames"]["Value"] is True
    subnet = ec2.describe_subnets(SubnetIds=[ids["subnet_id"]])["Subnets"][0]
    assert (subnet["VpcId"], subnet["CidrBlock"]) == (ids["vpc_id"], "10.70.1.0/24")
    assert prefix_list_entries(ec2, ids["prefix_list_id"]) == [
        ("198.51.100.0/24", "office"), ("203.0.113.0/24", "")]

    assert group_rules(ec2, ids["default_group_id"]) == []
    web = group_rules(ec2, ids["web_id"])
    assert sorted(rule_key(r) for r in web) == sorted([
        (False, "tcp", 443, 443, "0.0.0.0/0"),
        (False, "tcp", 443, 443, "::/0"),
        (False, "tcp", 22, 22, "10.0.0.0/8"),
        (False, "tcp", 22, 22, "192.168.0.0/16"),
        (True, "-1", -1, -1, "0.0.0.0/0"),
    ])
    assert [r["Description"] for r in web if r["FromPort"] == 443] == ["https", "https"]
    app = group_rules(ec2, ids["app_id"])
    assert sorted(rule_key(r) for r in app) == sorted([
        (False, "tcp", 8080, 8080, ids["web_id"]),
        (False, "tcp", 443, 443, "10.70.0.0/16"),
        (False, "tcp", 5432, 5432, ids["prefix_list_id"]),
        (False, "icmp", 8, 0, "10.0.0.0/8"),
        (True, "-1", -1, -1, "0.0.0.0/0"),
    ])
    https = [r for r in app if r["SecurityGroupRuleId"] == ids["app_https_rule_id"]]
    assert https and https[0]["Tags"] == [{"Key": "Name", "Value": "app-https"}]

    acl = ec2.describe_network_acls(NetworkAclIds=[ids["acl_id"]])["NetworkAcls"][0]
    assert [a["SubnetId"] for a in acl["Associations"]] == [ids["subnet_id"]]
    numbered = sorted((e["Egress"], e["RuleNumber"], e["Protocol"], e["RuleAction"])
                      for e in acl["Entries"] if e["RuleNumber"] < 32767)
    assert numbered == [(False, 100, "6", "allow"), (True, 100, "-1", "allow")]

    # Everything read back equals what was written: no diff (exit 2 fails).
    terraform("plan", "-detailed-exitcode", "-input=false")

    terraform.write(configuration(palisade.api_url, changed=True))
    terraform("apply", "-auto-approve", "-input=false")
    app = group_rules(ec2, ids["app_id"])
    changed = [r for r in app if r["SecurityGroupRuleId"] == ids["app_https_rule_id"]]
    assert [(r["FromPort"], r["ToPort"], r["CidrIpv4"]) for r in changed] == [(8443, 8443, "10.70.0.0/16")]
    assert (False, "tcp", 443, 443, "10.70.0.0/16") not in {rule_key(r) for r in app}
    assert [r.get("Description") for r in app if r["IpProtocol"] == "icmp"] == ["ping from the corp net"]
    web = group_rules(ec2, ids["web_id"])
    assert sorted(r["CidrIpv4"] for r in web if r["FromPort"] == 22) == [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert ("192.0.2.0/24", "lab") in prefix_list_entries(ec2, ids["prefix_list_id"])
    terraform("plan", "-detailed-exitcode", "-input=false")

    terraform("destroy", "-auto-approve", "-input=false")
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [ids["vpc_id"]]}])["Vpcs"] == []
    assert ec2.describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [ids["web_id"], ids["app_id"]]}])["SecurityGroups"] == []
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [ids["subnet_id"]]}])["Subnets"] == []
    assert ec2.describe_network_acls(
        Filters=[{"Name": "network-acl-id", "Values": [ids["acl_id"]]}])["NetworkAcls"] == []
    assert ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-id", "Values": [ids["prefix_list_id"]]}])["PrefixLists"] == []


def ipv6_configuration(api_url):
    """A VPC with an Amazon-provided IPv6 block and a dual-stack subnet
    carved from it (issue 16: both were refused before)."""
    return f"""\
terraform {{
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = "{PROVIDER_VERSION}"
    }}
  }}
}}

provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "{ACCESS_KEY}"
  secret_key                  = "{SECRET_KEY}"
  endpoints {{
    ec2 = "{api_url}"
    sts = "{api_url}"
  }}
}}

resource "aws_vpc" "v6" {{
  cidr_block                       = "10.80.0.0/16"
  assign_generated_ipv6_cidr_block = true
}}

resource "aws_subnet" "v6" {{
  vpc_id                          = aws_vpc.v6.id
  cidr_block                      = "10.80.1.0/24"
  ipv6_cidr_block                 = cidrsubnet(aws_vpc.v6.ipv6_cidr_block, 8, 1)
  assign_ipv6_address_on_creation = true
}}

output "vpc_id" {{
  value = aws_vpc.v6.id
}}
output "vpc_ipv6" {{
  value = aws_vpc.v6.ipv6_cidr_block
}}
output "subnet_id" {{
  value = aws_subnet.v6.id
}}
"""


@pytest.fixture(scope="module")
def terraform_v6(tmp_path_factory):
    binary, missing = terraform_binary()
    if not binary:
        pytest.skip(missing)
    if not PROVIDER_DIR.is_dir():
        pytest.skip(f"the AWS provider {PROVIDER_VERSION} mirror is missing: no {PROVIDER_DIR}")
    return Terraform(binary, tmp_path_factory.mktemp("terraform-v6"))


def test_ipv6_vpc_and_subnet_apply_plan_clean_and_destroy(terraform_v6, palisade, ec2):
    terraform = terraform_v6
    terraform.write(ipv6_configuration(palisade.api_url))
    terraform("init", "-input=false")
    terraform("apply", "-auto-approve", "-input=false")
    ids = terraform.outputs()
    vpc = ec2.describe_vpcs(VpcIds=[ids["vpc_id"]])["Vpcs"][0]
    [assoc] = vpc["Ipv6CidrBlockAssociationSet"]
    assert assoc["Ipv6CidrBlock"] == ids["vpc_ipv6"] and assoc["Ipv6Pool"] == "Amazon"
    assert ids["vpc_ipv6"].endswith("/56")
    subnet = ec2.describe_subnets(SubnetIds=[ids["subnet_id"]])["Subnets"][0]
    assert subnet["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"].endswith("/64")
    assert subnet["AssignIpv6AddressOnCreation"] is True
    terraform("plan", "-detailed-exitcode", "-input=false")
    terraform("destroy", "-auto-approve", "-input=false")
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [ids["vpc_id"]]}])["Vpcs"] == []
