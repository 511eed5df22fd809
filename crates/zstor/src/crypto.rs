//! The encryption key and the two authenticated ciphers (ring's AES-256-GCM and
//! ChaCha20-Poly1305), sealing and opening buffers in place. The key check value lets a reader tell
//! a wrong key from corrupt data.

use crate::config::CipherKind;
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// Bytes of the authentication tag appended to everything sealed.
pub const TAG_BYTES: usize = 16;

/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 12;

/// Both ciphers keyed with the configured key: files record which one they were written with.
pub struct Keys {
    aes: LessSafeKey,
    chacha: LessSafeKey,
    check: [u8; 8],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("check", &hex::encode(self.check))
            .finish()
    }
}

/// Sealed data did not authenticate: wrong key, or bytes changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

impl Keys {
    pub fn new(key: &[u8; 32]) -> Keys {
        let bind = |alg| LessSafeKey::new(UnboundKey::new(alg, key).expect("32-byte key"));
        let check = blake3::keyed_hash(key, b"zstor key check v1").as_bytes()[..8]
            .try_into()
            .expect("8 bytes");
        Keys {
            aes: bind(&AES_256_GCM),
            chacha: bind(&CHACHA20_POLY1305),
            check,
        }
    }

    /// A value derived from the key that reveals nothing about it, stored beside sealed metadata.
    pub fn check(&self) -> [u8; 8] {
        self.check
    }

    fn cipher(&self, kind: CipherKind) -> &LessSafeKey {
        match kind {
            CipherKind::Aes256Gcm => &self.aes,
            CipherKind::ChaCha20Poly1305 => &self.chacha,
        }
    }

    /// Encrypts `data` in place and returns the tag. A nonce must never repeat under one key.
    pub fn seal(
        &self,
        kind: CipherKind,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        data: &mut [u8],
    ) -> [u8; TAG_BYTES] {
        let tag = self
            .cipher(kind)
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data)
            .expect("sealing fails only beyond 2^36 bytes per chunk");
        tag.as_ref().try_into().expect("16-byte tag")
    }

    /// Decrypts `sealed` (ciphertext followed by its tag) in place; returns the length of the
    /// plaintext, now at the start of `sealed`.
    pub fn open(
        &self,
        kind: CipherKind,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Result<usize, OpenError> {
        self.cipher(kind)
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
            .map(|plain| plain.len())
            .map_err(|_| OpenError)
    }
}

/// Cipher kind from its stored discriminant.
pub fn cipher_from_u8(value: u8) -> Option<CipherKind> {
    match value {
        0 => Some(CipherKind::Aes256Gcm),
        1 => Some(CipherKind::ChaCha20Poly1305),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_both_ciphers() {
        let keys = Keys::new(&[7; 32]);
        for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            let mut data = b"attack at dawn".to_vec();
            let tag = keys.seal(kind, [1; 12], b"aad", &mut data);
            assert_ne!(&data[..], b"attack at dawn");
            data.extend_from_slice(&tag);
            let mut wrong_aad = data.clone();
            assert_eq!(
                keys.open(kind, [1; 12], b"other", &mut wrong_aad),
                Err(OpenError)
            );
            let mut wrong_key = data.clone();
            assert_eq!(
                Keys::new(&[8; 32]).open(kind, [1; 12], b"aad", &mut wrong_key),
                Err(OpenError)
            );
            let n = keys.open(kind, [1; 12], b"aad", &mut data).unwrap();
            assert_eq!(&data[..n], b"attack at dawn");
        }
        assert_ne!(Keys::new(&[7; 32]).check(), Keys::new(&[8; 32]).check());
    }
}
