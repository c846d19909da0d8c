//! Compiles `proto/printwatch/v1/*.proto` with protox, a pure-Rust protobuf
//! compiler, so building needs no `protoc` on the machine.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): checkouts that share one target
    // folder share this script's binary too, and a path baked in at compile
    // time would make every checkout compile the first one's protos.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("printwatch/v1/events.proto"),
        root.join("printwatch/v1/agent.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
