//! The suspected-dropout ledger (疑似辍学台账, R14): items from the registry's cross-checks, from
//! schools and from case workers, each verified and resolved as a confirmed dropout (a case opens
//! through the case ledger) or closed with proof (销号). Writes the `suspect` table only.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;
