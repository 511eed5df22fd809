//! Property: whatever sequence of transactions runs, the total issuance equals the sum of all balances,
//! it changes only by the fees burned, and every included transaction bumps its signer's nonce once.

use proptest::prelude::*;
use tfchain_runtime::genesis::DEV_ACCOUNTS;
use tfchain_runtime::{
    Call, Genesis, Runtime, SignedTransaction, Transaction, balances, kvstore, tfgrid,
};
use tfgrid_types::{AccountId, Balance, Keypair, Signature};

fn accounts() -> Vec<AccountId> {
    DEV_ACCOUNTS
        .iter()
        .chain(["Zed", "Yan"].iter()) // unfunded: fees fail, transfers to them meet the existential deposit
        .map(|n| Keypair::from_uri(&format!("//{n}")).unwrap().account())
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: Balance,
    },
    Kv {
        from: usize,
        key_len: usize,
    },
    Twin {
        from: usize,
    },
    Farm {
        from: usize,
        name: u8,
    },
    BadNonce {
        from: usize,
    },
    EndBlock,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..8;
    let amount = prop_oneof![
        0..1_000u128,
        0..10_000_000_000u128,
        Just(u128::MAX),
        490..510u128
    ];
    prop_oneof![
        6 => (who.clone(), who.clone(), amount).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => (who.clone(), 0usize..600).prop_map(|(from, key_len)| Op::Kv { from, key_len }),
        1 => who.clone().prop_map(|from| Op::Twin { from }),
        1 => (who.clone(), 0u8..4).prop_map(|(from, name)| Op::Farm { from, name }),
        1 => who.clone().prop_map(|from| Op::BadNonce { from }),
        1 => Just(Op::EndBlock),
    ]
}

fn sum_balances(rt: &Runtime) -> Balance {
    rt.state.accounts.iter().map(|(_, a)| a.free).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn supply_is_conserved(ops in proptest::collection::vec(op(), 1..120)) {
        let accounts = accounts();
        let mut rt = Runtime::new(Genesis::dev().build().unwrap().state);
        let mut height = 1;
        let mut time_ms = 1_000_000;
        rt.begin_block(height, time_ms);
        let start_issuance = rt.state.issuance();
        let mut fees: Balance = 0;
        for op in ops {
            let (from, call, nonce_shift) = match op {
                Op::Transfer { from, to, amount } => {
                    (from, Call::Balances(balances::Call::Transfer { dest: accounts[to], amount }), 0)
                }
                Op::Kv { from, key_len } => {
                    (from, Call::Kv(kvstore::Call::Set { key: vec![7; key_len], value: vec![1; 10] }), 0)
                }
                Op::Twin { from } => (from, Call::Tfgrid(tfgrid::Call::CreateTwin { relay: None, pk: None }), 0),
                Op::Farm { from, name } => {
                    (from, Call::Tfgrid(tfgrid::Call::CreateFarm { name: format!("farm{name}"), public_ips: vec![] }), 0)
                }
                Op::BadNonce { from } => (from, Call::Kv(kvstore::Call::Delete { key: vec![1] }), 5),
                Op::EndBlock => {
                    rt.finish_block();
                    height += 1;
                    time_ms += 1000;
                    rt.begin_block(height, time_ms);
                    continue;
                }
            };
            let signer = accounts[from];
            let before = rt.state.accounts.get(&signer).cloned().unwrap_or_default();
            let tx = SignedTransaction {
                tx: Transaction { signer, nonce: before.nonce + nonce_shift, call },
                signature: Signature([0; 64]),
            };
            match rt.apply_tx(&tx, tx.encode().len()) {
                Ok(receipt) => {
                    fees += receipt.fee;
                    let after = rt.state.accounts.get(&signer).unwrap();
                    prop_assert_eq!(after.nonce, before.nonce + 1);
                }
                Err(_) => {
                    // An invalid transaction changes nothing at all.
                    prop_assert_eq!(rt.state.accounts.get(&signer).cloned().unwrap_or_default(), before);
                }
            }
            prop_assert_eq!(rt.state.issuance(), sum_balances(&rt));
            prop_assert_eq!(rt.state.issuance() + fees, start_issuance);
        }
        rt.finish_block();
    }
}
