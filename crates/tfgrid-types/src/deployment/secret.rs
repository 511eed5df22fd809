//! Secret fields of a deployment (environment values, passwords, WireGuard keys). On the ledger they
//! are always sealed to the node's key; a client writes them in the clear and seals them before it
//! signs, and the node opens them when it provisions.

use borsh::{BorshDeserialize, BorshSerialize};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::keys::{self, AccountId, KeyError, Keypair};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Secret {
    /// Written by a user; never accepted by the ledger.
    Plain(String),
    /// Sealed to the node (hex in JSON).
    Sealed(#[serde(with = "hex_bytes")] Vec<u8>),
}

mod hex_bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

impl Secret {
    pub fn is_sealed(&self) -> bool {
        matches!(self, Secret::Sealed(_))
    }

    /// Seals a plain secret to `node`; a sealed one stays as it is.
    pub fn seal<R: RngCore + CryptoRng>(
        &mut self,
        node: &AccountId,
        rng: &mut R,
    ) -> Result<(), KeyError> {
        if let Secret::Plain(text) = self {
            *self = Secret::Sealed(keys::seal(node, text.as_bytes(), rng)?);
        }
        Ok(())
    }

    /// The secret in the clear, opened with the node's key.
    pub fn open(&self, node: &Keypair) -> Option<String> {
        match self {
            Secret::Plain(text) => Some(text.clone()),
            Secret::Sealed(bytes) => String::from_utf8(node.open(bytes)?).ok(),
        }
    }

    /// Whether the secret is empty (a sealed box always has content).
    pub fn is_empty(&self) -> bool {
        matches!(self, Secret::Plain(text) if text.is_empty())
    }
}
