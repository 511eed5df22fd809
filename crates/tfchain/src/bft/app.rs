//! The application side of Malachite: one loop answering the engine's requests. Chain work (building
//! and executing blocks, committing) runs on the loop's thread in `block_in_place`, so the engine's
//! actors keep running meanwhile; the loop owns the [`Chain`].

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use malachitebft_app_channel::app::consensus::{MisbehaviorEvidence, ProposedValue};
use malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use malachitebft_app_channel::app::streaming::StreamMessage;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, Context as _, ExtendedCommitCertificate, Round,
    ValidatorSet as _, Validity, VoteExtensions,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use tfchain_runtime::{Block, Commit};
use tfgrid_types::{Hash32, Signature};
use tokio::sync::broadcast;

use super::context::{self, Address, BlockId, Height, Ledger, ProposalPart, Sig, ValidatorSet};
use super::parts::{self, Proposed, Streams};
use crate::chain::{Chain, Committed};

/// How far ahead of this validator's clock a proposed block may be stamped.
const TIMESTAMP_AHEAD_MAX_MS: u64 = 2_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

pub struct App {
    chain: Chain,
    address: Address,
    block_time: Duration,
    finalized: broadcast::Sender<Committed>,
    /// The height and round consensus is in.
    height: Height,
    round: Round,
    /// The proposals judged at the current height, by round.
    proposals: HashMap<Round, Vec<ProposedValue<Ledger>>>,
    /// Whole proposals for a later height, judged when it starts.
    future: Vec<Proposed>,
    streams: Streams,
}

impl App {
    pub fn new(
        chain: Chain,
        address: Address,
        block_time: Duration,
        finalized: broadcast::Sender<Committed>,
    ) -> App {
        let height = Height(chain.head().height + 1);
        App {
            chain,
            address,
            block_time,
            finalized,
            height,
            round: Round::Nil,
            proposals: HashMap::new(),
            future: Vec::new(),
            streams: Streams::default(),
        }
    }

    /// The validators that decide `height` (the state is at `height - 1`).
    fn validator_set(&self, height: Height) -> ValidatorSet {
        ValidatorSet::new(&self.chain.state().validators_at(height.0))
    }

    fn params(&self, height: Height) -> HeightParams<Ledger> {
        let block_ms = self.block_time.as_millis() as u64;
        HeightParams::new(
            self.validator_set(height),
            context::timeouts(block_ms),
            Some(self.block_time),
        )
    }

