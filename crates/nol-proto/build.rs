//! Compiles `proto/nol/v1` with protox (a protobuf compiler written in Rust), so a fresh machine
//! needs no system `protoc`.
use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not compiled in: checkouts sharing one target directory share this
    // script's binary, and each must compile its own protos.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "common",
        "registry",
        "registry_imports",
        "registry_checks",
        "case_file",
        "cases",
        "suspects",
        "transfer",
        "assistance",
        "reporting",
        "events",
        "admin",
        "supervision",
    ]
    .map(|name| proto_root.join(format!("nol/v1/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("nol_descriptor.bin"), descriptors.encode_to_vec())?;
    // Type names let the codec find each request's descriptor; the codec checks every request's
    // texts and lists against one set of limits before a handler sees it (`crate::bounded`).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::bounded::BoundedCodec")
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
