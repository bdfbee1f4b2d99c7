//! What every Not One Less service runs on.
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod database;
pub mod error;
pub mod keys;
pub mod paging;
pub mod platform;
pub mod server;
pub mod shutdown;
pub mod time;

pub use config::ServiceConfig;
pub use error::{FieldViolation, ServiceError, Violations};
pub use keys::ProvinceKeys;
pub use platform::{Platform, RunningService};
