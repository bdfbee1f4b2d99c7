//! The case file and its life (一人一案, R1–R11): `domain` (the rules, no I/O), `store` (the SQL
//! of the case's tables, rows decoded once into the domain's types), `ledger` (the only writer of
//! `dropout_case`, its history and its events), `service` (one use case per RPC), `grpc`
//! (transport and the contract's messages) and `export` (the ledger as .xlsx).

pub mod domain;
pub mod export;
pub mod grpc;
pub mod ledger;
pub mod service;
pub mod store;
