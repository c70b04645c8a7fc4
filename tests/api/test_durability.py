"""Durability through the API: a change palisade acknowledged survives
`kill -9`, and nothing that was never sent appears.

A writer thread streams distinct changes through boto3 (an ingress and
an egress rule on new ports, a new security group, a new tag when the
endpoint serves CreateTags), recording each one palisade acknowledged. Another thread `kill -9`s palisade at a random
moment; palisade restarts on the same state directory and Describe calls
must show every acknowledged change and no change outside the
acknowledged ones plus the single request that was in flight when the
process died. That one may legitimately be either: it may have committed
before the kill landed (and its answer was lost) or not — it is resolved
by what the restarted palisade shows, and must keep that outcome in later
rounds. Several rounds run on the same state.

The seed of the random kill moments is printed; PALISADE_DURABILITY_SEED
reruns one.
"""

import os
import random
import re
import tempfile
import threading
import time

import botocore.exceptions

from conftest import CONFIG as DEFAULT_CONFIG
from conftest import Palisade, client

ROUNDS = 4
# The writer runs this long (uniformly random) before the kill.
KILL_AFTER = (0.3, 1.5)
GROUP_PREFIX = "dur-"
TAG_PREFIX = "dur-"
PORT_BASE = 10000
# Changes of each kind per round at most (the writer then idles until the
# kill), so that ROUNDS rounds of rules fit RULES_PER_GROUP.
PER_ROUND = 200
RULES_PER_GROUP = 1000
# Groups the tags are spread over: ROUNDS * PER_ROUND / TAG_HOLDERS stays
# under AWS's 50 tags per resource.
TAG_HOLDERS = 20
CONFIG = DEFAULT_CONFIG + f"""
[quotas]
rules_per_group = {RULES_PER_GROUP}
"""


