//! Which connections the RPC endpoint keeps: a table of open connections (their client, last
//! activity, requests in flight, subscriptions) and the decision for a newcomer: accept it, accept it
//! in place of an idle connection, or refuse it. Pure: time is a value, and what the shell needs to
//! close a connection is an opaque handle the table hands back.
//!
//! A connection is *idle* when it has no request in flight and no subscription. Only idle
//! connections are ever closed by the policy, and the longest-idle first:
//! 1. A client at its cap (`per_client_max`) gets in by replacing its own longest-idle connection,
//!    and is refused only when all its connections are busy. All local clients share 127.0.0.1, so a
//!    cap alone would lock every local client out once one of them held the cap; replacing idle
//!    connections instead means 1,000 idle sockets from one process cost a busy neighbour on the same
//!    address nothing, and a newcomer there always gets in.
//! 2. Below `connections_max - reserve` connections in all, a newcomer is accepted.
//! 3. Near the maximum, a newcomer takes the place of the longest-idle connection of the client
//!    holding the most (of those that would still hold more than the newcomer's client).
//! 4. Otherwise a client holding fewer than `reserve_per_client_max` takes a reserve slot while one
//!    is free: the last slots go to clients holding few, so one client cannot take them all.
//! 5. Otherwise the client replaces its own longest-idle connection, or is refused.
//!
//! An idle connection is also closed once it has been idle for `idle_timeout`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Who holds connections, for the per-client counts: an IPv4 address, or an IPv6 /64 network (one
/// IPv6 host is usually given a whole /64 to pick addresses from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }
}

/// One open connection's number in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The policy's bounds; [`Default`] takes them from [`crate::limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once, in all.
    pub connections_max: u32,
    /// The last slots below `connections_max`, given only to clients holding few connections.
    pub reserve: u32,
    /// Connections one client holds at once.
    pub per_client_max: u32,
    /// A client holding this many connections is not given a reserve slot.
    pub reserve_per_client_max: u32,
    /// How long a connection may stay idle before it is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        use crate::limits::*;
        ConnectionLimits {
            connections_max: RPC_CONNECTIONS_MAX,
            reserve: RPC_CONNECTIONS_RESERVE,
            per_client_max: RPC_CONNECTIONS_PER_CLIENT_MAX,
            reserve_per_client_max: RPC_RESERVE_PER_CLIENT_MAX,
            idle_timeout: Duration::from_secs(RPC_IDLE_TIMEOUT_S),
        }
    }
}

/// What to do with a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// Accept it and close this idle connection.
    Replace(ConnId),
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("this address holds its maximum of RPC connections, each of them busy")]
    ClientFull,
    /// Near the maximum, and the client holds its share of the reserve, each connection busy.
    #[error("the node is near its maximum of RPC connections and this address holds its share")]
    ServerFull,
}

#[derive(Debug)]
struct Conn<T> {
    client: ClientKey,
    last_active: Instant,
    requests: u32,
    subscriptions: u32,
    handle: T,
}

impl<T> Conn<T> {
    fn idle(&self) -> bool {
        self.requests == 0 && self.subscriptions == 0
    }
}

/// The open connections; `T` is what the shell needs to close one.
#[derive(Debug)]
pub struct ConnectionTable<T> {
    limits: ConnectionLimits,
    conns: BTreeMap<ConnId, Conn<T>>,
    per_client: HashMap<ClientKey, u32>,
    next_id: u64,
}

