//! A test harness for the modules: a dev-genesis ledger on which each call runs in its own block,
//! with checks that a failing call changes nothing but its fee and nonce.

use tfgrid_types::{AccountId, Balance, Keypair, Signature};

use crate::error::DispatchError;
use crate::event::Event;
use crate::genesis::Genesis;
use crate::runtime::{Receipt, Runtime};
use crate::state::State;
use crate::tx::{Call, SignedTransaction, Transaction};
use crate::types::*;
use crate::{council, tfgrid};

pub fn account(name: &str) -> AccountId {
    Keypair::from_uri(&format!("//{name}")).unwrap().account()
}

/// A valid node registration in `farm_id`.
pub fn node_spec(farm_id: u32) -> NodeSpec {
    let gib = 1024 * 1024 * 1024;
    NodeSpec {
        farm_id,
        resources: Resources {
            hru: 0,
            sru: 500 * gib,
            cru: 8,
            mru: 16 * gib,
        },
        location: Location {
            city: "Ghent".into(),
            country: "Belgium".into(),
            latitude: "51.05".into(),
            longitude: "3.71".into(),
        },
        interfaces: vec![Interface {
            name: "zos".into(),
            mac: "52:54:00:12:34:56".into(),
            ips: vec!["10.20.0.2".into()],
        }],
        secure_boot: false,
        virtualized: true,
        serial_number: Some("SN-1".into()),
    }
}

pub struct Harness {
    rt: Runtime,
    height: u64,
    time_ms: u64,
    /// Events of the last block a call ran in.
    events: Vec<Event>,
    /// Events of every block since the last `take_history`.
    history: Vec<Event>,
    receipt: Option<Receipt>,
}

impl Harness {
    pub fn new() -> Harness {
        let genesis = Genesis::dev().build().unwrap();
        Harness {
            rt: Runtime::new(genesis.state),
            height: 0,
            time_ms: 1_700_000_000_000,
            events: vec![],
            history: vec![],
            receipt: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.rt.state
    }

    pub fn balance(&self, account: &AccountId) -> Balance {
        self.rt.state.balance(account)
    }

    fn signed(&self, signer: &AccountId, call: Call) -> SignedTransaction {
        let nonce = self.rt.state.accounts.get(signer).map_or(0, |a| a.nonce);
        SignedTransaction {
            tx: Transaction {
                signer: *signer,
                nonce,
                call,
            },
            signature: Signature([0; 64]),
        }
    }

    pub fn fee_of(&self, call: &Call) -> Balance {
        let tx = self.signed(&account("Alice"), call.clone());
        self.rt.fee(call, tx.encode().len())
    }

    /// Runs one call in a block of its own and returns the block's change set size per table.
    fn apply(&mut self, signer: &AccountId, call: Call) -> Vec<crate::table::Change> {
        let tx = self.signed(signer, call);
        self.height += 1;
        self.time_ms += 1000;
        self.rt.begin_block(self.height, self.time_ms);
        // Fold what block initialisation (billing) changed, so the block's change set is the call's.
        self.rt.state.finish_block();
        let receipt = self
            .rt
            .apply_tx(&tx, tx.encode().len())
            .expect("transaction is valid");
        let outcome = self.rt.finish_block();
        self.events = outcome.events.into_iter().map(|r| r.event).collect();
        self.history.extend(self.events.iter().cloned());
        self.receipt = Some(receipt);
        outcome.changes
    }

    pub fn ok(&mut self, signer: &AccountId, call: impl Into<Call>) {
        self.apply(signer, call.into());
        let receipt = self.receipt.as_ref().unwrap();
        assert_eq!(receipt.error, None, "the call failed");
    }

    /// Asserts that the call fails with `error`, and that only the signer's account (fee and nonce)
    /// and the total issuance (the burned fee) changed.
    pub fn fails(&mut self, signer: &AccountId, call: impl Into<Call>, error: DispatchError) {
        let changes = self.apply(signer, call.into());
        assert_eq!(self.receipt.as_ref().unwrap().error, Some(error));
        for change in changes {
            assert!(
                change.table == "total_issuance"
                    || (change.table == "accounts" && change.key == signer.0),
                "a failed call changed {}",
                change.table
            );
        }
    }

    pub fn last_fee(&self) -> Balance {
        self.receipt.as_ref().map_or(0, |r| r.fee)
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Unix seconds of the next block.
    pub fn next_block_time_s(&self) -> u64 {
        (self.time_ms + 1000) / 1000
    }

    /// Accepts the terms and creates a twin for `account`.
    pub fn twin(&mut self, account: &AccountId) {
        self.ok(
            account,
            tfgrid::Call::UserAcceptTc {
                document_link: "https://grid.tf/tc".into(),
                document_hash: "h".into(),
            },
        );
        self.ok(
            account,
            tfgrid::Call::CreateTwin {
                relay: None,
                pk: None,
            },
        );
    }

    fn council_run(&mut self, call: impl Into<Call>) -> Option<String> {
        self.ok(
            &account("Alice"),
            council::Call::propose(&call.into(), 1, "test"),
        );
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Executed { error, .. } => Some(error.clone()),
                _ => None,
            })
            .expect("the motion executed")
    }

    /// Runs a call as the (dev) council and asserts it succeeds.
    pub fn council(&mut self, call: impl Into<Call>) {
        if let Some(error) = self.council_run(call) {
            panic!("the council call failed: {error}");
        }
    }

    /// Runs a call as the council and returns its error.
    pub fn council_fails(&mut self, call: impl Into<Call>) -> String {
        self.council_run(call)
            .expect("the council call should fail")
    }

    /// Produces empty blocks until the next one has this height.
    pub fn advance_to(&mut self, height: u64) {
        while self.height + 1 < height {
            self.height += 1;
            self.time_ms += 1000;
            self.rt.begin_block(self.height, self.time_ms);
            let outcome = self.rt.finish_block();
            self.history
                .extend(outcome.events.into_iter().map(|r| r.event));
        }
    }

    /// The events of every block since the last call, oldest first.
    pub fn take_history(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.history)
    }

    /// Height of the last block.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Unix seconds of the last block.
    pub fn now_s(&self) -> u64 {
        self.time_ms / 1000
    }
}
