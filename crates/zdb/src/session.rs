//! Per-connection state: client id, selected namespace (and its generation), admin flag, write
//! access, and the nonce of a pending secure challenge.

use sha1::{Digest, Sha1};

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub ns: String,
    pub generation: u64,
    pub admin: bool,
    pub writable: bool,
    pub nonce: Option<String>,
}

/// Lowercase hex of sha1("<nonce>:<password>"), the proof AUTH SECURE and SELECT SECURE expect.
pub fn secure_hash(nonce: &str, password: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(nonce.as_bytes());
    hasher.update(b":");
    hasher.update(password);
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    #[test]
    fn secure_hash_is_sha1_of_nonce_colon_password() {
        // Expected values from `echo -n '<nonce>:<password>' | sha1sum`.
        assert_eq!(
            super::secure_hash("abc", b""),
            "7fe0b7d5db5df8356de40b0fc54884846a66d386"
        );
        assert_eq!(
            super::secure_hash("1234567890abcdef", b"secret"),
            "05dbb1dfa450712e259f571e2689fd83e56f6604"
        );
    }
}
