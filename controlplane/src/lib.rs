//! The VPC / security-group object model, its store and the EC2 API.
//!
//! Today this crate holds [`config`]: the appliance's declarative start-up
//! file, validated and turned into the [`palisade_policy::PolicySpec`] the
//! data plane compiles. The store and the APIs (issue #5) will build on the
//! same object model: the file then only seeds an empty store.

pub mod api;
pub mod config;
pub mod model;
pub mod service;
pub mod store;
