//! Deadlines and supervision (督办, R12) and the semester-start check (R13): the
//! `SupervisionService` served by the case service, and the sweep that raises and escalates
//! supervision items by itself. Writes `supervision_item`, `semester_check` and
//! `semester_check_item`; changes a case only through the case ledger.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;
pub mod sweeper;