    pub async fn run(&mut self, channels: &mut Channels<Ledger>) -> Result<()> {
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(msg, channels).await?;
        }
        anyhow::bail!("the consensus engine stopped")
    }

    async fn handle(&mut self, msg: AppMsg<Ledger>, channels: &mut Channels<Ledger>) -> Result<()> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let height = Height(self.chain.head().height + 1);
                tracing::info!(%height, "consensus ready");
                let _ = reply.send((height, self.params(height)));
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                reply_value,
                ..
            } => {
                tracing::debug!(%height, %round, %proposer, "round started");
                self.start_round(height, round);
                let known = self.proposals.get(&round).cloned().unwrap_or_default();
                let _ = reply_value.send(known);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => {
                let block = self.value_to_propose(height, round)?;
                let id = BlockId(block.hash());
                let _ = reply.send(LocallyProposedValue::new(height, round, id));
                self.publish(channels, height, round, Round::Nil, self.address, &block)
                    .await?;
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                // Gossip brings a stream's parts through several peers: its publisher names it.
                let value = self.received_part(published_by.unwrap_or(from), part);
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                // Decided is final: commit now, not after the height's target time.
                if let Err(e) = self.commit_decided(&certificate, Vec::new()) {
                    tracing::error!(height = %certificate.height, "cannot commit the decided block: {e:#}");
                }
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                let next = match self.finalize(&certificate, &evidence) {
                    Ok(()) => Next::Start(self.height, self.params(self.height)),
                    Err(e) => {
                        tracing::error!(height = %certificate.height, "cannot commit the decided block: {e:#}");
                        Next::Restart(self.height, self.params(self.height))
                    }
                };
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(self.decided(range)?);
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = self.synced(height, round, proposer, value_bytes);
                let _ = reply.send(outcome);
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                if let Some(block) = self.chain.candidate(&value_id.0)? {
                    self.publish(channels, height, round, valid_round, address, &block)
                        .await?;
                }
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let verdicts = extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect();
                let _ = reply.send(verdicts);
            }
        }
        Ok(())
    }

    fn start_round(&mut self, height: Height, round: Round) {
        if height != self.height {
            self.proposals.clear();
            self.streams.prune_below(height);
        }
        self.height = height;
        self.round = round;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .filter(|p| p.height >= height)
            .partition(|p| p.height == height);
        self.future = later;
        for proposed in now {
            self.judge(proposed);
        }
    }

    /// The block this validator proposes at (`height`, `round`): the one it already made for the
    /// height if any (so it never signs two different blocks for one height), else a new one.
    fn value_to_propose(&mut self, height: Height, round: Round) -> Result<Arc<Block>> {
        let mine = self
            .proposals
            .values()
            .flatten()
            .find(|p| p.proposer == self.address)
            .map(|p| p.value);
        if let Some(id) = mine
            && let Some(block) = self.chain.candidate(&id.0)?
        {
            return Ok(Arc::new(block));
        }
        let chain = &mut self.chain;
        let block = tokio::task::block_in_place(|| -> Result<_> {
            let block = chain.propose(now_ms())?;
            chain.persist_candidate(&block.hash())?;
            Ok(block)
        })?;
        tracing::debug!(%height, %round, txs = block.txs.len(), hash = %block.hash(), "proposing");
        self.remember(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer: self.address,
            value: BlockId(block.hash()),
            validity: Validity::Valid,
        });
        Ok(block)
    }

    fn remember(&mut self, value: ProposedValue<Ledger>) {
        let known = self.proposals.entry(value.round).or_default();
        if !known.contains(&value) {
            known.push(value);
        }
    }

    async fn publish(
        &self,
        channels: &mut Channels<Ledger>,
        height: Height,
        round: Round,
        pol_round: Round,
        proposer: Address,
        block: &Block,
    ) -> Result<()> {
        for message in parts::stream(height, round, pol_round, proposer, block) {
            channels
                .network
                .send(NetworkMsg::PublishProposalPart(message))
                .await
                .context("the consensus network stopped")?;
        }
        Ok(())
    }

    fn received_part(
        &mut self,
        from: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Option<ProposedValue<Ledger>> {
        let proposed = match self.streams.insert(from, part)? {
            Ok(proposed) => proposed,
            Err(e) => {
                tracing::warn!(%from, "dropped a proposal stream: {e}");
                return None;
            }
        };
        tracing::debug!(%from, height = %proposed.height, round = %proposed.round, current = %self.height, "a whole proposal");
        if proposed.height < self.height {
            return None;
        }
        if proposed.height > self.height {
            if self.future.len() >= parts::STREAMS_MAX {
                self.future.remove(0);
            }
            self.future.push(proposed);
            return None;
        }
        self.judge(proposed)
    }

    /// Executes a proposed block for the current height and records the verdict.
    fn judge(&mut self, proposed: Proposed) -> Option<ProposedValue<Ledger>> {
        let Proposed {
            height,
            round,
            pol_round,
            proposer,
            block,
        } = proposed;
        let set = self.validator_set(height);
        let expected = Ledger.select_proposer(&set, height, round).address;
        if proposer != expected {
            tracing::warn!(%height, %round, %proposer, %expected, "a proposal from the wrong proposer");
            return None;
        }
        let hash = block.hash();
        let author_is_validator = set.get_by_address(&Address(block.header.author)).is_some();
        let ahead_ms = block.header.timestamp_ms.saturating_sub(now_ms());
        let chain = &mut self.chain;
        let verdict = tokio::task::block_in_place(|| -> Result<()> {
            anyhow::ensure!(
                author_is_validator,
                "block {hash} is authored by {}, not a validator",
                block.header.author
            );
            anyhow::ensure!(
                ahead_ms <= TIMESTAMP_AHEAD_MAX_MS,
                "block {hash} is stamped {ahead_ms} ms in the future"
            );
            chain.check(block)?;
            chain.persist_candidate(&hash)
        });
        let validity = match verdict {
            Ok(()) => {
                tracing::debug!(%height, %round, %proposer, %hash, "a valid proposal");
                Validity::Valid
            }
            Err(e) => {
                tracing::warn!(%height, %round, %proposer, "an invalid proposal: {e:#}");
                Validity::Invalid
            }
        };
        let value = ProposedValue {
            height,
            round,
            valid_round: pol_round,
            proposer,
            value: BlockId(hash),
            validity,
        };
        self.remember(value.clone());
        Some(value)
    }

    /// The validators of `height` that Malachite caught signing two different messages for a step.
    fn equivocators(
        &self,
        height: Height,
        evidence: &MisbehaviorEvidence<Ledger>,
    ) -> Vec<tfgrid_types::AccountId> {
        let set = self.validator_set(height);
        let caught: Vec<_> = set
            .validators
            .iter()
            .filter(|v| {
                evidence.proposals.get(&v.address).is_some()
                    || evidence.votes.get(&v.address).is_some()
            })
            .map(|v| v.address.0)
            .collect();
        for account in &caught {
            tracing::warn!(%height, validator = %account, "equivocation: it signed two different messages for one step");
        }
        caught
    }

    /// Commits the decided block with its commit and publishes it, once: a height already
    /// committed is left as it is.
    fn commit_decided(
        &mut self,
        certificate: &CommitCertificate<Ledger>,
        equivocators: Vec<tfgrid_types::AccountId>,
    ) -> Result<()> {
        if self.chain.head().height >= certificate.height.0 {
            return Ok(());
        }
        let hash = certificate.value_id.0;
        let commit = Commit {
            height: certificate.height.0,
            round: certificate.round.as_u32().unwrap_or(0),
            block_hash: hash,
            signatures: certificate
                .commit_signatures
                .iter()
                .map(|s| (s.address.0, Signature(s.signature.0)))
                .collect(),
            equivocators,
        };
        let chain = &mut self.chain;
        let committed = tokio::task::block_in_place(|| -> Result<_> {
            if !chain.is_judged(&hash) {
                // Judged before a restart: the store kept it.
                let block = chain
                    .candidate(&hash)?
                    .with_context(|| format!("the decided block {hash} is unknown here"))?;
                chain.check(block)?;
            }
            chain.commit(&hash, Some(&commit))
        })?;
        tracing::debug!(
            height = committed.block.header.height,
            txs = committed.block.txs.len(),
            round = commit.round,
            "committed"
        );
        // No subscriber is not an error.
        let _ = self.finalized.send(committed);
        self.height = Height(self.chain.head().height + 1);
        self.round = Round::Nil;
        self.proposals.clear();
        Ok(())
    }

    /// The height is over: its block is committed (if `Decided` could not), and the equivocations
    /// seen at it are added to its commit.
    fn finalize(
        &mut self,
        certificate: &CommitCertificate<Ledger>,
        evidence: &MisbehaviorEvidence<Ledger>,
    ) -> Result<()> {
        let equivocators = self.equivocators(certificate.height, evidence);
        if self.chain.head().height < certificate.height.0 {
            return self.commit_decided(certificate, equivocators);
        }
        if !equivocators.is_empty() {
            let store = self.chain.store();
            let mut commit = store
                .commit(certificate.height.0)?
                .context("a committed block without its commit")?;
            commit.equivocators = equivocators;
            store.put_commit(&commit)?;
        }
        Ok(())
    }

    /// Decided blocks with their commits, for a peer that syncs.
    fn decided(&self, range: RangeInclusive<Height>) -> Result<Vec<RawDecidedValue<Ledger>>> {
        let store = self.chain.store();
        let mut values = Vec::new();
        for height in range.start().0..=range.end().0 {
            let (Some(block), Some(commit)) = (store.block(height)?, store.commit(height)?) else {
                break;
            };
            let certificate = CommitCertificate {
                height: Height(commit.height),
                round: Round::new(commit.round),
                value_id: BlockId(commit.block_hash),
                commit_signatures: commit
                    .signatures
                    .iter()
                    .map(|(account, sig)| CommitSignature::new(Address(*account), Sig(sig.0)))
                    .collect(),
            };
            values.push(RawDecidedValue {
                value_bytes: Bytes::from(block.encode()),
                certificate: ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    VoteExtensions::default(),
                ),
            });
        }
        Ok(values)
    }

    /// A decided block a peer sent while this node catches up: judged like a proposal.
    fn synced(
        &mut self,
        height: Height,
        round: Round,
        proposer: Address,
        value_bytes: Bytes,
    ) -> SyncedValueOutcome<Ledger> {
        let Ok(block) = Block::decode(&value_bytes) else {
            return SyncedValueOutcome::PeerFault;
        };
        let hash: Hash32 = block.hash();
        let chain = &mut self.chain;
        let verdict = tokio::task::block_in_place(|| chain.check(block));
        let validity = match verdict {
            Ok(_) => Validity::Valid,
            Err(e) => {
                tracing::warn!(%height, "a synced block is invalid: {e:#}");
                Validity::Invalid
            }
        };
        SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: BlockId(hash),
            validity,
        })
    }
}
