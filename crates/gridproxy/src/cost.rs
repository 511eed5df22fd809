//! What an hour of a contract costs now, as the chain bills it before the balance discount, with the
//! runtime's own pricing functions: the resources the node reported and public IPs at pricing
//! policy 1, a name's fixed price, or a rented node's capacity at the dedication discount (nothing
//! while the node is powered down), turned into TFT at the clamped price. It is computed when read,
//! from indexed rows and the prices the indexer keeps, so a price or policy change rewrites nothing;
//! the end-to-end tests check it against the chain's `contract_get`.

use tfchain_runtime::smart_contract::billing::{node_contract_per_hour_usd, usd_to_tft_at};
use tfchain_runtime::types::{PricingPolicy, Resources, TftPrice};
use tfgrid_types::Balance;

/// What billing prices with: pricing policy 1 and the TFT price with its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prices {
    pub policy: PricingPolicy,
    pub tft: TftPrice,
}

/// What a contract's price depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Priced {
    Node {
        public_ips: u32,
        /// As the node reported them; nothing before its first report.
        reported: Resources,
        /// A rent contract covers the node's capacity, so the resources cost nothing here.
        node_rented: bool,
    },
    Name,
    /// The rented node's capacity, if the node exists and is powered up.
    Rent {
        node_up: Option<Resources>,
    },
}

impl Prices {
    /// Units-USD for one hour.
    pub fn usd_per_hour(&self, c: &Priced) -> u128 {
        let policy = &self.policy;
        match c {
            Priced::Node {
                public_ips,
                reported,
                node_rented,
            } => {
                node_contract_per_hour_usd((!node_rented).then_some(reported), *public_ips, policy)
            }
            Priced::Name => policy.terms.unique_name.value.into(),
            // The node's whole capacity, priced as resources, at the dedication discount.
            Priced::Rent { node_up } => node_up.as_ref().map_or(0, |r| {
                node_contract_per_hour_usd(Some(r), 0, policy)
                    * u128::from(policy.terms.discount_for_dedication_nodes)
                    / 100
            }),
        }
    }

    /// Units of TFT for one hour.
    pub fn tft_per_hour(&self, c: &Priced) -> Balance {
        usd_to_tft_at(&self.tft, self.usd_per_hour(c))
    }
}

#[cfg(test)]
mod tests {
    use tfchain_runtime::Genesis;
    use tfchain_runtime::smart_contract::billing;
    use tfchain_runtime::types::*;
    use tfgrid_types::Hash32;
    use tfgrid_types::capacity::GIB;

    use super::*;

    /// Prices `priced` (the `contract` in `state`) as the indexer does and as the runtime does.
    fn check(state: &tfchain_runtime::State, contract: &Contract, priced: Priced) {
        let prices = Prices {
            policy: state.pricing_policies.get(&1).unwrap().clone(),
            tft: state.tft_price.get(&()).unwrap().clone(),
        };
        let chain = billing::usd_to_tft(state, billing::cost_per_hour_usd(state, contract));
        assert!(chain > 0, "{contract:?} costs nothing");
        assert_eq!(prices.tft_per_hour(&priced), chain, "{priced:?}");
    }

    fn node(id: u32, resources: Resources) -> Node {
        Node {
            version: NODE_VERSION,
            id,
            farm_id: 1,
            twin_id: 2,
            resources,
            location: Location {
                city: "Ghent".into(),
                country: "Belgium".into(),
                latitude: "0".into(),
                longitude: "0".into(),
            },
            public_config: None,
            created: 1,
            farming_policy_id: 1,
            interfaces: vec![],
            certification: NodeCertification::Diy,
            secure_boot: false,
            virtualized: false,
            serial_number: None,
            connection_price: 80,
        }
    }

    fn contract(id: u64, data: ContractData) -> Contract {
        Contract {
            version: 1,
            contract_id: id,
            twin_id: 3,
            state: ContractState::Created,
            contract_type: data,
        }
    }

    #[test]
    fn prices_contracts_as_the_runtime_bills_them() {
        let mut state = Genesis::dev().build().unwrap().state;
        let capacity = Resources {
            hru: 1000 * GIB,
            sru: 500 * GIB,
            cru: 8,
            mru: 16 * GIB,
        };
        state.nodes.insert(1, node(1, capacity));
        let reported = Resources {
            hru: 10 * GIB,
            sru: 3 * GIB,
            cru: 2,
            mru: 5 * GIB,
        };
        let deployment = serde_json::from_value(serde_json::json!({
            "version": 0, "twin_id": 3,
            "signature_requirement": { "requests": [], "weight_required": 0 },
            "workloads": [],
        }))
        .unwrap();
        let on_node = contract(
            1,
            ContractData::NodeContract(NodeContract {
                node_id: 1,
                deployment_hash: Hash32([1; 32]),
                deployment,
                public_ips: 2,
                public_ips_list: vec![],
            }),
        );
        state.contract_resources.insert(1, reported);
        let node_contract = |node_rented| Priced::Node {
            public_ips: 2,
            reported,
            node_rented,
        };
        check(&state, &on_node, node_contract(false));
        let name = contract(
            2,
            ContractData::NameContract {
                name: "site".into(),
            },
        );
        check(&state, &name, Priced::Name);
        let rent = contract(3, ContractData::RentContract { node_id: 1 });
        state.rent_contract_by_node.insert(1, 3);
        check(
            &state,
            &rent,
            Priced::Rent {
                node_up: Some(capacity),
            },
        );
        // On a rented node only the IPs cost.
        check(&state, &on_node, node_contract(true));
        // At another TFT price, clamped by its bounds.
        for price_musd in [5, 37, 5000] {
            state.tft_price.insert(
                (),
                TftPrice {
                    price_musd,
                    min_musd: 10,
                    max_musd: 1000,
                },
            );
            check(&state, &on_node, node_contract(true));
            check(&state, &name, Priced::Name);
        }
    }
}
