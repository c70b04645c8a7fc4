//! The one error shape every model operation returns: AWS's error code and
//! a message in AWS's style, ready for the EC2 API's error XML.
//!
//! The codes are one enum, [`Ec2ErrorCode`], spelled exactly as AWS spells
//! them only in [`Ec2ErrorCode::as_str`]: clients branch on these strings,
//! so a typo at a call site must be a compile error, not a silent change of
//! what an AWS tool sees.

use core::fmt;

/// AWS's EC2 (and STS) error codes palisade answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ec2ErrorCode {
    /// `AuthFailure`: The credentials are not valid for this account.
    AuthFailure,
    /// `CidrLimitExceeded`: The VPC or subnet already has its IPv6 block.
    CidrLimitExceeded,
    /// `CannotDelete`: The object may not be deleted (a VPC's `default` group).
    CannotDelete,
    /// `DependencyViolation`: Another object still depends on this one.
    DependencyViolation,
    /// `DryRunOperation`: `DryRun` was set and the request would have succeeded.
    DryRunOperation,
    /// `DefaultVpcAlreadyExists`: The account already has its default VPC.
    DefaultVpcAlreadyExists,
    /// `IncompleteSignature`: The `Authorization` header lacks a part SigV4 needs.
    IncompleteSignature,
    /// `InsufficientCidrBlocks`: The IPv6 pool has no free /56 left.
    InsufficientCidrBlocks,
    /// `InsufficientFreeAddressesInSubnet`: The subnet has no free address left to assign.
    InsufficientFreeAddressesInSubnet,
    /// `InternalError`: palisade failed; the request was not applied.
    InternalError,
    /// `InvalidAction`: The action is not one palisade serves.
    InvalidAction,
    /// `InvalidAssociationID.NotFound`: No such network ACL association.
    InvalidAssociationIdNotFound,
    /// `InvalidClientTokenId`: The access key id is not known.
    InvalidClientTokenId,
    /// `InvalidGroup.Duplicate`: A group of that name already exists in the VPC.
    InvalidGroupDuplicate,
    /// `InvalidGroup.NotFound`: No such security group (or not reachable from here).
    InvalidGroupNotFound,
    /// `InvalidGroupId.Malformed`: A group id is not `sg-` + hex.
    InvalidGroupIdMalformed,
    /// `InvalidHttpRequest`: The HTTP request itself is unacceptable (its method).
    InvalidHttpRequest,
    /// `InvalidID`: An id names no taggable object.
    InvalidId,
    /// `InvalidIPAddress.InUse`: The address is already assigned in the VPC.
    InvalidIpAddressInUse,
    /// `InvalidNetworkAclEntry.NotFound`: No ACL entry with that rule number and direction.
    InvalidNetworkAclEntryNotFound,
    /// `InvalidNetworkAclID.NotFound`: No such network ACL.
    InvalidNetworkAclIdNotFound,
    /// `InvalidNetworkInterfaceID.NotFound`: No such network interface.
    InvalidNetworkInterfaceIdNotFound,
    /// `InvalidPaginationToken`: `NextToken` is not one palisade issued.
    InvalidPaginationToken,
    /// `InvalidParameterCombination`: Parameters were given together that exclude each other.
    InvalidParameterCombination,
    /// `InvalidParameterValue`: A parameter's value is not acceptable.
    InvalidParameterValue,
    /// `InvalidPermission.Duplicate`: The rule already exists in the group.
    InvalidPermissionDuplicate,
    /// `InvalidPermission.NotFound`: No such rule in the group.
    InvalidPermissionNotFound,
    /// `InvalidPrefixListID.NotFound`: No such managed prefix list.
    InvalidPrefixListIdNotFound,
    /// `InvalidPrefixListModification`: The prefix list change names an entry it does not have.
    InvalidPrefixListModification,
    /// `InvalidRouteTableID.NotFound`: No such route table.
    InvalidRouteTableIdNotFound,
    /// `InvalidSecurityGroupRuleId.NotFound`: No such security group rule id.
    InvalidSecurityGroupRuleIdNotFound,
    /// `InvalidStateTransition`: The peering is not in a state that allows the change.
    InvalidStateTransition,
    /// `InvalidSubnet.Conflict`: The subnet's block overlaps another subnet of the VPC.
    InvalidSubnetConflict,
    /// `InvalidSubnet.Range`: The subnet's block is outside the VPC or of a refused size.
    InvalidSubnetRange,
    /// `InvalidSubnetID.NotFound`: No such subnet.
    InvalidSubnetIdNotFound,
    /// `InvalidVpc.Range`: The VPC's block is of a size AWS refuses.
    InvalidVpcRange,
    /// `InvalidVpcID.NotFound`: No such VPC.
    InvalidVpcIdNotFound,
    /// `InvalidVpcPeeringConnection.Overlap`: The VPCs are the same or their blocks overlap.
    InvalidVpcPeeringConnectionOverlap,
    /// `InvalidVpcPeeringConnectionID.NotFound`: No such peering connection.
    InvalidVpcPeeringConnectionIdNotFound,
    /// `MalformedQueryString`: The query string or form body cannot be decoded.
    MalformedQueryString,
    /// `MissingAction`: The request names no `Action`.
    MissingAction,
    /// `MissingAuthenticationToken`: The request is not signed.
    MissingAuthenticationToken,
    /// `MissingParameter`: A required parameter is absent.
    MissingParameter,
    /// `NetworkAclEntryAlreadyExists`: An entry with that rule number and direction exists.
    NetworkAclEntryAlreadyExists,
    /// `NetworkAclEntryLimitExceeded`: The ACL has its quota of entries.
    NetworkAclEntryLimitExceeded,
    /// `NetworkAclLimitExceeded`: The VPC has its quota of network ACLs.
    NetworkAclLimitExceeded,
    /// `NoSuchVersion`: The API `Version` is not one palisade speaks.
    NoSuchVersion,
    /// `PrefixListMaxEntriesExceeded`: The prefix list would exceed its `MaxEntries`.
    PrefixListMaxEntriesExceeded,
    /// `PrefixListVersionMismatch`: `CurrentVersion` is not the list's version.
    PrefixListVersionMismatch,
    /// `RequestEntityTooLarge`: The request body exceeds the configured limit.
    RequestEntityTooLarge,
    /// `RequestExpired`: The signature's time is too far from now.
    RequestExpired,
    /// `RulesPerSecurityGroupLimitExceeded`: A group or an interface would exceed its rule quota.
    RulesPerSecurityGroupLimitExceeded,
    /// `SecurityGroupLimitExceeded`: The VPC has its quota of security groups.
    SecurityGroupLimitExceeded,
    /// `SecurityGroupsPerInterfaceLimitExceeded`: The interface would exceed its quota of groups.
    SecurityGroupsPerInterfaceLimitExceeded,
    /// `ServiceUnavailable`: palisade cannot serve the request now.
    ServiceUnavailable,
    /// `SignatureDoesNotMatch`: The SigV4 signature is wrong.
    SignatureDoesNotMatch,
    /// `TagLimitExceeded`: The object would have more tags than AWS allows.
    TagLimitExceeded,
    /// `UnauthorizedOperation`: The caller may not perform the action.
    UnauthorizedOperation,
    /// `UnknownParameter`: The request carries a parameter the action does not take.
    UnknownParameter,
    /// `VPCIdNotSpecified`: A group was named by name outside any VPC.
    VpcIdNotSpecified,
}

