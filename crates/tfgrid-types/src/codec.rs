//! The canonical binary codec (borsh): what is hashed, signed, stored and sent. Decoding checks a size
//! bound first and rejects trailing bytes, so one value has exactly one encoding.

use borsh::{BorshDeserialize, BorshSerialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// The canonical encoding of a value.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("encoding into memory cannot fail")
}

/// Decodes `what` from exactly `bytes`, refusing more than `max_len` bytes before reading any.
pub fn decode<T: BorshDeserialize>(
    what: &'static str,
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CodecError> {
    if bytes.len() > max_len {
        return Err(CodecError::TooLarge {
            what,
            len: bytes.len(),
            max: max_len,
        });
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed {
        what,
        reason: e.to_string(),
    })
}
