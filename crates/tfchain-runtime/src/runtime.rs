//! The ledger's state transition: blocks begin, transactions apply one by one (fee and nonce first,
//! then the call, rolled back whole if it fails), blocks end with their change set and state root.

use tfgrid_types::keys::AccountId;
use tfgrid_types::{Balance, Hash32};

use crate::block::EventRecord;
use crate::error::{DispatchError, TxInvalid};
use crate::event::Event;
use crate::state::State;
use crate::table::Change;
use crate::tx::{Call, SignedTransaction};
use crate::{balances, council, kvstore, smart_contract, tfgrid, validators};

/// Who makes a call: a signed account, or the council through an approved motion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Signed(AccountId),
    Council,
}

impl Origin {
    pub fn signer(&self) -> Result<AccountId, DispatchError> {
        match self {
            Origin::Signed(account) => Ok(*account),
            Origin::Council => Err(DispatchError::RequiresSigner),
        }
    }

    pub fn ensure_council(&self) -> Result<(), DispatchError> {
        match self {
            Origin::Council => Ok(()),
            Origin::Signed(_) => Err(DispatchError::RequiresCouncil),
        }
    }
}

/// What a call sees: the state, the block it runs in, and where its events go.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub state: &'a mut State,
    pub height: u64,
    /// Block time in unix seconds.
    pub now_s: u64,
    pub events: Vec<Event>,
}

impl Ctx<'_> {
    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// Runs one call.
pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::Balances(call) => balances::dispatch(ctx, origin, call),
        Call::Tfgrid(call) => tfgrid::dispatch(ctx, origin, call),
        Call::Council(call) => council::dispatch(ctx, origin, call),
        Call::Kv(call) => kvstore::dispatch(ctx, origin, call),
        Call::SmartContract(call) => smart_contract::dispatch(ctx, origin, call),
        Call::Validators(call) => validators::dispatch(ctx, origin, call),
    }
}

/// The outcome of an included transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub fee: Balance,
    /// The call's error, if it failed.
    pub error: Option<DispatchError>,
}

/// What a finished block produced.
#[derive(Debug)]
pub struct BlockOutcome {
    pub changes: Vec<Change>,
    pub state_root: Hash32,
    pub events: Vec<EventRecord>,
}

#[derive(Debug)]
struct OpenBlock {
    height: u64,
    timestamp_ms: u64,
    tx_count: u32,
    events: Vec<EventRecord>,
}

/// The ledger state and the block being built on it.
#[derive(Debug)]
pub struct Runtime {
    pub state: State,
    open: Option<OpenBlock>,
}

impl Runtime {
    pub fn new(state: State) -> Runtime {
        Runtime { state, open: None }
    }

    /// Opens a block: runs what every block does before its transactions (a scheduled validator
    /// set taking effect, billing, rewards).
    pub fn begin_block(&mut self, height: u64, timestamp_ms: u64) {
        assert!(self.open.is_none(), "a block is already open");
        let mut ctx = Ctx {
            state: &mut self.state,
            height,
            now_s: timestamp_ms / 1000,
            events: Vec::new(),
        };
        validators::on_initialize(&mut ctx);
        smart_contract::on_initialize(&mut ctx);
        let events = ctx
            .events
            .into_iter()
            .map(|event| EventRecord {
                tx_index: None,
                event,
            })
            .collect();
        self.state.commit_tx();
        self.open = Some(OpenBlock {
            height,
            timestamp_ms,
            tx_count: 0,
            events,
        });
    }

    /// The fee a transaction of `encoded_len` bytes pays.
    pub fn fee(&self, call: &Call, encoded_len: usize) -> Balance {
        if !call.pays_fee() {
            return 0;
        }
        let params = self.state.params();
        params.tx_base_fee + params.tx_byte_fee * encoded_len as Balance
    }

    /// Checks a transaction against the state without applying it. `nonces_ahead` is how far past the
    /// account's next nonce it may be (0 at inclusion; more for a pool). Signatures are checked apart.
    pub fn check_tx(
        &self,
        tx: &SignedTransaction,
        encoded_len: usize,
        nonces_ahead: u64,
    ) -> Result<Balance, TxInvalid> {
        if encoded_len > crate::limits::TX_BYTES_MAX {
            return Err(TxInvalid::TooLarge(encoded_len));
        }
        let account = self
            .state
            .accounts
            .get(&tx.tx.signer)
            .cloned()
            .unwrap_or_default();
        if tx.tx.nonce < account.nonce {
            return Err(TxInvalid::StaleNonce {
                expected: account.nonce,
                got: tx.tx.nonce,
            });
        }
        if tx.tx.nonce > account.nonce.saturating_add(nonces_ahead) {
            return Err(TxInvalid::FutureNonce {
                expected: account.nonce,
                got: tx.tx.nonce,
            });
        }
        let fee = self.fee(&tx.tx.call, encoded_len);
        if account.free < fee {
            return Err(TxInvalid::CannotPayFee {
                fee,
                available: account.free,
            });
        }
        Ok(fee)
    }

