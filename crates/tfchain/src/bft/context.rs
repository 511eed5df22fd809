//! The ledger's types as Malachite sees them: heights, validator addresses (ledger accounts, whose
//! ed25519 keys sign votes and proposals), the value decided at each height (a block, named by its
//! hash; the block itself travels as proposal parts), votes, proposals, and the signing scheme. Every
//! message a validator signs starts with a domain tag, so a signature of one kind is never taken
//! for another. One borsh codec serves the network, the write-ahead log and sync.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_app_channel::app::streaming::StreamMessage;
use malachitebft_app_channel::app::types::core::SignedVote;
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::{Signer, Verifier};
use malachitebft_core_types::{
    self as mc, LinearTimeouts, NilOrVal, Round, SignedExtension, SignedMessage, ValidatorProof,
    VoteType, VotingPower,
};
use malachitebft_signing as mcs;
use malachitebft_sync::ValueResponse;
use tfgrid_types::{AccountId, Hash32, Keypair};

/// The Malachite context of the ledger.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ledger;

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0 + n)
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its ledger account (its ed25519 public key).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub AccountId);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for Address {}

/// What is decided at a height: the block with this hash.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct BlockId(pub Hash32);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// An ed25519 signature, ordered as Malachite needs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Sig(pub [u8; 64]);

/// ed25519 with the ledger's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = String;
    type Signature = Sig;
    type PublicKey = AccountId;
    type PrivateKey = Keypair;

    fn decode_signature(bytes: &[u8]) -> Result<Sig, String> {
        Ok(Sig(bytes.try_into().map_err(|_| {
            format!("a signature is 64 bytes, not {}", bytes.len())
        })?))
    }

    fn encode_signature(signature: &Sig) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<AccountId, String> {
        Ok(AccountId(bytes.try_into().map_err(|_| {
            format!("a public key is 32 bytes, not {}", bytes.len())
        })?))
    }

    fn encode_public_key(public_key: &AccountId) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    pub address: Address,
    pub public_key: AccountId,
    pub voting_power: VotingPower,
}

impl mc::Validator<Ledger> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &AccountId {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The validators of one height, in account order, one vote each.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ValidatorSet {
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    pub fn new(accounts: &[AccountId]) -> ValidatorSet {
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        ValidatorSet {
            validators: accounts
                .into_iter()
                .map(|account| Validator {
                    address: Address(account),
                    public_key: account,
                    voting_power: 1,
                })
                .collect(),
        }
    }
}

impl mc::ValidatorSet<Ledger> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.validators.iter().map(|v| v.voting_power).sum()
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub proposer: Address,
}

impl mc::Proposal<Ledger> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockId {
        &self.value
    }

    fn take_value(self) -> BlockId {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub voter: Address,
    pub extension: Option<SignedExtension<Ledger>>,
}

impl mc::Vote<Ledger> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.voter
    }

    fn extension(&self) -> Option<&SignedExtension<Ledger>> {
        self.extension.as_ref()
    }

    fn take_extension(&mut self) -> Option<SignedExtension<Ledger>> {
        self.extension.take()
    }

    fn extend(self, extension: SignedExtension<Ledger>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

/// A piece of a proposed block as it is streamed: who proposes it, then the encoded block in chunks,
/// then the end.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    Init {
        height: Height,
        round: Round,
        pol_round: Round,
        proposer: Address,
    },
    Chunk(Vec<u8>),
    Fin,
}

impl mc::ProposalPart<Ledger> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }

    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin)
    }
}

impl mc::Context for Ledger {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = Vec<u8>;
    type SigningScheme = Ed25519;

    /// Round robin over the set, shifted by one each height.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let count = validator_set.validators.len();
        assert!(count > 0, "an empty validator set");
        let round = round.as_u32().unwrap_or(0) as u64;
        let index = (height.0 + round) % count as u64;
        &validator_set.validators[index as usize]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        vote(VoteType::Prevote, height, round, value, address)
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        vote(VoteType::Precommit, height, round, value, address)
    }
}

fn vote(
    vote_type: VoteType,
    height: Height,
    round: Round,
    value: NilOrVal<BlockId>,
    voter: Address,
) -> Vote {
    Vote {
        vote_type,
        height,
        round,
        value,
        voter,
        extension: None,
    }
}

