//! The conformance suite on the in-memory transport: runs on every plain `cargo test`.

use coord_conformance::{MemoryFixture, run_and_check};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_conformance_suite() {
    run_and_check(&MemoryFixture::new()).await;
}
