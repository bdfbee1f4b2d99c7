//! The registry's SQL, one module per table group.

pub mod agency;
pub mod checks;
pub mod imports;
pub mod pupils;
pub mod schools;
