//! Wire format version 1: one frame is a 4-byte prefix, one postcard-encoded
//! [`Envelope`], and (when sealed) a 32-byte HMAC-SHA256 over everything before
//! it. `docs/wire-format.md` specifies it byte for byte; `golden/` holds test
//! vectors that every later version must still decode identically.

mod envelope;
mod frame;
mod seal;

pub use envelope::{Body, Envelope, NodeMeta, Stream};
pub use frame::{FrameError, MAGIC, VERSION, decode, decode_shared, encode};
pub use seal::MAC_LEN;

#[cfg(test)]
mod tests;
