//! The index's tables, in SQL that SQLite and PostgreSQL both accept (BIGINT for every integer,
//! 0/1 for booleans, TEXT for strings, addresses, hashes and JSON documents). Version 2: the
//! `meta` table also keeps the prices billing uses (pricing policy 1 and the TFT price, as JSON).
//! Version 3: each bill keeps the seconds credited for its node's downtime.

/// Bumped when a table changes shape; a store of another version is refused.
pub const SCHEMA_VERSION: &str = "3";

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Grid-wide counters kept by the indexer, so /stats does not count 100,000 rows per request.
CREATE TABLE IF NOT EXISTS totals (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS twins (
    twin_id BIGINT PRIMARY KEY,
    account_id TEXT NOT NULL,
    relay TEXT,
    public_key TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS twins_account ON twins (account_id);
CREATE TABLE IF NOT EXISTS farms (
    farm_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    twin_id BIGINT NOT NULL,
    pricing_policy_id BIGINT NOT NULL,
    certification TEXT NOT NULL,
    dedicated BIGINT NOT NULL,
    stellar_address TEXT,
    free_ips BIGINT NOT NULL DEFAULT 0,
    total_ips BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS public_ips (
    farm_id BIGINT NOT NULL,
    ip TEXT NOT NULL,
    gateway TEXT NOT NULL,
    contract_id BIGINT NOT NULL,
    PRIMARY KEY (farm_id, ip)
);
CREATE INDEX IF NOT EXISTS public_ips_contract ON public_ips (contract_id);
CREATE INDEX IF NOT EXISTS public_ips_farm_contract ON public_ips (farm_id, contract_id);
CREATE TABLE IF NOT EXISTS nodes (
    node_id BIGINT PRIMARY KEY,
    farm_id BIGINT NOT NULL,
    twin_id BIGINT NOT NULL,
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    latitude TEXT NOT NULL,
    longitude TEXT NOT NULL,
    created BIGINT NOT NULL,
    farming_policy_id BIGINT NOT NULL,
    certification TEXT NOT NULL,
    secure_boot BIGINT NOT NULL,
    virtualized BIGINT NOT NULL,
    serial_number TEXT,
    connection_price BIGINT NOT NULL,
    total_cru BIGINT NOT NULL,
    total_mru BIGINT NOT NULL,
    total_sru BIGINT NOT NULL,
    total_hru BIGINT NOT NULL,
    used_cru BIGINT NOT NULL DEFAULT 0,
    used_mru BIGINT NOT NULL DEFAULT 0,
    used_sru BIGINT NOT NULL DEFAULT 0,
    used_hru BIGINT NOT NULL DEFAULT 0,
    free_mru BIGINT NOT NULL DEFAULT 0,
    free_sru BIGINT NOT NULL DEFAULT 0,
    free_hru BIGINT NOT NULL DEFAULT 0,
    ipv4 TEXT,
    gw4 TEXT,
    ipv6 TEXT,
    gw6 TEXT,
    domain TEXT,
    uptime_s BIGINT NOT NULL DEFAULT 0,
    last_report_s BIGINT NOT NULL DEFAULT 0,
    power_state TEXT NOT NULL DEFAULT 'Up',
    power_target TEXT NOT NULL DEFAULT 'Up',
    rent_contract_id BIGINT NOT NULL DEFAULT 0,
    renter_twin_id BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_farm ON nodes (farm_id);
CREATE INDEX IF NOT EXISTS nodes_free_mru ON nodes (free_mru, node_id);
CREATE INDEX IF NOT EXISTS nodes_free_sru ON nodes (free_sru, node_id);
CREATE INDEX IF NOT EXISTS nodes_free_hru ON nodes (free_hru, node_id);
CREATE INDEX IF NOT EXISTS nodes_last_report ON nodes (last_report_s);
-- The country and city filters compare case-insensitively.
CREATE INDEX IF NOT EXISTS nodes_country ON nodes (LOWER(country));
CREATE INDEX IF NOT EXISTS nodes_city ON nodes (LOWER(city));
-- Covers /stats: one ordered pass over a narrow index instead of the wide rows.
CREATE INDEX IF NOT EXISTS nodes_stats ON nodes (country, farm_id, total_cru, total_sru,
    total_mru, total_hru, ipv4, domain, power_state, power_target, last_report_s);
CREATE TABLE IF NOT EXISTS contracts (
    contract_id BIGINT PRIMARY KEY,
    twin_id BIGINT NOT NULL,
    contract_type TEXT NOT NULL,
    state TEXT NOT NULL,
    node_id BIGINT,
    name TEXT,
    deployment_hash TEXT,
    deployment TEXT,
    deployment_version BIGINT,
    number_of_public_ips BIGINT NOT NULL DEFAULT 0,
    cru BIGINT NOT NULL DEFAULT 0,
    mru BIGINT NOT NULL DEFAULT 0,
    sru BIGINT NOT NULL DEFAULT 0,
    hru BIGINT NOT NULL DEFAULT 0,
    reported_cru BIGINT NOT NULL DEFAULT 0,
    reported_mru BIGINT NOT NULL DEFAULT 0,
    reported_sru BIGINT NOT NULL DEFAULT 0,
    reported_hru BIGINT NOT NULL DEFAULT 0,
    grace_since_block BIGINT,
    cause TEXT,
    workloads_active BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    created_block BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS contracts_twin ON contracts (twin_id);
CREATE INDEX IF NOT EXISTS contracts_node ON contracts (node_id, state);
CREATE INDEX IF NOT EXISTS contracts_state ON contracts (state);
CREATE TABLE IF NOT EXISTS workloads (
    contract_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    deployment_version BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    result TEXT NOT NULL,
    created BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (contract_id, name)
);
CREATE TABLE IF NOT EXISTS bills (
    block_height BIGINT NOT NULL,
    event_index BIGINT NOT NULL,
    contract_id BIGINT NOT NULL,
    twin_id BIGINT NOT NULL,
    timestamp_s BIGINT NOT NULL,
    amount_billed BIGINT NOT NULL,
    discount_level TEXT NOT NULL,
    credited_s BIGINT NOT NULL,
    PRIMARY KEY (block_height, event_index)
);
CREATE INDEX IF NOT EXISTS bills_contract ON bills (contract_id);
CREATE INDEX IF NOT EXISTS bills_twin ON bills (twin_id, timestamp_s);
CREATE TABLE IF NOT EXISTS consumption (
    twin_id BIGINT PRIMARY KEY,
    total_billed BIGINT NOT NULL,
    last_bill_s BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS farming_rewards (
    block_height BIGINT NOT NULL,
    event_index BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    farm_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    uptime_percent BIGINT NOT NULL,
    timestamp_s BIGINT NOT NULL,
    PRIMARY KEY (block_height, event_index)
);
CREATE INDEX IF NOT EXISTS farming_rewards_node ON farming_rewards (node_id);
"#;
