//! Sealing: HMAC-SHA256 over the frame with the cluster secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::identity::Secret;

/// Length of the MAC that ends a sealed frame.
pub const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

fn keyed(secret: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose()).expect("HMAC accepts keys of any length")
}

/// The MAC of `signed` under `secret`.
pub(super) fn mac(secret: &Secret, signed: &[u8]) -> [u8; MAC_LEN] {
    let mut m = keyed(secret);
    m.update(signed);
    m.finalize().into_bytes().into()
}

/// Whether `tag` is the MAC of `signed` under `secret` (constant time).
pub(super) fn verify(secret: &Secret, signed: &[u8], tag: &[u8]) -> bool {
    let mut m = keyed(secret);
    m.update(signed);
    m.verify_slice(tag).is_ok()
}
