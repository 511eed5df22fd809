//! Deployments: what a user asks a node to run, as Zero-OS v3 defines it (workloads, versions, the
//! multi-signature requirement), with a canonical blake3 hash instead of md5 over formatted text.
//! The ledger stores a deployment in its contract; the node provisions it after checking it again.

mod result;
mod secret;
mod workload;

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::keys::{self, AccountId, KeyError, Keypair, Signature};
use crate::{Hash32, TwinId, codec};

pub use result::{ResultData, ResultState, WorkloadResult};
pub use secret::Secret;
pub use workload::*;

/// The largest deployment the ledger stores, encoded.
pub const DEPLOYMENT_BYTES_MAX: usize = 64 * 1024;
/// Workloads in one deployment.
pub const WORKLOADS_MAX: usize = 256;
pub const METADATA_LEN_MAX: usize = 1024;
pub const SIGNATURE_REQUESTS_MAX: usize = 16;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeploymentError {
    #[error("workload {name:?}: {reason}")]
    InvalidWorkload { name: String, reason: String },
    #[error("two workloads are named {0:?}")]
    DuplicateName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the deployment is {0} bytes, at most {DEPLOYMENT_BYTES_MAX} allowed")]
    TooLarge(usize),
    #[error("workload {0:?}: its secret is not sealed to the node")]
    Unsealed(String),
    #[error("the signature of required twin {0} is missing")]
    MissingSignature(TwinId),
    #[error("the signature of twin {0} does not match the deployment")]
    BadSignature(TwinId),
    #[error("twin {0} signed but is not in the signature requests")]
    UnrequestedSignature(TwinId),
    #[error("twin {0} is unknown")]
    UnknownTwin(TwinId),
    #[error("signatures carry weight {got}, {needed} required")]
    InsufficientWeight { got: u64, needed: u64 },
    #[error("the deployment's owner, twin {0}, must be in the signature requests")]
    OwnerNotRequested(TwinId),
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
}

/// Capacity in bytes (memory, disks), logical cores and public IPv4 addresses.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Capacity {
    pub cru: u64,
    pub mru: u64,
    pub sru: u64,
    pub hru: u64,
    pub ipv4u: u64,
}