/// The bytes a validator signs: a domain tag, then the message without any signature in it.
fn signing_bytes<T: BorshSerialize>(tag: &[u8], message: &T) -> Vec<u8> {
    let mut bytes = tag.to_vec();
    message
        .serialize(&mut bytes)
        .expect("writing to a Vec cannot fail");
    bytes
}

fn vote_bytes(vote: &Vote) -> Vec<u8> {
    let unextended = Vote {
        extension: None,
        ..vote.clone()
    };
    signing_bytes(b"tfchain bft vote", &unextended)
}

fn proposal_bytes(proposal: &Proposal) -> Vec<u8> {
    signing_bytes(b"tfchain bft proposal", proposal)
}

fn extension_bytes(scope: &mc::VoteExtensionScope<Ledger>, extension: &[u8]) -> Vec<u8> {
    let fields = (
        scope.height,
        scope.round,
        scope.value_id,
        scope.validator_address,
    );
    let mut bytes = signing_bytes(b"tfchain bft vote extension", &fields);
    bytes.extend_from_slice(extension);
    bytes
}

fn check(bytes: &[u8], signature: &Sig, key: &AccountId) -> mcs::VerificationResult {
    let valid = tfgrid_types::keys::verify(key, bytes, &tfgrid_types::Signature(signature.0));
    mcs::VerificationResult::from_bool(valid)
}

/// Signs with a validator's key.
#[derive(Debug)]
pub struct KeySigner(pub Keypair);

impl KeySigner {
    fn sign(&self, bytes: &[u8]) -> Sig {
        Sig(self.0.sign(bytes).0)
    }
}

