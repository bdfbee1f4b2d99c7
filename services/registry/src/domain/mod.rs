//! The registry's rules, without I/O: what a valid pupil, school and status change are, how the
//! files bureaus send are read, what an import job and a cross-check finding are, and the text
//! each of them is stored as (an explicit mapping, never the contract's names).

pub mod checks;
pub mod columns;
pub mod import_job;
pub mod pupil;
pub mod rejected_row;
pub mod school;
pub mod status;
