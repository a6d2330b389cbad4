//! Encoding and decoding whole frames.

use bytes::Bytes;

use super::envelope::{Envelope, EnvelopeRef};
use super::seal::{self, MAC_LEN};
use crate::identity::Secret;

/// The first two bytes of every frame.
pub const MAGIC: [u8; 2] = [0xC0, 0x0D];
/// The wire format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Flag bit: the frame ends with a MAC.
const FLAG_SEALED: u8 = 0b0000_0001;
/// Magic, version and flags.
const PREFIX_LEN: usize = 4;

/// Why a frame was rejected. Each maps to one drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Too short, or not starting with the magic bytes.
    #[error("not a coord frame (no magic bytes)")]
    NotAFrame,
    /// A format version this build does not know.
    #[error("unknown wire format version {0}")]
    UnknownVersion(u8),
    /// Flags this build does not know.
    #[error("unknown flags {0:#04x}")]
    UnknownFlags(u8),
    /// The envelope does not decode, or bytes are left over.
    #[error("malformed envelope")]
    Malformed,
    /// A secret is configured and the frame carries no MAC.
    #[error("unsigned frame")]
    Unsigned,
    /// The MAC does not match (another key, or altered bytes).
    #[error("bad MAC")]
    BadMac,
}

/// Encodes `envelope` into a frame, sealed when a secret is given.
pub fn encode(envelope: &Envelope, secret: Option<&Secret>) -> Bytes {
    let flags = if secret.is_some() { FLAG_SEALED } else { 0 };
    // Room for the whole frame at once: a frame of many events grown from a
    // small buffer would be copied at every doubling.
    let mut out = Vec::with_capacity(PREFIX_LEN + envelope.encoded_len_hint() + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    let mut out = postcard::to_extend(envelope, out).expect("postcard encodes envelopes into a Vec");
    if let Some(secret) = secret {
        let tag = seal::mac(secret, &out);
        out.extend_from_slice(&tag);
    }
    Bytes::from(out)
}

/// Decodes and authenticates a frame. With a secret, only frames sealed with
/// that secret pass; without one, the MAC (if any) is not checked. The
/// events are copied out of `frame`; [`decode_shared`] shares them instead.
pub fn decode(frame: &[u8], secret: Option<&Secret>) -> Result<Envelope, FrameError> {
    decode_shared(&Bytes::copy_from_slice(frame), secret)
}

/// [`decode`] of a frame already in a [`Bytes`]: each event's body is a
/// slice of `frame` (no copy, no allocation per event), which keeps the
/// frame's buffer alive as long as an event of it is.
pub fn decode_shared(frame: &Bytes, secret: Option<&Secret>) -> Result<Envelope, FrameError> {
    if frame.len() < PREFIX_LEN || frame[..2] != MAGIC {
        return Err(FrameError::NotAFrame);
    }
    if frame[2] != VERSION {
        return Err(FrameError::UnknownVersion(frame[2]));
    }
    let flags = frame[3];
    if flags & !FLAG_SEALED != 0 {
        return Err(FrameError::UnknownFlags(flags));
    }
    let sealed = flags & FLAG_SEALED != 0;
    let signed_len = if sealed {
        frame
            .len()
            .checked_sub(MAC_LEN)
            .filter(|&n| n >= PREFIX_LEN)
            .ok_or(FrameError::Malformed)?
    } else {
        frame.len()
    };
    if let Some(secret) = secret {
        if !sealed {
            return Err(FrameError::Unsigned);
        }
        if !seal::verify(secret, &frame[..signed_len], &frame[signed_len..]) {
            return Err(FrameError::BadMac);
        }
    }
    match postcard::take_from_bytes::<EnvelopeRef<'_>>(&frame[PREFIX_LEN..signed_len]) {
        Ok((envelope, [])) => Ok(envelope.share(frame)),
        _ => Err(FrameError::Malformed),
    }
}
