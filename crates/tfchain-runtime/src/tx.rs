//! Transactions: a call signed by an account with its nonce. The signature covers the genesis hash,
//! so a transaction is valid on one chain only. One enum names every call of every module.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::Hash32;
use tfgrid_types::codec::{self, CodecError};
use tfgrid_types::keys::{self, AccountId, Keypair, Signature};

use crate::limits::TX_BYTES_MAX;
use crate::{balances, council, kvstore, smart_contract, tfgrid, validators};

/// Every call of the ledger, by module.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "module", content = "call")]
pub enum Call {
    Balances(balances::Call),
    Tfgrid(tfgrid::Call),
    Council(council::Call),
    Kv(kvstore::Call),
    SmartContract(smart_contract::Call),
    Validators(validators::Call),
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
pub(crate) mod tests {
    use super::*;
    use crate::tfgrid::IpInput;
    use crate::types::{Interface, Location, NodeSpec, Power, Resources};
    use mutation::{Mutation, mutate, mutation};
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestRunner};
    use tfgrid_types::keys::AccountId;

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

    pub(crate) fn text() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    pub(crate) fn account() -> impl Strategy<Value = AccountId> {
        any::<[u8; 32]>().prop_map(AccountId)
    }

    fn node_spec() -> impl Strategy<Value = NodeSpec> {
        let resources =
            any::<[u64; 4]>().prop_map(|[hru, sru, cru, mru]| Resources { hru, sru, cru, mru });
        let location =
            [text(), text(), text(), text()].prop_map(|[city, country, la, lo]| Location {
                city,
                country,
                latitude: la,
                longitude: lo,
            });
        let interface = (text(), text(), prop::collection::vec(text(), 0..3))
            .prop_map(|(name, mac, ips)| Interface { name, mac, ips });
        (
            any::<u32>(),
            resources,
            location,
            prop::collection::vec(interface, 0..3),
            any::<(bool, bool)>(),
            prop::option::of(text()),
        )
            .prop_map(
                |(farm_id, resources, location, interfaces, (secure_boot, virtualized), serial)| {
                    NodeSpec {
                        farm_id,
                        resources,
                        location,
                        interfaces,
                        secure_boot,
                        virtualized,
                        serial_number: serial,
                    }
                },
            )
    }

