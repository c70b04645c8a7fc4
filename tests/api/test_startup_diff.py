"""At start on a non-empty store, palisade runs the store's world and says
where the configuration file disagrees with it: the objects only in the
file, only in the store, and in both but different (by id), instead of one
line saying the file is not applied."""

import tempfile

from conftest import CONFIG, Palisade, client, seeded_id


def test_a_restart_names_what_differs_between_the_file_and_the_store():
    with tempfile.TemporaryDirectory(prefix="palisade-diff-") as directory:
        p = Palisade(directory).start()
        try:
            assert "seeded from palisade.toml" in p.output()
            p.stop()
            p.start()
            assert "it matches palisade.toml" in p.output(), p.output()

            vpc = client(p, "ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
            p.stop()
            p.config.write_text(
                CONFIG
                + '\n[[prefix_list]]\nname = "extra"\ncidrs = ["192.0.2.0/24"]\nmax_entries = 2\n'
            )
            p.start()
            out = p.output()
            assert "it differs from palisade.toml" in out, out
            # The API's VPC (with its default group and ACL) is only in the
            # store; the file's new prefix list only in the file.
            assert "only in the store (3):" in out, out
            assert f"VPC {vpc} (10.9.0.0/16)" in out, out
            assert "only in the file (1):" in out, out
            assert f'prefix list {seeded_id("pl", "extra")} ("extra")' in out, out
            assert "differing" not in out, out
            # The store's world is what runs: the file's list is not there.
            lists = client(p, "ec2").describe_managed_prefix_lists()["PrefixLists"]
            assert "extra" not in {pl["PrefixListName"] for pl in lists}
        finally:
            p.stop()
