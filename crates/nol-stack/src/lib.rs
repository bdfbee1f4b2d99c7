//! Real stacks, started on this machine: nats-server processes with JetStream (linked as leaf
//! nodes between provinces), PostgreSQL databases, the keys, and the service processes. The local
//! stack (`nol up`) and the system tests in `tests/` both start the system through this crate, so
//! what the tests prove is what an operator runs.
#![forbid(unsafe_code)]

pub mod backup;
pub mod client;
pub mod keys;
pub mod nats;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod profile;
pub mod province;
pub mod proxy;
pub mod synth;
pub mod tls;
pub mod tools;
pub mod wait;

pub use client::Clients;
pub use keys::{SERVICES, StackKeys};
pub use nats::NatsServer;
pub use province::{ProvinceSettings, ProvinceStack, ServicePorts, Stack, StackSettings};
pub use wait::eventually;

/// The repository root, for the tools folder (`var/tools`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
