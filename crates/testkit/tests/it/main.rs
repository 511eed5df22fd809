//! End-to-end tests through the real binaries: the chain as a process, driven by the CLI and the
//! client.

mod access;
mod bft;
mod bft_clients;
mod chain;
mod cli;
mod contracts;
mod failover;
mod overlay;
mod rpc;
mod sdk_multinode;
mod sdk_state;
mod up;
mod vm;
mod zos;
