//! The real AWS CLI, from the test virtualenv `tools/setup.sh test`
//! creates, pointed at a palisade with `--endpoint-url` and the keys the
//! test configured — as a user would run it. The virtualenv is found the
//! way `tests/api/conftest.py` finds it: `$PALISADE_TEST_VENV`, else
//! `/opt/palisade-test-venv`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one CLI call may take (its Python start-up is slow on a
/// loaded machine).
const LIMIT: Duration = Duration::from_secs(120);

/// Where `tools/setup.sh test` puts the virtualenv unless told otherwise.
pub const DEFAULT_VENV: &str = "/opt/palisade-test-venv";

/// The key pair the end-to-end tests configure palisade with and sign as.
pub const TEST_ACCESS_KEY_ID: &str = "AKIAPALISADEE2E00001";
/// The secret of [`TEST_ACCESS_KEY_ID`].
pub const TEST_SECRET_ACCESS_KEY: &str = "palisade/e2e+secret/0123456789abcdefghij";

/// The venv's `aws`; panics with how to get it when it is missing.
pub fn aws_cli() -> PathBuf {
    let venv = std::env::var_os("PALISADE_TEST_VENV")
        .map_or_else(|| PathBuf::from(DEFAULT_VENV), PathBuf::from);
    let aws = venv.join("bin").join("aws");
    assert!(
        aws.exists(),
        "{} does not exist: the AWS CLI comes from the test virtualenv that `tools/setup.sh test` (run by ./test.sh) creates; run it, or set PALISADE_TEST_VENV to a virtualenv with awscli installed",
        aws.display()
    );
    aws
}

/// The AWS CLI against one endpoint with one key pair.
#[derive(Debug, Clone)]
pub struct AwsCli {
    program: PathBuf,
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

impl AwsCli {
    /// The CLI for `endpoint` (`http://127.0.0.1:PORT`) signing with the
    /// given keys.
    pub fn new(endpoint: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        Self {
            program: aws_cli(),
            endpoint: endpoint.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
        }
    }

    /// Runs `aws --endpoint-url … --output text ARGS` and returns its
    /// stdout; panics with its stderr when it fails. Nothing of the
    /// user's own AWS configuration is read.
    pub fn text(&self, args: &[&str]) -> String {
        // Bounded by timeout(1), like every command these tests run.
        let mut command = Command::new("timeout");
        command
            .args(["-s", "KILL", &LIMIT.as_secs().to_string()])
            .arg(&self.program)
            .args(["--endpoint-url", &self.endpoint, "--output", "text"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_PAGER", "")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        let out = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        assert!(
            out.status.success(),
            "aws {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
