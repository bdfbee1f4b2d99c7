//! What every Not One Less service runs on.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod audit;
pub mod clock;
pub mod config;
pub mod database;
pub mod error;
pub mod files;
pub mod keys;
pub mod paging;
pub mod platform;
pub mod provision;
pub mod reencrypt;
pub mod server;
pub mod shutdown;
pub mod time;
pub mod upstream;

pub use config::ServiceConfig;
pub use error::{FieldViolation, ServiceError, Violations};
pub use keys::ProvinceKeys;
pub use platform::{Platform, RunningService};

/// The authenticated caller of a request to a service of `province`; a caller of another
/// province is refused outright.
pub fn caller_of<T>(
    request: &tonic::Request<T>,
    province: &nol_region::RegionCode,
) -> Result<nol_auth::Caller, ServiceError> {
    let caller = nol_auth::caller(request)
        .map_err(|_| ServiceError::Internal(anyhow::anyhow!("a request reached a handler without a caller")))?;
    caller.require_province(province)?;
    Ok(caller)
}

/// The region a request names in field `region_code` (the caller's own when empty), which must be
/// the caller's region or one below it.
pub fn region_in_scope(caller: &nol_auth::Caller, requested: &str) -> Result<nol_region::RegionCode, ServiceError> {
    let region = if requested.trim().is_empty() {
        caller.region
    } else {
        nol_region::RegionCode::parse(requested).map_err(|error| ServiceError::invalid("region_code", error))?
    };
    caller.require_scope(&region)?;
    Ok(region)
}
