//! The conformance suite on in-process Zenoh peers over loopback TCP.

mod fixture;

use fixture::ZenohFixture;

#[test]
fn zenoh_transport_passes_the_conformance_suite() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime");
    let fixture = ZenohFixture::new();
    runtime.block_on(coord_conformance::run_and_check(&fixture));
}