impl<T> ConnectionTable<T> {
    pub fn new(limits: ConnectionLimits) -> Self {
        assert!(
            limits.reserve < limits.connections_max
                && limits.per_client_max >= 1
                && limits.reserve_per_client_max >= 1
                && !limits.idle_timeout.is_zero(),
            "inconsistent connection limits {limits:?}"
        );
        ConnectionTable {
            limits,
            conns: BTreeMap::new(),
            per_client: HashMap::new(),
            next_id: 0,
        }
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Connections `client` holds.
    pub fn held(&self, client: ClientKey) -> u32 {
        self.per_client.get(&client).copied().unwrap_or(0)
    }

    /// What to do with a newcomer from `client` (the rules in the module's comment).
    pub fn admission(&self, client: ClientKey) -> Admission {
        let limits = &self.limits;
        let held = self.held(client);
        let total = self.conns.len() as u32;
        let replace_own = |refusal| {
            self.longest_idle(client)
                .map_or(Admission::Refuse(refusal), Admission::Replace)
        };
        if held >= limits.per_client_max {
            return replace_own(Refusal::ClientFull);
        }
        if total < limits.connections_max - limits.reserve {
            return Admission::Accept;
        }
        if let Some(victim) = self.longest_idle_of_heaviest(held + 1) {
            return Admission::Replace(victim);
        }
        if held < limits.reserve_per_client_max && total < limits.connections_max {
            return Admission::Accept;
        }
        replace_own(Refusal::ServerFull)
    }

    /// Admits a newcomer from `client` at `now`, closed through `handle`: its number and the handle
    /// of the connection it replaces, if any.
    pub fn open(
        &mut self,
        client: ClientKey,
        now: Instant,
        handle: T,
    ) -> Result<(ConnId, Option<T>), Refusal> {
        let replaced = match self.admission(client) {
            Admission::Accept => None,
            Admission::Replace(victim) => Some(self.close(victim).expect("the victim is open")),
            Admission::Refuse(refusal) => return Err(refusal),
        };
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                client,
                last_active: now,
                requests: 0,
                subscriptions: 0,
                handle,
            },
        );
        *self.per_client.entry(client).or_default() += 1;
        assert!(self.conns.len() as u32 <= self.limits.connections_max);
        assert!(self.held(client) <= self.limits.per_client_max);
        Ok((id, replaced))
    }

    /// Forgets a connection (closed by either side); its handle if it was still in the table.
    pub fn close(&mut self, id: ConnId) -> Option<T> {
        let conn = self.conns.remove(&id)?;
        let held = self
            .per_client
            .get_mut(&conn.client)
            .expect("an open connection's client is counted");
        *held -= 1;
        if *held == 0 {
            self.per_client.remove(&conn.client);
        }
        Some(conn.handle)
    }

    /// A request arrived on `id`.
    pub fn request_started(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.requests += 1;
            conn.last_active = now;
        }
    }

    /// A request on `id` was answered; it opened (`+n`) or closed (`-n`) subscriptions.
    pub fn request_ended(&mut self, id: ConnId, now: Instant, subscriptions: i32) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.requests = conn
                .requests
                .checked_sub(1)
                .expect("a request ends after it started");
            conn.subscriptions = conn.subscriptions.saturating_add_signed(subscriptions);
            conn.last_active = now;
        }
    }

    /// Removes the connections idle for `idle_timeout` at `now`; their handles, to close them.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let timeout = self.limits.idle_timeout;
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.idle() && now.saturating_duration_since(c.last_active) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.close(id))
            .collect()
    }

    /// Removes every connection (the server stops); their handles.
    pub fn drain(&mut self) -> Vec<T> {
        self.per_client.clear();
        std::mem::take(&mut self.conns)
            .into_values()
            .map(|c| c.handle)
            .collect()
    }

    fn idle_order(id: ConnId, conn: &Conn<T>) -> (Instant, ConnId) {
        (conn.last_active, id)
    }

    /// `client`'s connection idle the longest.
    fn longest_idle(&self, client: ClientKey) -> Option<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.client == client && c.idle())
            .min_by_key(|(id, c)| Self::idle_order(**id, c))
            .map(|(id, _)| *id)
    }

    /// The longest-idle connection of the client holding the most among those holding more than
    /// `more_than` and having an idle connection.
    fn longest_idle_of_heaviest(&self, more_than: u32) -> Option<ConnId> {
        let mut oldest: HashMap<ClientKey, (Instant, ConnId)> = HashMap::new();
        for (id, conn) in self.conns.iter().filter(|(_, c)| c.idle()) {
            let order = Self::idle_order(*id, conn);
            oldest
                .entry(conn.client)
                .and_modify(|o| *o = (*o).min(order))
                .or_insert(order);
        }
        oldest
            .into_iter()
            .map(|(client, order)| (self.held(client), order))
            .filter(|(held, _)| *held > more_than)
            .min_by_key(|(held, order)| (std::cmp::Reverse(*held), *order))
            .map(|(_, (_, id))| id)
    }
}

#[cfg(test)]
mod tests;
