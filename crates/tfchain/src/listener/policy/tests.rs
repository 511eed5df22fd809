//! The connection policy, as transcripts of operations and what the table answered, and a seeded
//! random run that checks the bounds and that busy connections are never closed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const SMALL: ConnectionLimits = ConnectionLimits {
    connections_max: 7,
    reserve: 3,
    per_client_max: 3,
    reserve_per_client_max: 2,
    idle_timeout: Duration::from_secs(10),
};

/// Client `a` is 10.0.0.1, `b` 10.0.0.2, and so on.
fn client(name: &str) -> ClientKey {
    let n = name.as_bytes()[0] - b'a' + 1;
    ClientKey::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
}

fn conn(arg: &str) -> ConnId {
    ConnId(arg.trim_start_matches('#').parse().expect("#<number>"))
}

/// Runs the operations of `transcript` (the left side of each `op => answer` line) on a table
/// with `limits`, and checks the answers are those on the right. Operations: `open <client>`,
/// `call #n` (a request starts), `done #n` (it is answered), `subscribe #n` / `unsubscribe #n` (a
/// request that opens or closes a subscription), `wait <seconds>`, `expire`. The handle of each
/// connection is its own number, so a replaced or expired connection names itself.
fn check(limits: ConnectionLimits, transcript: &str) {
    let mut table = ConnectionTable::new(limits);
    let mut now = Instant::now();
    let mut expect = Vec::new();
    let mut got = Vec::new();
    for line in transcript.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (op, answer) = line.split_once("=>").expect("op => answer");
        let op = op.trim();
        expect.push(format!("{op} => {}", answer.trim()));
        let (verb, arg) = op.split_once(' ').unwrap_or((op, ""));
        let answer = match verb {
            "open" => {
                let handle = ConnId(table.next_id);
                match table.open(client(arg), now, handle) {
                    Ok((id, None)) => format!("#{}", id.0),
                    Ok((id, Some(old))) => format!("#{} replacing #{}", id.0, old.0),
                    Err(refusal) => format!("refused {refusal:?}"),
                }
            }
            "call" => {
                table.request_started(conn(arg), now);
                "ok".into()
            }
            "done" | "subscribe" | "unsubscribe" => {
                let delta = match verb {
                    "subscribe" => 1,
                    "unsubscribe" => -1,
                    _ => 0,
                };
                if verb != "done" {
                    table.request_started(conn(arg), now);
                }
                table.request_ended(conn(arg), now, delta);
                "ok".into()
            }
            "wait" => {
                now += Duration::from_secs(arg.parse().expect("seconds"));
                "ok".into()
            }
            "expire" => {
                let closed: Vec<String> = table
                    .expire(now)
                    .iter()
                    .map(|id| format!("#{}", id.0))
                    .collect();
                format!("closed [{}]", closed.join(" "))
            }
            _ => panic!("unknown operation {op:?}"),
        };
        got.push(format!("{op} => {answer}"));
    }
    assert_eq!(got.join("\n"), expect.join("\n"));
}

#[test]
fn a_client_at_its_cap_replaces_its_longest_idle_connection() {
    check(
        SMALL,
        "
        open a => #0
        open a => #1
        open a => #2
        open a => #3 replacing #0
        call #1 => ok
        subscribe #2 => ok
        open a => #4 replacing #3
        call #4 => ok
        open a => refused ClientFull
        open b => #5
        done #4 => ok
        open a => #6 replacing #4
        ",
    );
}

#[test]
fn near_the_maximum_the_client_holding_the_most_makes_room() {
    check(
        SMALL,
        "
        open a => #0
        wait 1 => ok
        open a => #1
        open a => #2
        open b => #3
        open c => #4 replacing #0
        open c => #5
        open c => #6 replacing #4
        open d => #7 replacing #1
        open e => #8 replacing #5
        ",
    );
}

#[test]
fn the_reserve_goes_to_clients_holding_few() {
    check(
        SMALL,
        "
        open a => #0
        open a => #1
        open a => #2
        subscribe #0 => ok
        subscribe #1 => ok
        subscribe #2 => ok
        open b => #3
        subscribe #3 => ok
        open c => #4
        open c => #5
        open c => #6 replacing #4
        subscribe #5 => ok
        subscribe #6 => ok
        open c => refused ServerFull
        open d => #7
        open e => refused ServerFull
        ",
    );
}

