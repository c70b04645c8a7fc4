//! STS `GetCallerIdentity` on the EC2 endpoint: what `aws sts
//! get-caller-identity` and Terraform's provider call first to learn the
//! account. Every key palisade accepts acts as the account's root.

use super::params::Params;
use super::xml::Xml;
use crate::model::ApiError;
use crate::model::Ec2ErrorCode;

/// The metrics label for an STS action (a closed set).
pub fn label(action: &str) -> &'static str {
    match action {
        "GetCallerIdentity" => "GetCallerIdentity",
        _ => "unknown",
    }
}

/// Answers the STS `action`.
pub fn handle(
    action: &str,
    account_id: &str,
    params: &Params,
    out: &mut Xml,
) -> Result<(), ApiError> {
    match action {
        "GetCallerIdentity" => {
            params.check_known(&[])?;
            out.leaf("Arn", format_args!("arn:aws:iam::{account_id}:root"))
                .leaf("UserId", account_id)
                .leaf("Account", account_id);
            Ok(())
        }
        _ => Err(ApiError::new(
            Ec2ErrorCode::InvalidAction,
            format!("Could not find operation {action} for version 2011-06-15"),
        )),
    }
}
