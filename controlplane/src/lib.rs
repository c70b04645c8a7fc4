//! The VPC / security-group object model, its store and the EC2 API.