class Ledger:
    """What the writer sent: acknowledged changes, and per round the one
    (if any) whose answer never came, or an error palisade answered (which
    fails the test: every change of the stream is valid)."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.acked = {kind: set() for kind in kinds}
        self.in_doubt = None
        self.refused = None
        self.sent = 0
        self.sent_this_round = 0

    def acknowledged_count(self):
        return sum(len(s) for s in self.acked.values())


def changes(kinds, round_number):
    """An endless stream of distinct changes: (kind, value)."""
    n = 0
    while True:
        kind, k = kinds[n % len(kinds)], n // len(kinds)
        if kind in ("ingress", "egress"):
            yield kind, PORT_BASE + round_number * 1000 + k
        elif kind == "group":
            yield kind, f"{GROUP_PREFIX}{round_number}-{k}"
        else:
            yield kind, f"{TAG_PREFIX}{round_number}-{k}"
        n += 1


def permission(port):
    return [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
             "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]


def apply(ec2, anchor, holders, vpc, kind, value):
    if kind == "ingress":
        ec2.authorize_security_group_ingress(GroupId=anchor, IpPermissions=permission(value))
    elif kind == "egress":
        ec2.authorize_security_group_egress(GroupId=anchor, IpPermissions=permission(value))
    elif kind == "group":
        ec2.create_security_group(GroupName=value, Description="durability", VpcId=vpc)
    else:
        # AWS allows 50 tags per resource: spread them over the holders.
        k = int(value.rsplit("-", 1)[1])
        ec2.create_tags(Resources=[holders[k % len(holders)]], Tags=[{"Key": value, "Value": "v"}])


def write_until_killed(ec2, anchor, holders, vpc, round_number, ledger, stop):
    """Applies changes until one gets no answer (palisade was killed); that
    one is in doubt, and nothing more is sent."""
    for kind, value in changes(ledger.kinds, round_number):
        if stop.is_set():
            return
        if ledger.sent_this_round >= PER_ROUND * len(ledger.kinds):
            stop.wait()
            return
        ledger.sent_this_round += 1
        ledger.sent += 1
        try:
            apply(ec2, anchor, holders, vpc, kind, value)
        except botocore.exceptions.ClientError as e:  # answered: a bug
            ledger.refused = (kind, value, e.response["Error"])
            return
        except Exception:  # the connection died with palisade: in doubt
            ledger.in_doubt = (kind, value)
            return
        ledger.acked[kind].add(value)


def observed(ec2, anchor, holders):
    """What the store shows: the anchor group's rule ports, the
    durability groups' names, the holders' tags."""
    groups = ec2.describe_security_groups()["SecurityGroups"]
    by_id = {g["GroupId"]: g for g in groups}

    def ports(permissions):
        return {p["FromPort"] for p in permissions if p.get("FromPort", 0) >= PORT_BASE}

    return {
        "ingress": ports(by_id[anchor]["IpPermissions"]),
        "egress": ports(by_id[anchor]["IpPermissionsEgress"]),
        "group": {g["GroupName"] for g in groups if g["GroupName"].startswith(GROUP_PREFIX)},
        "tag": {t["Key"] for h in holders for t in by_id[h].get("Tags", [])
                if t["Key"].startswith(TAG_PREFIX)},
    }


def serves_create_tags(ec2, anchor):
    """Whether this palisade has the CreateTags action (another branch adds
    it); asked with DryRun, which changes nothing."""
    try:
        ec2.create_tags(Resources=[anchor], Tags=[{"Key": "probe", "Value": ""}], DryRun=True)
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
        if code == "InvalidAction":
            return False
        assert code == "DryRunOperation", e.response
    return True


def restart_and_check_publication(palisade):
    """Restarts palisade on its state directory. A prober calls the API
    from before the process exists; at its first answer it reads /metrics
    at once, which must already show a published policy generation: the
    stored policy is compiled and published before the API answers.
    Returns what the start-up said it loaded."""
    first = {}

    def probe():
        prober = client(palisade, "ec2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                prober.describe_vpcs()
            except Exception:  # not listening yet
                time.sleep(0.002)
                continue
            first["metrics"] = palisade.metrics()
            return

    prober = threading.Thread(target=probe)
    prober.start()
    palisade.start()
    prober.join(timeout=60)
    assert "metrics" in first, "the API never answered after the restart"
    generation = re.search(r"^palisade_policy_generation (\S+)$", first["metrics"], re.M)
    publishes = re.search(r"^palisade_policy_publish_duration_seconds_count (\S+)$", first["metrics"], re.M)
    assert generation and float(generation.group(1)) >= 1, first["metrics"]
    assert publishes and float(publishes.group(1)) >= 1, first["metrics"]
    out = palisade.output()
    loaded = re.search(r"state in .*: loaded \((\d+) VPCs, (\d+) security groups\)", out)
    assert loaded, out
    assert "seeded" not in out, out
    assert out.index(loaded.group(0)) < out.index("EC2 API on"), out
    return {"vpcs_loaded": int(loaded.group(1)), "groups_loaded": int(loaded.group(2))}


def test_acknowledged_changes_survive_kill_9_and_nothing_unsent_appears():
    seed = int(os.environ.get("PALISADE_DURABILITY_SEED", random.randrange(1 << 32)))
    print(f"PALISADE_DURABILITY_SEED={seed}")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="palisade-durability-") as directory:
        p = Palisade(directory, config=CONFIG).start()
        try:
            ec2 = client(p, "ec2")
            vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
            anchor = ec2.create_security_group(
                GroupName="anchor", Description="rules land here", VpcId=vpc)["GroupId"]
            holders = [ec2.create_security_group(
                GroupName=f"tags-{n}", Description="tags land here", VpcId=vpc)["GroupId"]
                for n in range(TAG_HOLDERS)]
            kinds = ["ingress", "group", "egress"]
            if serves_create_tags(ec2, anchor):
                kinds.append("tag")
            else:
                print("CreateTags is not served by this palisade: the stream has no tags")
            ledger = Ledger(kinds)
            for round_number in range(ROUNDS):
                acked_before = ledger.acknowledged_count()
                ledger.in_doubt = None
                ledger.sent_this_round = 0
                stop = threading.Event()
                writer = threading.Thread(
                    target=write_until_killed,
                    args=(client(p, "ec2"), anchor, holders, vpc, round_number, ledger, stop))
                writer.start()
                time.sleep(rng.uniform(*KILL_AFTER))
                p.kill9()
                stop.set()
                writer.join(timeout=60)
                assert not writer.is_alive(), "the writer hung on a dead palisade"
                assert ledger.refused is None, f"palisade refused a valid change: {ledger.refused}"
                assert ledger.acknowledged_count() > acked_before, (
                    f"round {round_number}: nothing was acknowledged before the kill; "
                    "the round tested nothing")

                restarted = restart_and_check_publication(p)
                seen = observed(client(p, "ec2"), anchor, holders)
                print(f"round {round_number}: {ledger.sent} sent, "
                      f"{ledger.acknowledged_count()} acknowledged in all, in doubt: {ledger.in_doubt}")
                for kind in ledger.kinds:
                    lost = ledger.acked[kind] - seen[kind]
                    assert not lost, f"round {round_number}: acknowledged {kind}s lost: {sorted(lost)}"
                    allowed = set(ledger.acked[kind])
                    if ledger.in_doubt and ledger.in_doubt[0] == kind:
                        allowed.add(ledger.in_doubt[1])
                    unsent = seen[kind] - allowed
                    assert not unsent, f"round {round_number}: {kind}s never acknowledged appeared: {sorted(unsent)}"
                # The in-flight change went one way or the other; from now
                # on it must stay that way.
                if ledger.in_doubt:
                    kind, value = ledger.in_doubt
                    committed = value in seen[kind]
                    print(f"round {round_number}: the in-flight change was "
                          f"{'committed' if committed else 'not committed'}")
                    if committed:
                        ledger.acked[kind].add(value)
                # The restarted palisade loaded this store and counted its
                # groups before serving: default, anchor, tag holders and
                # the durability groups.
                assert restarted == {"vpcs_loaded": 1,
                                     "groups_loaded": 2 + TAG_HOLDERS + len(ledger.acked["group"])}, restarted
        finally:
            p.stop()