impl std::ops::Add for Capacity {
    type Output = Capacity;
    fn add(self, o: Capacity) -> Capacity {
        Capacity {
            cru: self.cru + o.cru,
            mru: self.mru + o.mru,
            sru: self.sru + o.sru,
            hru: self.hru + o.hru,
            ipv4u: self.ipv4u + o.ipv4u,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignatureRequest {
    pub twin_id: TwinId,
    pub required: bool,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DeploymentSignature {
    pub twin_id: TwinId,
    pub signature: Signature,
}

/// Who must sign: every required twin, and enough weight in all.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignatureRequirement {
    pub requests: Vec<SignatureRequest>,
    pub weight_required: u32,
    #[serde(default)]
    pub signatures: Vec<DeploymentSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Deployment {
    /// 0 on creation, one more with each update.
    pub version: u32,
    pub twin_id: TwinId,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub description: String,
    pub signature_requirement: SignatureRequirement,
    pub workloads: Vec<Workload>,
}

impl Deployment {
    /// The hash that is signed and stored with the contract: everything but the signatures.
    pub fn hash(&self) -> Hash32 {
        let r = &self.signature_requirement;
        let hashed = (
            self.version,
            self.twin_id,
            &self.metadata,
            &self.description,
            &r.requests,
            r.weight_required,
            &self.workloads,
        );
        Hash32::of_encoded("tfgrid deployment v1", &hashed)
    }

    pub fn encoded_len(&self) -> usize {
        codec::encode(self).len()
    }

    /// A requirement of the owner's signature alone.
    pub fn single_signer(twin_id: TwinId) -> SignatureRequirement {
        SignatureRequirement {
            requests: vec![SignatureRequest {
                twin_id,
                required: true,
                weight: 1,
            }],
            weight_required: 1,
            signatures: vec![],
        }
    }

    /// Adds (or replaces) `twin`'s signature of the current hash.
    pub fn sign(&mut self, twin_id: TwinId, key: &Keypair) {
        let signature = key.sign(&self.hash().0);
        let sigs = &mut self.signature_requirement.signatures;
        sigs.retain(|s| s.twin_id != twin_id);
        sigs.push(DeploymentSignature { twin_id, signature });
    }

    /// Seals every plain secret to the node's account key.
    pub fn seal_secrets<R: RngCore + CryptoRng>(
        &mut self,
        node: &AccountId,
        rng: &mut R,
    ) -> Result<(), KeyError> {
        for workload in &mut self.workloads {
            for secret in workload.data.secrets_mut() {
                secret.seal(node, rng)?;
            }
        }
        Ok(())
    }

    pub fn capacity(&self) -> Capacity {
        self.workloads
            .iter()
            .fold(Capacity::default(), |acc, w| acc + w.data.capacity())
    }

    /// Public IPv4 addresses the contract must reserve from the farm.
    pub fn public_ipv4_count(&self) -> u32 {
        self.capacity().ipv4u as u32
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// Every rule a deployment must meet before a contract may hold it: sizes, each workload's
    /// rules, unique names, references between workloads, versions, sealed secrets.
    pub fn check(&self) -> Result<(), DeploymentError> {
        let len = self.encoded_len();
        if len > DEPLOYMENT_BYTES_MAX {
            return Err(DeploymentError::TooLarge(len));
        }
        if self.workloads.is_empty() || self.workloads.len() > WORKLOADS_MAX {
            return Err(DeploymentError::Invalid(format!(
                "a deployment has 1 to {WORKLOADS_MAX} workloads"
            )));
        }
        if self.metadata.len() > METADATA_LEN_MAX || self.description.len() > METADATA_LEN_MAX {
            return Err(DeploymentError::Invalid(
                "metadata and description are at most 1024 bytes".into(),
            ));
        }
        let mut names = BTreeMap::new();
        for w in &self.workloads {
            w.check()?;
            if w.version > self.version {
                return Err(DeploymentError::InvalidWorkload {
                    name: w.name.clone(),
                    reason: format!(
                        "version {} is above the deployment's {}",
                        w.version, self.version
                    ),
                });
            }
            if names.insert(w.name.as_str(), &w.data).is_some() {
                return Err(DeploymentError::DuplicateName(w.name.clone()));
            }
            let mut data = w.data.clone();
            if data.secrets_mut().iter().any(|s| !s.is_sealed()) {
                return Err(DeploymentError::Unsealed(w.name.clone()));
            }
        }
        self.check_references(&names)?;
        let r = &self.signature_requirement;
        if r.requests.is_empty()
            || r.requests.len() > SIGNATURE_REQUESTS_MAX
            || r.signatures.len() > SIGNATURE_REQUESTS_MAX
        {
            return Err(DeploymentError::Invalid(format!(
                "1 to {SIGNATURE_REQUESTS_MAX} signature requests"
            )));
        }
        if !r.requests.iter().any(|q| q.twin_id == self.twin_id) {
            return Err(DeploymentError::OwnerNotRequested(self.twin_id));
        }
        Ok(())
    }

    fn check_references(
        &self,
        names: &BTreeMap<&str, &WorkloadData>,
    ) -> Result<(), DeploymentError> {
        let mut public_ip_users = BTreeSet::new();
        for w in &self.workloads {
            let bad = |reason: String| DeploymentError::InvalidWorkload {
                name: w.name.clone(),
                reason,
            };
            match &w.data {
                WorkloadData::Zmachine(m) => {
                    if !m.network.public_ip.is_empty() {
                        if !matches!(
                            names.get(m.network.public_ip.as_str()),
                            Some(WorkloadData::Ip(_))
                        ) {
                            return Err(bad(format!(
                                "public_ip {:?} is not an ip workload here",
                                m.network.public_ip
                            )));
                        }
                        if !public_ip_users.insert(m.network.public_ip.as_str()) {
                            return Err(bad(format!(
                                "public_ip {:?} is used by another zmachine",
                                m.network.public_ip
                            )));
                        }
                    }
                    for mount in &m.mounts {
                        if !matches!(
                            names.get(mount.name.as_str()),
                            Some(WorkloadData::Zmount(_) | WorkloadData::Volume(_))
                        ) {
                            return Err(bad(format!(
                                "mount {:?} is not a zmount or volume here",
                                mount.name
                            )));
                        }
                    }
                }
                WorkloadData::Zlogs(z)
                    if !matches!(
                        names.get(z.zmachine.as_str()),
                        Some(WorkloadData::Zmachine(_))
                    ) =>
                {
                    return Err(bad(format!(
                        "zmachine {:?} is not a zmachine here",
                        z.zmachine
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the signatures against the twins' accounts: every required twin signed (the owner is
    /// always required), every signature is valid and requested, and the weight suffices. A twin
    /// that is requested but not required may leave its signature out.
    pub fn verify_signatures(
        &self,
        account_of: impl Fn(TwinId) -> Option<AccountId>,
    ) -> Result<(), DeploymentError> {
        let requirement = &self.signature_requirement;
        if let Some(sig) = requirement
            .signatures
            .iter()
            .find(|s| !requirement.requests.iter().any(|r| r.twin_id == s.twin_id))
        {
            return Err(DeploymentError::UnrequestedSignature(sig.twin_id));
        }
        self.verify_requirement(requirement, &account_of)
    }

    fn verify_requirement(
        &self,
        requirement: &SignatureRequirement,
        account_of: &impl Fn(TwinId) -> Option<AccountId>,
    ) -> Result<(), DeploymentError> {
        let hash = self.hash();
        let signatures = &self.signature_requirement.signatures;
        let mut weight = 0u64;
        for request in &requirement.requests {
            let required = request.required || request.twin_id == self.twin_id;
            let Some(sig) = signatures.iter().find(|s| s.twin_id == request.twin_id) else {
                if required {
                    return Err(DeploymentError::MissingSignature(request.twin_id));
                }
                continue;
            };
            let account =
                account_of(request.twin_id).ok_or(DeploymentError::UnknownTwin(request.twin_id))?;
            if !keys::verify(&account, &hash.0, &sig.signature) {
                return Err(DeploymentError::BadSignature(request.twin_id));
            }
            weight += request.weight as u64;
        }
        if weight < requirement.weight_required as u64 {
            return Err(DeploymentError::InsufficientWeight {
                got: weight,
                needed: requirement.weight_required as u64,
            });
        }
        Ok(())
    }

    /// Checks that `self` is a valid update of `old`: the next version, the same owner, workloads
    /// that keep their type, new or changed workloads at the new version, and signatures that meet
    /// both the new requirement and the old one (so an update cannot drop a co-signer).
    pub fn check_upgrade(
        &self,
        old: &Deployment,
        account_of: impl Fn(TwinId) -> Option<AccountId>,
    ) -> Result<(), DeploymentError> {
        let bad = |reason: String| DeploymentError::InvalidUpdate(reason);
        if self.twin_id != old.twin_id {
            return Err(bad("the owner twin cannot change".into()));
        }
        if self.version != old.version + 1 {
            return Err(bad(format!(
                "version must be {}, not {}",
                old.version + 1,
                self.version
            )));
        }
        for w in &self.workloads {
            match old.workload(&w.name) {
                None if w.version != self.version => {
                    return Err(bad(format!(
                        "new workload {:?} must have version {}",
                        w.name, self.version
                    )));
                }
                None => {}
                Some(prev) if prev.data.type_name() != w.data.type_name() => {
                    return Err(bad(format!("workload {:?} cannot change its type", w.name)));
                }
                Some(prev) if prev == w => {}
                Some(prev) => {
                    if w.version != self.version {
                        return Err(bad(format!(
                            "changed workload {:?} must have version {}",
                            w.name, self.version
                        )));
                    }
                    if !w.data.updatable() {
                        return Err(bad(format!(
                            "a {} cannot change in place: remove {:?} and add it under a new name",
                            prev.data.type_name(),
                            w.name
                        )));
                    }
                }
            }
        }
        self.verify_signatures(&account_of)?;
        self.verify_requirement(&old.signature_requirement, &account_of)
    }

    /// Opens the deployment's secrets with the node's key (what a node does before provisioning).
    pub fn open_secrets(&self, node: &Keypair) -> Result<Deployment, DeploymentError> {
        let mut open = self.clone();
        for w in &mut open.workloads {
            let name = w.name.clone();
            for secret in w.data.secrets_mut() {
                let text = secret
                    .open(node)
                    .ok_or_else(|| DeploymentError::Unsealed(name.clone()))?;
                *secret = Secret::Plain(text);
            }
        }
        Ok(open)
    }
}

#[cfg(test)]
mod tests;