#[async_trait::async_trait]
impl Signer<Ledger> for KeySigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedVote<Ledger>, mcs::Error> {
        let signature = self.sign(&vote_bytes(&vote));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<Ledger, Proposal>, mcs::Error> {
        let signature = self.sign(&proposal_bytes(&proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: mc::VoteExtensionScope<Ledger>,
        extension: Vec<u8>,
    ) -> Result<SignedMessage<Ledger, Vec<u8>>, mcs::Error> {
        let signature = self.sign(&extension_bytes(&scope, &extension));
        Ok(SignedMessage::new(extension, signature))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<Ledger>, mcs::Error> {
        let signature = self.sign(&ValidatorProof::<Ledger>::signing_bytes(
            &public_key,
            &peer_id,
        ));
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// Checks validators' signatures.
#[derive(Debug, Clone, Copy)]
pub struct KeyVerifier;

#[async_trait::async_trait]
impl Verifier<Ledger> for KeyVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Sig,
        public_key: &AccountId,
    ) -> Result<mcs::VerificationResult, mcs::Error> {
        Ok(check(&vote_bytes(vote), signature, public_key))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Sig,
        public_key: &AccountId,
    ) -> Result<mcs::VerificationResult, mcs::Error> {
        Ok(check(&proposal_bytes(proposal), signature, public_key))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &mc::VoteExtensionScope<Ledger>,
        extension: &Vec<u8>,
        signature: &Sig,
        public_key: &AccountId,
    ) -> Result<mcs::VerificationResult, mcs::Error> {
        Ok(check(
            &extension_bytes(scope, extension),
            signature,
            public_key,
        ))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<Ledger>,
    ) -> Result<mcs::VerificationResult, mcs::Error> {
        let Ok(key) = proof.decoded_public_key() else {
            return Ok(mcs::VerificationResult::Invalid);
        };
        Ok(check(&proof.preimage(), &proof.signature, &key))
    }
}

/// Borsh for every message the engine sends, logs or syncs.
#[derive(Clone, Copy, Debug, Default)]
pub struct BorshCodec;

#[derive(Debug, thiserror::Error)]
#[error("a consensus message does not decode: {0}")]
pub struct CodecError(String);

macro_rules! borsh_codec {
    ($($t:ty),* $(,)?) => {$(
        impl malachitebft_app_channel::app::types::codec::Codec<$t> for BorshCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                borsh::from_slice(&bytes).map_err(|e| CodecError(e.to_string()))
            }

            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                borsh::to_vec(msg).map(Bytes::from).map_err(|e| CodecError(e.to_string()))
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    SignedConsensusMsg<Ledger>,
    LivenessMsg<Ledger>,
    StreamMessage<ProposalPart>,
    ProposedValue<Ledger>,
    mc::PolkaCertificate<Ledger>,
    mc::CommitCertificate<Ledger>,
    Status<Ledger>,
    Request<Ledger>,
);

/// A sync response as borsh sees it: upstream gives its commit certificates no borsh.
#[derive(BorshSerialize, BorshDeserialize)]
struct RawResponse {
    start_height: Height,
    values: Vec<RawDecided>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct RawDecided {
    value_bytes: Vec<u8>,
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<(Address, Sig, Option<SignedExtension<Ledger>>)>,
}

impl RawResponse {
    fn of(response: &Response<Ledger>) -> RawResponse {
        let Response::ValueResponse(response) = response;
        RawResponse {
            start_height: response.start_height,
            values: response
                .values
                .iter()
                .map(|v| RawDecided {
                    value_bytes: v.value_bytes.to_vec(),
                    height: v.certificate.height,
                    round: v.certificate.round,
                    value_id: v.certificate.value_id,
                    signatures: v
                        .certificate
                        .commit_signatures
                        .iter()
                        .map(|s| (s.address, s.signature, s.extension.clone()))
                        .collect(),
                })
                .collect(),
        }
    }

    fn into_response(self) -> Response<Ledger> {
        let values = self
            .values
            .into_iter()
            .map(|v| RawDecidedValue {
                value_bytes: Bytes::from(v.value_bytes),
                certificate: mc::ExtendedCommitCertificate {
                    height: v.height,
                    round: v.round,
                    value_id: v.value_id,
                    commit_signatures: v
                        .signatures
                        .into_iter()
                        .map(|(a, s, e)| mc::ExtendedCommitSignature::new(a, s, e))
                        .collect(),
                },
            })
            .collect();
        Response::ValueResponse(ValueResponse::new(self.start_height, values))
    }
}

impl malachitebft_app_channel::app::types::codec::Codec<Response<Ledger>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Response<Ledger>, CodecError> {
        let raw: RawResponse = borsh::from_slice(&bytes).map_err(|e| CodecError(e.to_string()))?;
        Ok(raw.into_response())
    }

    fn encode(&self, response: &Response<Ledger>) -> Result<Bytes, CodecError> {
        borsh::to_vec(&RawResponse::of(response))
            .map(Bytes::from)
            .map_err(|e| CodecError(e.to_string()))
    }
}

impl malachitebft_app_channel::app::types::codec::HasEncodedLen<Response<Ledger>> for BorshCodec {
    fn encoded_len(&self, response: &Response<Ledger>) -> Result<usize, CodecError> {
        borsh::object_length(&RawResponse::of(response)).map_err(|e| CodecError(e.to_string()))
    }
}

/// The validator proof has no borsh of its own upstream.
#[derive(BorshSerialize, BorshDeserialize)]
struct RawProof {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Sig,
}

impl malachitebft_app_channel::app::types::codec::Codec<ValidatorProof<Ledger>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<Ledger>, CodecError> {
        let raw: RawProof = borsh::from_slice(&bytes).map_err(|e| CodecError(e.to_string()))?;
        Ok(ValidatorProof::new(
            raw.public_key,
            raw.peer_id,
            raw.signature,
        ))
    }

    fn encode(&self, proof: &ValidatorProof<Ledger>) -> Result<Bytes, CodecError> {
        let raw = RawProof {
            public_key: proof.public_key.clone(),
            peer_id: proof.peer_id.clone(),
            signature: proof.signature,
        };
        borsh::to_vec(&raw)
            .map(Bytes::from)
            .map_err(|e| CodecError(e.to_string()))
    }
}

/// Timeouts scaled to the block time: a round that cannot propose moves on within about two blocks.
pub fn timeouts(block_time_ms: u64) -> LinearTimeouts {
    let block = std::time::Duration::from_millis(block_time_ms);
    LinearTimeouts {
        propose: block * 2,
        propose_delta: block / 2,
        prevote: block,
        prevote_delta: block / 2,
        precommit: block,
        precommit_delta: block / 2,
        rebroadcast: block * 4,
        max_timeout: block * 30,
    }
}