    /// Calls of every module, with arbitrary fields (valid encodings, not necessarily valid calls).
    fn call() -> impl Strategy<Value = Call> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..40);
        let ip = (text(), text()).prop_map(|(ip, gw)| IpInput { ip, gw });
        prop_oneof![
            (account(), any::<u128>()).prop_map(|(dest, amount)| balances::Call::Transfer {
                dest,
                amount
            }
            .into()),
            (bytes(), bytes()).prop_map(|(key, value)| kvstore::Call::Set { key, value }.into()),
            bytes().prop_map(|key| kvstore::Call::Delete { key }.into()),
            (prop::option::of(text()), prop::option::of(bytes()))
                .prop_map(|(relay, pk)| tfgrid::Call::CreateTwin { relay, pk }.into()),
            (text(), prop::collection::vec(ip, 0..3)).prop_map(|(name, public_ips)| {
                tfgrid::Call::CreateFarm { name, public_ips }.into()
            }),
            node_spec().prop_map(|spec| tfgrid::Call::CreateNode(spec).into()),
            any::<(u64, u64)>().prop_map(|(uptime_s, timestamp_hint_s)| {
                tfgrid::Call::ReportUptime {
                    uptime_s,
                    timestamp_hint_s,
                }
                .into()
            }),
            any::<bool>().prop_map(|up| {
                let power = if up { Power::Up } else { Power::Down };
                tfgrid::Call::ChangePowerState { power }.into()
            }),
            (any::<u32>(), bytes(), text()).prop_map(|(threshold, call, description)| {
                council::Call::Propose {
                    threshold,
                    call,
                    description,
                }
                .into()
            }),
            (prop::collection::vec(account(), 0..4), any::<u32>()).prop_map(
                |(members, threshold)| council::Call::SetMembers { members, threshold }.into()
            ),
            text().prop_map(|name| smart_contract::Call::CreateNameContract { name }.into()),
            any::<u64>()
                .prop_map(
                    |contract_id| smart_contract::Call::CancelContract { contract_id }.into()
                ),
            any::<(u32, u32)>().prop_map(|(min_musd, max_musd)| {
                smart_contract::Call::SetTftPriceBounds { min_musd, max_musd }.into()
            }),
            prop::collection::vec(account(), 0..4)
                .prop_map(|validators| validators::Call::SetValidators { validators }.into()),
        ]
    }

    /// The chain the generated transactions are signed for.
    pub(crate) const CHAIN: Hash32 = Hash32([7; 32]);

    /// Transactions of any call, signed for [`CHAIN`] by a key drawn from a seed.
    pub(crate) fn signed_tx() -> impl Strategy<Value = SignedTransaction> {
        (any::<[u8; 32]>(), any::<u64>(), call()).prop_map(|(seed, nonce, call)| {
            let key = Keypair::from_seed(seed);
            Transaction {
                signer: key.account(),
                nonce,
                call,
            }
            .sign(&key, &CHAIN)
        })
    }

    pub(crate) const CASES: u32 = 512;

    /// Runs `test` on [`CASES`] inputs from `strategy`; returns how many decoded (`true`) and how
    /// many were refused (`false`).
    pub(crate) fn tally<S: Strategy>(
        strategy: S,
        test: impl Fn(S::Value) -> Result<bool, TestCaseError>,
    ) -> (u32, u32) {
        let counts = std::cell::Cell::new((0, 0));
        TestRunner::new(ProptestConfig::with_cases(CASES))
            .run(&strategy, |value| {
                let (decoded, refused) = counts.get();
                counts.set(if test(value)? {
                    (decoded + 1, refused)
                } else {
                    (decoded, refused + 1)
                });
                Ok(())
            })
            .unwrap();
        counts.get()
    }

    /// Whether a decode failed because its input ended early (borsh's wording), not as garbage.
    pub(crate) fn cut_short<T>(result: &Result<T, CodecError>) -> bool {
        matches!(result, Err(CodecError::Malformed { reason, .. })
            if reason.contains("Unexpected length of input"))
    }

    /// Every strict prefix of `valid` is refused as cut short.
    pub(crate) fn prefixes_cut_short<T: std::fmt::Debug>(
        valid: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, CodecError>,
    ) -> Result<(), TestCaseError> {
        for cut in 0..valid.len() {
            let result = decode(&valid[..cut]);
            prop_assert!(cut_short(&result), "cut at {}: {:?}", cut, result);
        }
        Ok(())
    }

    /// Decodes `valid` changed by `m` with `decode`: a value must be the one encoding of itself
    /// (the codec is canonical); a refusal must say why, and a cut one must say it ran out of
    /// input. Returns the value if it decoded.
    pub(crate) fn decode_mutated<T: BorshSerialize + std::fmt::Debug>(
        valid: &[u8],
        m: &Mutation,
        decode: impl Fn(&[u8]) -> Result<T, CodecError>,
    ) -> Result<Option<T>, TestCaseError> {
        let input = mutate(valid, m);
        let result = decode(&input);
        if matches!(m, Mutation::Truncate(_)) {
            prop_assert!(cut_short(&result), "a cut encoding gave {:?}", result);
        }
        match result {
            Ok(value) => {
                prop_assert_eq!(codec::encode(&value), input);
                Ok(Some(value))
            }
            Err(CodecError::Malformed { reason, .. }) => {
                prop_assert!(!reason.is_empty());
                Ok(None)
            }
            Err(e) => Err(TestCaseError::fail(format!("unexpected {e}"))),
        }
    }

    /// The mutated runs must reach real decodes as well as refusals.
    pub(crate) fn assert_both_outcomes((decoded, refused): (u32, u32)) {
        assert!(
            decoded >= CASES / 20,
            "{decoded} decoded, {refused} refused"
        );
        assert!(refused >= CASES / 2, "{decoded} decoded, {refused} refused");
    }

    /// Valid transactions decode back to themselves and keep their signature; every strict
    /// prefix is refused as cut short.
    #[test]
    fn valid_transactions_roundtrip() {
        let (decoded, _) = tally(signed_tx(), |signed| {
            let bytes = signed.encode();
            let back = SignedTransaction::decode(&bytes);
            prop_assert_eq!(back.as_ref(), Ok(&signed));
            prop_assert!(back.unwrap().verify_signature(&CHAIN));
            prefixes_cut_short(&bytes, SignedTransaction::decode)?;
            Ok(true)
        });
        assert_eq!(decoded, CASES);
    }

    /// A changed valid transaction decodes to a value that is its own encoding, or is refused
    /// with a reason (cut ones as cut short); one that decodes to something else fails its
    /// signature.
    #[test]
    fn mutated_transactions_decode_or_are_refused() {
        let counts = tally((signed_tx(), mutation()), |(signed, m)| {
            let decoded = decode_mutated(&signed.encode(), &m, SignedTransaction::decode)?;
            if let Some(tx) = &decoded {
                prop_assert!(*tx == signed || !tx.verify_signature(&CHAIN));
            }
            Ok(decoded.is_some())
        });
        assert_both_outcomes(counts);
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
into_call!(balances => Balances, tfgrid => Tfgrid, council => Council, kvstore => Kv, smart_contract => SmartContract, validators => Validators);
