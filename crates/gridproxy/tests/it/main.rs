//! End-to-end tests of the explorer: a real chain driven by the CLI and the client, `gridproxy` as a
//! real process indexing it, and every endpoint's answer checked against the chain's own RPC.

mod api;
mod browser;
mod dashboard;
mod harness;
mod restart;
mod routes;