impl Ec2ErrorCode {
    /// The code exactly as AWS spells it in an error response.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthFailure => "AuthFailure",
            Self::CannotDelete => "CannotDelete",
            Self::CidrLimitExceeded => "CidrLimitExceeded",
            Self::DefaultVpcAlreadyExists => "DefaultVpcAlreadyExists",
            Self::InsufficientCidrBlocks => "InsufficientCidrBlocks",
            Self::DependencyViolation => "DependencyViolation",
            Self::DryRunOperation => "DryRunOperation",
            Self::IncompleteSignature => "IncompleteSignature",
            Self::InsufficientFreeAddressesInSubnet => "InsufficientFreeAddressesInSubnet",
            Self::InternalError => "InternalError",
            Self::InvalidAction => "InvalidAction",
            Self::InvalidAssociationIdNotFound => "InvalidAssociationID.NotFound",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::InvalidGroupDuplicate => "InvalidGroup.Duplicate",
            Self::InvalidGroupNotFound => "InvalidGroup.NotFound",
            Self::InvalidGroupIdMalformed => "InvalidGroupId.Malformed",
            Self::InvalidHttpRequest => "InvalidHttpRequest",
            Self::InvalidId => "InvalidID",
            Self::InvalidIpAddressInUse => "InvalidIPAddress.InUse",
            Self::InvalidNetworkAclEntryNotFound => "InvalidNetworkAclEntry.NotFound",
            Self::InvalidNetworkAclIdNotFound => "InvalidNetworkAclID.NotFound",
            Self::InvalidNetworkInterfaceIdNotFound => "InvalidNetworkInterfaceID.NotFound",
            Self::InvalidPaginationToken => "InvalidPaginationToken",
            Self::InvalidParameterCombination => "InvalidParameterCombination",
            Self::InvalidParameterValue => "InvalidParameterValue",
            Self::InvalidPermissionDuplicate => "InvalidPermission.Duplicate",
            Self::InvalidPermissionNotFound => "InvalidPermission.NotFound",
            Self::InvalidPrefixListIdNotFound => "InvalidPrefixListID.NotFound",
            Self::InvalidPrefixListModification => "InvalidPrefixListModification",
            Self::InvalidRouteTableIdNotFound => "InvalidRouteTableID.NotFound",
            Self::InvalidSecurityGroupRuleIdNotFound => "InvalidSecurityGroupRuleId.NotFound",
            Self::InvalidStateTransition => "InvalidStateTransition",
            Self::InvalidSubnetConflict => "InvalidSubnet.Conflict",
            Self::InvalidSubnetRange => "InvalidSubnet.Range",
            Self::InvalidSubnetIdNotFound => "InvalidSubnetID.NotFound",
            Self::InvalidVpcRange => "InvalidVpc.Range",
            Self::InvalidVpcIdNotFound => "InvalidVpcID.NotFound",
            Self::InvalidVpcPeeringConnectionOverlap => "InvalidVpcPeeringConnection.Overlap",
            Self::InvalidVpcPeeringConnectionIdNotFound => "InvalidVpcPeeringConnectionID.NotFound",
            Self::MalformedQueryString => "MalformedQueryString",
            Self::MissingAction => "MissingAction",
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::MissingParameter => "MissingParameter",
            Self::NetworkAclEntryAlreadyExists => "NetworkAclEntryAlreadyExists",
            Self::NetworkAclEntryLimitExceeded => "NetworkAclEntryLimitExceeded",
            Self::NetworkAclLimitExceeded => "NetworkAclLimitExceeded",
            Self::NoSuchVersion => "NoSuchVersion",
            Self::PrefixListMaxEntriesExceeded => "PrefixListMaxEntriesExceeded",
            Self::PrefixListVersionMismatch => "PrefixListVersionMismatch",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::RequestExpired => "RequestExpired",
            Self::RulesPerSecurityGroupLimitExceeded => "RulesPerSecurityGroupLimitExceeded",
            Self::SecurityGroupLimitExceeded => "SecurityGroupLimitExceeded",
            Self::SecurityGroupsPerInterfaceLimitExceeded => {
                "SecurityGroupsPerInterfaceLimitExceeded"
            }
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::TagLimitExceeded => "TagLimitExceeded",
            Self::UnauthorizedOperation => "UnauthorizedOperation",
            Self::UnknownParameter => "UnknownParameter",
            Self::VpcIdNotSpecified => "VPCIdNotSpecified",
        }
    }

    /// The HTTP status AWS answers this code with.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::AuthFailure
            | Self::SignatureDoesNotMatch
            | Self::MissingAuthenticationToken
            | Self::IncompleteSignature
            | Self::RequestExpired
            | Self::UnauthorizedOperation
            | Self::InvalidClientTokenId => 403,
            Self::DryRunOperation => 412,
            Self::RequestEntityTooLarge => 413,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for Ec2ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests (and logs) compare a code with AWS's spelling.
impl PartialEq<&str> for Ec2ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Ec2ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// An EC2 API error: `code` is what AWS tools branch on
/// (`InvalidPermission.Duplicate`), `message` is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    /// AWS's error code, e.g. `InvalidGroup.NotFound`.
    pub code: Ec2ErrorCode,
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
    pub fn new(code: Ec2ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(Ec2ErrorCode::InvalidParameterValue, message)
    }
}

#[cfg(test)]
mod tests {
    use super::Ec2ErrorCode;

    #[test]
    fn codes_keep_aws_spelling_and_status() {
        assert_eq!(
            Ec2ErrorCode::InvalidVpcIdNotFound.as_str(),
            "InvalidVpcID.NotFound"
        );
        assert_eq!(
            Ec2ErrorCode::InvalidIpAddressInUse,
            "InvalidIPAddress.InUse"
        );
        assert_eq!(Ec2ErrorCode::SignatureDoesNotMatch.http_status(), 403);
        assert_eq!(Ec2ErrorCode::DryRunOperation.http_status(), 412);
        assert_eq!(Ec2ErrorCode::InternalError.http_status(), 500);
        assert_eq!(Ec2ErrorCode::InvalidGroupNotFound.http_status(), 400);
    }
}
