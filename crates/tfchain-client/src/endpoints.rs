//! The list of RPC endpoints a client may use, as pure values: parsing the comma-separated form
//! every `--chain`/`--rpc` flag takes, the order to try them in (round the list from the one after
//! the endpoint that failed, those that failed at their last try at the end), what each try said,
//! and the growing pause between rounds of reconnection.

use std::fmt;
use std::time::Duration;

use crate::limits::{ENDPOINTS_MAX, RECONNECT_DELAY_MAX, RECONNECT_DELAY_MIN};

/// `list` as endpoint URLs: comma-separated, blanks around each trimmed, empty entries and repeats
/// left out; an `http(s)://` URL is taken as its WebSocket twin (the node serves both on one port).
pub fn parse(list: &str) -> Result<Vec<String>, String> {
    let mut endpoints: Vec<String> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let url = websocket_url(entry);
        if !endpoints.contains(&url) {
            endpoints.push(url);
        }
    }
    if endpoints.is_empty() {
        return Err("names no endpoint".into());
    }
    if endpoints.len() > ENDPOINTS_MAX {
        return Err(format!(
            "names {} endpoints, more than the {ENDPOINTS_MAX} a list may hold",
            endpoints.len()
        ));
    }
    Ok(endpoints)
}

fn websocket_url(url: &str) -> String {
    match url.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}"),
        Some(("https", rest)) => format!("wss://{rest}"),
        _ => url.to_owned(),
    }
}

/// The order to try endpoints in: round the list from `start`, except that those marked in
/// `failed` (they failed at their last try) come after the others, in the same round order. Every
/// endpoint appears once.
pub fn attempt_order(start: usize, failed: &[bool]) -> Vec<usize> {
    let count = failed.len();
    let round = (0..count).map(|i| (start + i) % count);
    let (good, bad): (Vec<usize>, Vec<usize>) = round.partition(|&i| !failed[i]);
    good.into_iter().chain(bad).collect()
}

/// Where a reconnection starts: the endpoint after the one in use (which just failed).
pub fn after(current: usize, count: usize) -> usize {
    (current + 1) % count
}

/// One endpoint tried, and why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub endpoint: String,
    pub reason: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.reason)
    }
}

/// Every endpoint tried, in order, with its reason: the text of a failed connection.
pub fn describe(attempts: &[Attempt]) -> String {
    match attempts {
        [one] => format!("cannot reach the chain at {one}"),
        many => {
            let each: Vec<String> = many.iter().map(Attempt::to_string).collect();
            format!(
                "cannot reach the chain at any of its {} endpoints: {}",
                many.len(),
                each.join("; ")
            )
        }
    }
}

/// The pause before each round of reconnection: from [`RECONNECT_DELAY_MIN`], doubling up to
/// [`RECONNECT_DELAY_MAX`]; [`reset`](Backoff::reset) once a connection works again.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: RECONNECT_DELAY_MIN,
        }
    }
}

impl Backoff {
    /// The pause to take now; the one after is twice as long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(RECONNECT_DELAY_MAX);
        now
    }

    pub fn reset(&mut self) {
        self.next = RECONNECT_DELAY_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(list: &str, expect: Result<&[&str], &str>) {
        let expect = expect
            .map(|urls| urls.iter().map(|u| u.to_string()).collect())
            .map_err(str::to_owned);
        assert_eq!(parse(list), expect, "{list:?}");
    }

    #[test]
    fn a_list_is_comma_separated_urls() {
        check_parse("ws://a:9944", Ok(&["ws://a:9944"]));
        check_parse(
            "ws://a:9944,ws://b:9944",
            Ok(&["ws://a:9944", "ws://b:9944"]),
        );
        check_parse(
            " ws://a:9944 , http://b:9944/ ,https://c,,",
            Ok(&["ws://a:9944", "ws://b:9944/", "wss://c"]),
        );
        check_parse("ws://a,http://a,ws://b", Ok(&["ws://a", "ws://b"]));
        // An unknown scheme is the connection's to refuse, with the endpoint named.
        check_parse("tcp://a", Ok(&["tcp://a"]));
        check_parse(" , ", Err("names no endpoint"));
        check_parse("", Err("names no endpoint"));
        let long: Vec<String> = (0..=ENDPOINTS_MAX).map(|i| format!("ws://n{i}")).collect();
        check_parse(
            &long.join(","),
            Err("names 17 endpoints, more than the 16 a list may hold"),
        );
    }

    fn check_order(start: usize, failed: &[u8], expect: &[usize]) {
        let failed: Vec<bool> = failed.iter().map(|f| *f == 1).collect();
        assert_eq!(attempt_order(start, &failed), expect, "{start} {failed:?}");
    }

    #[test]
    fn endpoints_are_tried_round_the_list_from_the_start_with_failed_ones_last() {
        check_order(0, &[0], &[0]);
        check_order(0, &[0, 0, 0], &[0, 1, 2]);
        check_order(1, &[0, 0, 0], &[1, 2, 0]);
        check_order(2, &[0, 0, 0], &[2, 0, 1]);
        // A dead first endpoint is not tried first again.
        check_order(0, &[1, 0, 0], &[1, 2, 0]);
        check_order(2, &[1, 0, 0], &[2, 1, 0]);
        check_order(1, &[0, 1, 1], &[0, 1, 2]);
        // All failed: round the list from the start, as if none had.
        check_order(1, &[1, 1, 1], &[1, 2, 0]);
    }

    #[test]
    fn a_reconnection_starts_after_the_endpoint_that_failed() {
        assert_eq!(after(0, 1), 0);
        assert_eq!(after(0, 3), 1);
        assert_eq!(after(2, 3), 0);
        // The one that failed comes last in the round.
        assert_eq!(attempt_order(after(1, 3), &[false; 3]), [2, 0, 1]);
    }

    #[test]
    fn a_failed_connection_names_every_endpoint_tried() {
        let attempt = |endpoint: &str, reason: &str| Attempt {
            endpoint: endpoint.into(),
            reason: reason.into(),
        };
        assert_eq!(
            describe(&[attempt("ws://a:1", "connection refused")]),
            "cannot reach the chain at ws://a:1: connection refused"
        );
        assert_eq!(
            describe(&[
                attempt("ws://a:1", "connection refused"),
                attempt("ws://b:2", "no answer within 5s"),
            ]),
            "cannot reach the chain at any of its 2 endpoints: ws://a:1: connection refused; \
             ws://b:2: no answer within 5s"
        );
    }

    #[test]
    fn the_pause_doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::default();
        let mut pauses = vec![];
        for _ in 0..8 {
            pauses.push(backoff.next_delay().as_millis());
        }
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), RECONNECT_DELAY_MIN);
    }
}