    /// Applies one transaction in the open block. An invalid one changes nothing; a valid one pays
    /// its fee and bumps its nonce even when its call fails.
    pub fn apply_tx(
        &mut self,
        tx: &SignedTransaction,
        encoded_len: usize,
    ) -> Result<Receipt, TxInvalid> {
        let receipt = self.run_tx(tx, encoded_len)?;
        self.state.commit_tx();
        Ok(receipt)
    }

    /// Runs a transaction in the open block as `apply_tx` would, returns what it did, and undoes
    /// it: the open block is as before. A node keeps a block open on its head (its billing done
    /// once) and answers every dry run this way.
    pub fn try_tx(
        &mut self,
        tx: &SignedTransaction,
        encoded_len: usize,
    ) -> Result<(Receipt, Vec<EventRecord>), TxInvalid> {
        let savepoint = self.state.savepoint();
        let open = self.open.as_ref().expect("try_tx outside a block");
        let (tx_count, events) = (open.tx_count, open.events.len());
        let receipt = self.run_tx(tx, encoded_len);
        self.state.rollback_to(&savepoint);
        let open = self.open.as_mut().expect("block still open");
        open.tx_count = tx_count;
        let tried = open.events.split_off(events);
        receipt.map(|r| (r, tried))
    }

    /// Applies one transaction in the open block, its changes left in the running transaction's
    /// undo log.
    fn run_tx(&mut self, tx: &SignedTransaction, encoded_len: usize) -> Result<Receipt, TxInvalid> {
        let fee = self.check_tx(tx, encoded_len, 0)?;
        let open = self.open.as_mut().expect("apply_tx outside a block");
        let index = open.tx_count;
        open.tx_count += 1;
        let (height, now_s) = (open.height, open.timestamp_ms / 1000);

        let signer = tx.tx.signer;
        let mut account = self
            .state
            .accounts
            .get(&signer)
            .cloned()
            .unwrap_or_default();
        account.free -= fee;
        account.nonce += 1;
        self.state.accounts.insert(signer, account);
        if fee > 0 {
            let issuance = self.state.issuance();
            self.state.total_issuance.insert((), issuance - fee);
        }
        // A failed call is undone back to here: the fee stays paid.
        let paid = self.state.savepoint();

        let mut ctx = Ctx {
            state: &mut self.state,
            height,
            now_s,
            events: Vec::new(),
        };
        let result = dispatch(&mut ctx, Origin::Signed(signer), &tx.tx.call);
        let events = std::mem::take(&mut ctx.events);
        let open = self.open.as_mut().expect("block still open");
        let record = |event| EventRecord {
            tx_index: Some(index),
            event,
        };
        if fee > 0 {
            open.events
                .push(record(Event::TransactionFeePaid { who: signer, fee }));
        }
        let error = match result {
            Ok(()) => {
                open.events.extend(events.into_iter().map(record));
                open.events.push(record(Event::ExtrinsicSuccess { index }));
                None
            }
            Err(error) => {
                self.state.rollback_to(&paid);
                open.events.push(record(Event::ExtrinsicFailed {
                    index,
                    error: error.to_string(),
                }));
                Some(error)
            }
        };
        Ok(Receipt { fee, error })
    }

    /// Ends the open block.
    pub fn finish_block(&mut self) -> BlockOutcome {
        let open = self.open.take().expect("finish_block without a block");
        let (changes, state_root) = self.state.finish_block();
        BlockOutcome {
            changes,
            state_root,
            events: open.events,
        }
    }

    /// What the open block would produce if it ended now. The block stays open: a candidate block
    /// is judged this way, then aborted, and its changes taken in once it is decided.
    pub fn outcome(&self) -> BlockOutcome {
        let open = self.open.as_ref().expect("outcome without a block");
        let (changes, state_root) = self.state.block_changes();
        BlockOutcome {
            changes,
            state_root,
            events: open.events.clone(),
        }
    }

    /// Drops the open block and everything it changed.
    pub fn abort_block(&mut self) {
        self.open = None;
        self.state.revert_block();
    }
}
