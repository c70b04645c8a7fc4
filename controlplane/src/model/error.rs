//! The one error shape every model operation returns: AWS's error code and
//! a message in AWS's style, ready for the EC2 API's error XML.

use core::fmt;

/// An EC2 API error: `code` is what AWS tools branch on
/// (`InvalidPermission.Duplicate`), `message` is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    /// AWS's error code, e.g. `InvalidGroup.NotFound`.
    pub code: &'static str,
    /// AWS-style explanation.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }
}
