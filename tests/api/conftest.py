"""Fixtures for the EC2 API tests: a real `palisade run --dataplane off`
per test module, and the real clients pointed at it (boto3, the AWS CLI).

Fixture names are shared by every test file in this folder; keep them
stable: `palisade` (.api_url, .metrics_url, .state_dir, .start(), .stop(),
.kill9(), .metrics(), .output()), `ec2`, `sts`, `aws`, `signed`.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCESS_KEY = "AKIAPALISADETEST0001"
SECRET_KEY = "palisade/test+secret/0123456789abcdefghij"
REGION = "eu-central-1"
ACCOUNT = "123456789012"

# The file seeds an empty store: one prefix list the rule tests can name
# (ManagedPrefixList actions are not served yet). No ENIs, so the built-in
# profile's port names do not matter. No default VPC either (an account
# whose default VPC was deleted): these tests count and page through the
# objects they create; test_ipv6_and_default_vpc.py runs with one.
CONFIG = """\
[appliance]
account_id = "123456789012"
default_vpc = false

[[prefix_list]]
name = "corp"
cidrs = ["198.51.100.0/24", "203.0.113.0/24"]
max_entries = 5
"""


def seeded_id(prefix, key):
    """The id the configuration gives an object (docs/CONFIG.md, "Ids"):
    FNV-1a 128 of `prefix NUL key`, low 68 bits, 17 hex digits."""
    h = 0x6C62272E07BB014262B821756295C58D
    for byte in prefix.encode() + b"\0" + key.encode():
        h ^= byte
        h = (h * ((1 << 88) | 0x13B)) % (1 << 128)
    return f"{prefix}-{h & ((1 << 68) - 1):017x}"


def palisade_binary():
    explicit = os.environ.get("PALISADE_BIN")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "palisade"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Palisade:
    """One palisade process; start() can be called again after stop() or
    kill9() on the same state directory."""

    def __init__(self, directory, credentials=(ACCESS_KEY, SECRET_KEY), config=CONFIG):
        self.dir = pathlib.Path(directory)
        self.state_dir = self.dir / "state"
        self.config = self.dir / "palisade.toml"
        self.config.write_text(config)
        self.credentials = credentials
        self.api_port = free_port()
        self.metrics_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.process = None
        self.log = None
        self.runs = 0

    def start(self, timeout=30):
        binary = palisade_binary()
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `cargo build -p palisade` first")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")}
        if self.credentials:
            env["PALISADE_ACCESS_KEY_ID"], env["PALISADE_SECRET_ACCESS_KEY"] = self.credentials
        self.runs += 1
        self.log = self.dir / f"palisade-{self.runs}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(binary), "run", "--dataplane", "off",
                 "--config", str(self.config),
                 "--state-dir", str(self.state_dir),
                 "--api-listen", f"127.0.0.1:{self.api_port}",
                 "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"palisade exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.api_port), timeout=0.2):
                    if "policy generation 1" in self.output():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"palisade did not start:\n{self.output()}")

    def output(self):
        return self.log.read_text(errors="replace") if self.log else ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        return self.process.returncode if self.process else None

    def kill9(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)

    def metrics(self):
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode()

    def metric(self, name, labels=""):
        """The value of one sample (0 when absent)."""
        pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.M)
        m = pattern.search(self.metrics())
        return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def palisade():
    with tempfile.TemporaryDirectory(prefix="palisade-api-") as directory:
        p = Palisade(directory).start()
        try:
            yield p
        finally:
            p.stop()


def client(palisade, service, **kwargs):
    return boto3.client(
        service,
        endpoint_url=palisade.api_url,
        region_name=REGION,
        aws_access_key_id=kwargs.pop("key", ACCESS_KEY),
        aws_secret_access_key=kwargs.pop("secret", SECRET_KEY),
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
        **kwargs,
    )


@pytest.fixture(scope="module")
def ec2(palisade):
    return client(palisade, "ec2")


@pytest.fixture(scope="module")
def sts(palisade):
    return client(palisade, "sts")


class AwsCliError(Exception):
    def __init__(self, returncode, stderr):
        super().__init__(stderr)
        self.returncode = returncode
        self.stderr = stderr
        m = re.search(r"An error occurred \(([^)]+)\)", stderr)
        self.code = m.group(1) if m else None


@pytest.fixture(scope="module")
def aws(palisade):
    """Runs the AWS CLI against palisade: aws("ec2", "describe-vpcs",
    ...) → parsed JSON (None for empty output); raises AwsCliError with
    .code on failure."""
    cli = pathlib.Path(os.environ.get("PALISADE_TEST_VENV", "/opt/palisade-test-venv")) / "bin" / "aws"
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    })
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)

    def run(*args):
        out = subprocess.run(
            [str(cli), "--endpoint-url", palisade.api_url, "--output", "json", *args],
            capture_output=True, text=True, env=env, timeout=60)
        if out.returncode != 0:
            raise AwsCliError(out.returncode, out.stderr)
        return json.loads(out.stdout) if out.stdout.strip() else None

    return run


class Raw:
    """A hand-made request's answer."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        m = re.search(r"<Code>([^<]*)</Code>", body)
        self.code = m.group(1) if m else None


def send(url, method="POST", body=b"", headers=None):
    request = urllib.request.Request(url, data=body if method == "POST" else None,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Raw(r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return Raw(e.code, e.read().decode())


@pytest.fixture(scope="module")
def signed(palisade):
    """signed({"Action": ..., ...}, service="ec2", key=..., secret=...,
    at=datetime) → Raw (a None value drops the parameter, e.g. Version): a form POST signed by botocore's own SigV4 signer,
    for requests boto3 would refuse to build (missing or malformed
    parameters, unknown actions)."""

    def sign_and_send(params, service="ec2", key=ACCESS_KEY, secret=SECRET_KEY, at=None):
        params = dict(params)
        if service == "ec2":
            params.setdefault("Version", "2016-11-15")
        params = {k: v for k, v in params.items() if v is not None}
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=palisade.api_url + "/", data=params,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        credentials = botocore.credentials.Credentials(key, secret)
        signer = botocore.auth.SigV4Auth(credentials, service, REGION)
        if at is None:
            signer.add_auth(request)
        else:
            original = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda *a, **k: at
            try:
                signer.add_auth(request)
            finally:
                botocore.auth.get_current_datetime = original
        prepared = request.prepare()
        return send(prepared.url, body=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
                    headers=dict(prepared.headers))

    return sign_and_send


def error_code(excinfo):
    """The AWS error code of a botocore ClientError."""
    return excinfo.value.response["Error"]["Code"]
