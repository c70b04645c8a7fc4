//! The VPC / security-group object model, its store and the EC2 API.
//!
//! [`model`] judges every change with AWS's rules and error codes,
//! [`store`] makes it durable (SQLite), [`service`] compiles and publishes
//! it to the data plane, and [`api`] is the EC2 Query API (SigV4) the AWS
//! tools speak. [`config`] is the declarative start-up file, which seeds
//! an empty store.

pub mod api;
pub mod config;
pub mod model;
pub mod service;
pub mod store;
