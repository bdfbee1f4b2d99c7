//! The registry's rules, without I/O: what a valid pupil, school and status change are, how the
//! files bureaus send are read, and what a cross-check finding is.

pub mod checks;
pub mod columns;
pub mod pupil;
pub mod school;
pub mod status;