#[test]
fn idle_connections_time_out_busy_ones_stay() {
    check(
        SMALL,
        "
        open a => #0
        open a => #1
        subscribe #1 => ok
        open b => #2
        call #2 => ok
        wait 5 => ok
        open c => #3
        wait 5 => ok
        expire => closed [#0]
        done #2 => ok
        wait 9 => ok
        expire => closed [#3]
        unsubscribe #1 => ok
        wait 1 => ok
        expire => closed [#2]
        wait 8 => ok
        expire => closed []
        wait 1 => ok
        expire => closed [#1]
        ",
    );
}

#[test]
fn a_loopback_flood_of_idle_connections_locks_no_local_client_out() {
    let limits = ConnectionLimits::default();
    let mut table = ConnectionTable::new(limits);
    let loopback = ClientKey::of(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let now = Instant::now();
    let (reporter, _) = table.open(loopback, now, 0).unwrap();
    table.request_started(reporter, now);
    table.request_ended(reporter, now, 1);
    for i in 1..=1_000 {
        let at = now + Duration::from_millis(i);
        let (_, replaced) = table.open(loopback, at, i).unwrap();
        assert_ne!(replaced, Some(0), "the subscribed reporter was closed");
    }
    assert_eq!(table.held(loopback), limits.per_client_max);
    let later = now + Duration::from_secs(1);
    let (_, replaced) = table.open(loopback, later, 1_001).unwrap();
    assert!(replaced.is_some(), "a newcomer takes an idle flood socket");
    assert!(table.conns.values().any(|c| c.handle == 0));
}

#[test]
fn clients_are_ipv4_addresses_and_ipv6_networks() {
    let v6 = |s: &str| ClientKey::of(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
    let v4 = |s: &str| ClientKey::of(IpAddr::V4(s.parse::<Ipv4Addr>().unwrap()));
    assert_eq!(v6("::ffff:192.0.2.7"), v4("192.0.2.7"));
    assert_ne!(v4("192.0.2.7"), v4("192.0.2.8"));
    assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff:1:2:3"));
    assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
}

/// Random opens, requests, subscriptions, closes and waits on a small table; after each step the
/// bounds hold, counts match the table, no busy connection is replaced or expired, and a client
/// holding nothing is refused only when the table is full and nobody holding two or more has an
/// idle connection.
#[test]
fn random_runs_keep_the_bounds_and_never_close_busy_connections() {
    for seed in 0..200 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut table = ConnectionTable::new(SMALL);
        let mut now = Instant::now();
        for _ in 0..300 {
            let ids: Vec<ConnId> = table.conns.keys().copied().collect();
            let pick = |rng: &mut StdRng| ids[rng.gen_range(0..ids.len())];
            match rng.gen_range(0..10) {
                0..=3 => open_and_check(&mut table, client_of(&mut rng), now),
                4 if !ids.is_empty() => table.request_started(pick(&mut rng), now),
                5 | 6 if !ids.is_empty() => {
                    let id = pick(&mut rng);
                    if table.conns[&id].requests > 0 {
                        table.request_ended(id, now, rng.gen_range(-1..=1));
                    }
                }
                7 if !ids.is_empty() => {
                    let id = pick(&mut rng);
                    assert_eq!(table.close(id), Some(id));
                }
                8 => now += Duration::from_secs(rng.gen_range(0..6)),
                _ => {
                    for id in table.expire(now) {
                        assert!(!table.conns.contains_key(&id));
                    }
                }
            }
            check_bounds(&table);
        }
    }
}

fn client_of(rng: &mut StdRng) -> ClientKey {
    ClientKey::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, rng.gen_range(1..=4))))
}

fn open_and_check(table: &mut ConnectionTable<ConnId>, client: ClientKey, now: Instant) {
    let handle = ConnId(table.next_id);
    let someone_idle = table
        .conns
        .values()
        .any(|c| c.idle() && table.held(c.client) >= 2);
    let full = table.conns.len() as u32 == table.limits.connections_max;
    let held = table.held(client);
    let busy_before: Vec<ConnId> = table
        .conns
        .iter()
        .filter(|(_, c)| !c.idle())
        .map(|(id, _)| *id)
        .collect();
    match table.open(client, now, handle) {
        Ok((_, Some(replaced))) => assert!(!busy_before.contains(&replaced)),
        Ok((_, None)) => {}
        Err(_) => assert!(held > 0 || (full && !someone_idle), "refused a newcomer"),
    }
}

fn check_bounds(table: &ConnectionTable<ConnId>) {
    assert!(table.conns.len() as u32 <= table.limits.connections_max);
    let mut counts: HashMap<ClientKey, u32> = HashMap::new();
    for (id, conn) in &table.conns {
        assert_eq!(conn.handle, *id);
        *counts.entry(conn.client).or_default() += 1;
    }
    assert_eq!(counts, table.per_client);
    assert!(counts.values().all(|n| *n <= table.limits.per_client_max));
}
