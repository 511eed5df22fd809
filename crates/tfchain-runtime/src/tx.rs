//! Transactions: a call signed by an account with its nonce. The signature covers the genesis hash,
//! so a transaction is valid on one chain only. One enum names every call of every module.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::Hash32;
use tfgrid_types::codec::{self, CodecError};
use tfgrid_types::keys::{self, AccountId, Keypair, Signature};

use crate::limits::TX_BYTES_MAX;
use crate::{balances, council, kvstore, smart_contract, tfgrid};

/// Every call of the ledger, by module.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "module", content = "call")]
pub enum Call {
    Balances(balances::Call),
    Tfgrid(tfgrid::Call),
    Council(council::Call),
    Kv(kvstore::Call),
    SmartContract(smart_contract::Call),
}

impl Call {
    /// Whether the call pays a fee. Node reports and updates are free, as on TFChain (`Pays::No`).
    pub fn pays_fee(&self) -> bool {
        if let Call::SmartContract(call) = self {
            return call.pays_fee();
        }
        !matches!(
            self,
            Call::Tfgrid(
                tfgrid::Call::ReportUptime { .. }
                    | tfgrid::Call::UpdateNode { .. }
                    | tfgrid::Call::ChangePowerState { .. }
            )
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    pub signer: AccountId,
    pub nonce: u64,
    pub call: Call,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    /// The bytes a signer signs: the transaction bound to one chain by its genesis hash.
    pub fn signing_payload(&self, genesis_hash: &Hash32) -> Vec<u8> {
        let mut payload = b"tfchain tx v1".to_vec();
        payload.extend_from_slice(&genesis_hash.0);
        payload.extend_from_slice(&codec::encode(self));
        payload
    }

    pub fn sign(self, key: &Keypair, genesis_hash: &Hash32) -> SignedTransaction {
        assert_eq!(
            key.account(),
            self.signer,
            "signing with another account's key"
        );
        let signature = key.sign(&self.signing_payload(genesis_hash));
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, CodecError> {
        codec::decode("transaction", bytes, TX_BYTES_MAX)
    }

    pub fn hash(&self) -> Hash32 {
        Hash32::of_encoded("tfchain tx", self)
    }

    pub fn verify_signature(&self, genesis_hash: &Hash32) -> bool {
        keys::verify(
            &self.tx.signer,
            &self.tx.signing_payload(genesis_hash),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn transfer(nonce: u64) -> Transaction {
        let alice = Keypair::from_uri("//Alice").unwrap();
        Transaction {
            signer: alice.account(),
            nonce,
            call: Call::Balances(balances::Call::Transfer {
                dest: Keypair::from_uri("//Bob").unwrap().account(),
                amount: 5,
            }),
        }
    }

    #[test]
    fn signature_binds_chain_and_content() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        let chain = Hash32::of("test", b"chain a");
        let signed = transfer(0).sign(&alice, &chain);
        assert!(signed.verify_signature(&chain));
        assert!(!signed.verify_signature(&Hash32::of("test", b"chain b")));
        let mut tampered = signed.clone();
        tampered.tx.nonce = 1;
        assert!(!tampered.verify_signature(&chain));
        let decoded = SignedTransaction::decode(&signed.encode()).unwrap();
        assert_eq!(decoded, signed);
    }

    #[test]
    fn decoding_rejects_trailing_and_oversized_bytes() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        let mut bytes = transfer(0).sign(&alice, &Hash32::default()).encode();
        bytes.push(0);
        assert!(SignedTransaction::decode(&bytes).is_err());
        let huge = vec![0u8; TX_BYTES_MAX + 1];
        assert!(matches!(
            SignedTransaction::decode(&huge),
            Err(CodecError::TooLarge { .. })
        ));
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder, and what decodes re-encodes to the same bytes.
        #[test]
        fn decode_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(tx) = SignedTransaction::decode(&bytes) {
                prop_assert_eq!(tx.encode(), bytes);
            }
        }

        /// Mutating one byte of a valid transaction either fails to decode, or fails its signature,
        /// or decodes to the very same transaction.
        #[test]
        fn mutated_transactions_fail(pos in 0usize..200, byte in any::<u8>()) {
            let alice = Keypair::from_uri("//Alice").unwrap();
            let chain = Hash32::default();
            let signed = transfer(7).sign(&alice, &chain);
            let mut bytes = signed.encode();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(tx) = SignedTransaction::decode(&bytes) {
                prop_assert!(tx == signed || !tx.verify_signature(&chain));
            }
        }
    }
}

macro_rules! into_call {
    ($($module:ident => $variant:ident),*) => {$(
        impl From<$module::Call> for Call {
            fn from(call: $module::Call) -> Call {
                Call::$variant(call)
            }
        }
    )*};
}
into_call!(balances => Balances, tfgrid => Tfgrid, council => Council, kvstore => Kv, smart_contract => SmartContract);
