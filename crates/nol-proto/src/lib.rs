//! The Not One Less contract, `package nol.v1`, as Rust types and tonic clients and servers.
#![forbid(unsafe_code)]

pub mod bounded;

/// Generated from `proto/nol/v1/*.proto`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("nol.v1");
}

/// The encoded `FileDescriptorSet` of the contract, served by `grpc.reflection.v1`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("nol_descriptor");
