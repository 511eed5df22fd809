//! RESP2 codec: the request decoder (arrays of bulk strings only, as 0-db) and reply encoding.
//! The decoder never allocates for a length it has not checked against `limits`, and returns
//! zero-copy `Bytes` arguments sliced out of the read buffer.

use crate::limits::{ARG_BYTES_MAX, ARGS_MAX, HEADER_DIGITS_MAX, REQUEST_BYTES_MAX};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a request could not be decoded; the connection is answered with the message and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The request does not start with `*` (inline commands are refused, as in 0-db).
    ArrayExpected,
    /// `*0`.
    MissingArguments,
    /// More than `ARGS_MAX` arguments.
    TooManyArguments,
    /// A header or terminator is not where it should be.
    Malformed,
    /// An argument is longer than `ARG_BYTES_MAX`, or the request longer than `REQUEST_BYTES_MAX`.
    PayloadTooBig,
}

impl FrameError {
    /// 0-db's reply for this error.
    pub fn message(self) -> &'static str {
        match self {
            FrameError::ArrayExpected => "Malformed request, array expected",
            FrameError::MissingArguments => "Missing arguments",
            FrameError::TooManyArguments => "Too many arguments",
            FrameError::Malformed => "Malformed query string",
            FrameError::PayloadTooBig => "Payload too big",
        }
    }
}

/// Decodes one request from the front of `buf`. `Ok(None)` means more bytes are needed; the
/// consumed bytes are removed from `buf` only when a whole request is there.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, FrameError> {
    let mut args = Vec::new();
    Ok(Decoder::default().next(buf, &mut args)?.then_some(args))
}

/// A request decoder that reuses its scratch space from one request to the next.
#[derive(Debug, Default)]
pub struct Decoder {
    ranges: Vec<(usize, usize)>,
}

impl Decoder {
    /// Like [`decode`], filling `args` (cleared first); `Ok(false)` means more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut, args: &mut Vec<Bytes>) -> Result<bool, FrameError> {
        args.clear();
        let Some(end) = scan(buf, &mut self.ranges)? else {
            return Ok(false);
        };
        let frame = buf.split_to(end).freeze();
        args.extend(self.ranges.iter().map(|&(s, e)| frame.slice(s..e)));
        Ok(true)
    }
}

/// Validates a complete request at the front of `buf`, storing its argument ranges in `ranges`;
/// returns the request's length.
fn scan(buf: &[u8], ranges: &mut Vec<(usize, usize)>) -> Result<Option<usize>, FrameError> {
    ranges.clear();
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return Err(FrameError::ArrayExpected);
    }
    let Some((count, mut pos)) = header(buf, 1)? else {
        return Ok(None);
    };
    if count == 0 {
        return Err(FrameError::MissingArguments);
    }
    if count > ARGS_MAX as u64 {
        return Err(FrameError::TooManyArguments);
    }
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(FrameError::Malformed);
        }
        let Some((len, start)) = header(buf, pos + 1)? else {
            return Ok(None);
        };
        if len > ARG_BYTES_MAX as u64 {
            return Err(FrameError::PayloadTooBig);
        }
        let end = start + len as usize;
        if end + 2 > REQUEST_BYTES_MAX {
            return Err(FrameError::PayloadTooBig);
        }
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(FrameError::Malformed);
        }
        ranges.push((start, end));
        pos = end + 2;
    }
    Ok(Some(pos))
}

/// Parses the decimal after a type byte up to `\r\n`; returns (value, index after `\r\n`).
fn header(buf: &[u8], from: usize) -> Result<Option<(u64, usize)>, FrameError> {
    let mut value: u64 = 0;
    let mut pos = from;
    loop {
        let Some(&byte) = buf.get(pos) else {
            if pos - from > HEADER_DIGITS_MAX {
                return Err(FrameError::Malformed);
            }
            return Ok(None);
        };
        match byte {
            b'0'..=b'9' => {
                if pos - from >= HEADER_DIGITS_MAX {
                    return Err(FrameError::Malformed);
                }
                value = value * 10 + u64::from(byte - b'0');
            }
            b'\r' => {
                if pos == from {
                    return Err(FrameError::Malformed);
                }
                return match buf.get(pos + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((value, pos + 2))),
                    Some(_) => Err(FrameError::Malformed),
                };
            }
            _ => return Err(FrameError::Malformed),
        }
        pos += 1;
    }
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Bytes),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// Appends the RESP2 encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => {
                out.put_u8(b':');
                if *n < 0 {
                    out.put_u8(b'-');
                }
                decimal(out, n.unsigned_abs());
            }
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::Bulk(b) => {
                out.reserve(b.len() + 16);
                out.put_u8(b'$');
                decimal(out, b.len() as u64);
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Reply::Array(items) => {
                out.put_u8(b'*');
                decimal(out, items.len() as u64);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// Appends `n` in decimal followed by `\r\n`, without allocating.
fn decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
    out.put_slice(b"\r\n");
}

/// Appends the header of a bulk string of `len` bytes (`$<len>\r\n`).
pub fn put_bulk_header(out: &mut BytesMut, len: usize) {
    out.put_u8(b'$');
    decimal(out, len as u64);
}

/// Appends the header of an array of `len` items (`*<len>\r\n`).
pub fn put_array_header(out: &mut BytesMut, len: usize) {
    out.put_u8(b'*');
    decimal(out, len as u64);
}

fn line(out: &mut BytesMut, kind: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(kind);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// Encodes a request (array of bulk strings): used by the replication stream.
pub fn encode_request(args: &[&[u8]], out: &mut BytesMut) {
    out.put_u8(b'*');
    decimal(out, args.len() as u64);
    for arg in args {
        out.put_u8(b'$');
        decimal(out, arg.len() as u64);
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Decodes one reply (used by a replica to read the master's answers to its handshake).
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<Reply>, FrameError> {
    let mut cursor = &buf[..];
    let before = cursor.len();
    match reply_at(&mut cursor, 0)? {
        Some(reply) => {
            let used = before - cursor.len();
            buf.advance(used);
            Ok(Some(reply))
        }
        None => Ok(None),
    }
}

fn reply_at(cursor: &mut &[u8], depth: usize) -> Result<Option<Reply>, FrameError> {
    if depth > 4 {
        return Err(FrameError::Malformed);
    }
    let Some(&kind) = cursor.first() else {
        return Ok(None);
    };
    // Also keeps `eol` past the type byte.
    if !b"+-:$*".contains(&kind) {
        return Err(FrameError::Malformed);
    }
    let Some(eol) = cursor.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let body = std::str::from_utf8(&cursor[1..eol]).map_err(|_| FrameError::Malformed)?;
    let rest = &cursor[eol + 2..];
    let reply = match kind {
        b'+' => Reply::Status(body.to_owned()),
        b'-' => Reply::Error(body.to_owned()),
        b':' => Reply::Int(body.parse().map_err(|_| FrameError::Malformed)?),
        b'$' if body == "-1" => Reply::Nil,
        b'$' => {
            let len: usize = body.parse().map_err(|_| FrameError::Malformed)?;
            if len > ARG_BYTES_MAX {
                return Err(FrameError::PayloadTooBig);
            }
            if rest.len() < len + 2 {
                return Ok(None);
            }
            if &rest[len..len + 2] != b"\r\n" {
                return Err(FrameError::Malformed);
            }
            let reply = Reply::Bulk(Bytes::copy_from_slice(&rest[..len]));
            *cursor = &rest[len + 2..];
            return Ok(Some(reply));
        }
        b'*' => {
            let count: usize = body.parse().map_err(|_| FrameError::Malformed)?;
            if count > ARGS_MAX {
                return Err(FrameError::TooManyArguments);
            }
            let mut inner = rest;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                match reply_at(&mut inner, depth + 1)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            *cursor = inner;
            return Ok(Some(Reply::Array(items)));
        }
        _ => return Err(FrameError::Malformed),
    };
    *cursor = rest;
    Ok(Some(reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mutation::{Mutation, mutate, mutation};
    use proptest::prelude::*;

    fn check(input: &[u8], expect: Result<Option<Vec<&[u8]>>, FrameError>) {
        let mut buf = BytesMut::from(input);
        let got = decode(&mut buf)
            .map(|o| o.map(|v| v.into_iter().map(|b| b.to_vec()).collect::<Vec<_>>()));
        let expect =
            expect.map(|o| o.map(|v| v.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()));
        assert_eq!(got, expect, "input {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn decodes_requests_and_rejects_bad_frames() {
        check(b"*1\r\n$4\r\nPING\r\n", Ok(Some(vec![b"PING"])));
        check(
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
            Ok(Some(vec![b"GET", b""])),
        );
        check(b"*2\r\n$3\r\nGET\r\n$3\r\nab", Ok(None));
        check(b"*2\r\n$3\r\nGET\r", Ok(None));
        check(b"*", Ok(None));
        check(b"PING\r\n", Err(FrameError::ArrayExpected));
        check(b"*0\r\n", Err(FrameError::MissingArguments));
        check(b"*1025\r\n", Err(FrameError::TooManyArguments));
        check(b"*1\r\n:4\r\n", Err(FrameError::Malformed));
        check(b"*1\r\n$-1\r\n", Err(FrameError::Malformed));
        check(b"*x\r\n", Err(FrameError::Malformed));
        check(b"*1\r\n$4\r\nPINGxx", Err(FrameError::Malformed));
        check(b"*1\r\n$8388609\r\n", Err(FrameError::PayloadTooBig));
        check(b"*1\r\n$99999999999999999\r\n", Err(FrameError::Malformed));
    }

    #[test]
    fn leaves_the_next_request_in_the_buffer() {
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nTIME\r\n"[..]);
        assert_eq!(
            decode(&mut buf).unwrap().unwrap(),
            vec![Bytes::from_static(b"PING")]
        );
        assert_eq!(
            decode(&mut buf).unwrap().unwrap(),
            vec![Bytes::from_static(b"TIME")]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn replies_roundtrip() {
        let reply = Reply::Array(vec![
            Reply::Status("OK".into()),
            Reply::Error("No more data".into()),
            Reply::Int(-3),
            Reply::Int(i64::MIN),
            Reply::Int(1234567890),
            Reply::Nil,
            Reply::bulk(&b"a\r\nb"[..]),
            Reply::Array(vec![]),
        ]);
        let mut out = BytesMut::new();
        reply.encode(&mut out);
        assert_eq!(decode_reply(&mut out).unwrap(), Some(reply));
        assert!(out.is_empty());
    }

    /// How the decoder answered a run of inputs.
    #[derive(Debug, Default)]
    struct Outcomes {
        decoded: u32,
        incomplete: u32,
        refused: u32,
    }

    const CASES: u32 = 512;

    /// Runs `test` on `CASES` inputs from `strategy`, tallying what it reports.
    fn tally<S: Strategy>(
        strategy: S,
        test: impl Fn(S::Value) -> Result<Option<bool>, TestCaseError>,
    ) -> Outcomes {
        let outcomes = std::cell::RefCell::new(Outcomes::default());
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
        runner
            .run(&strategy, |value| {
                let mut o = outcomes.borrow_mut();
                match test(value)? {
                    Some(true) => o.decoded += 1,
                    Some(false) => o.refused += 1,
                    None => o.incomplete += 1,
                }
                Ok(())
            })
            .unwrap();
        outcomes.into_inner()
    }

    type DecodeFn<T> = fn(&mut BytesMut) -> Result<Option<T>, FrameError>;

    /// Every strict prefix of `encoded` asks for more and consumes nothing.
    fn prefixes_are_incomplete<T: std::fmt::Debug + PartialEq>(
        encoded: &[u8],
        decode: DecodeFn<T>,
    ) -> Result<(), TestCaseError> {
        for cut in 0..encoded.len() {
            let mut partial = BytesMut::from(&encoded[..cut]);
            prop_assert_eq!(decode(&mut partial), Ok(None));
            prop_assert_eq!(partial.len(), cut);
        }
        Ok(())
    }

    /// Decodes `encoded` changed by `m`: a value (checked by `decoded` with the bytes consumed),
    /// a request for more (always so for a cut), or a refusal with a reason; only a value
    /// consumes bytes.
    fn decode_mutated<T: std::fmt::Debug + PartialEq>(
        encoded: &[u8],
        m: &Mutation,
        decode: DecodeFn<T>,
        decoded: impl Fn(&T, usize) -> Result<(), TestCaseError>,
    ) -> Result<Option<bool>, TestCaseError> {
        let input = mutate(encoded, m);
        let mut buf = BytesMut::from(&input[..]);
        let result = decode(&mut buf);
        if matches!(m, Mutation::Truncate(_)) {
            prop_assert_eq!(&result, &Ok(None));
        }
        let used = input.len() - buf.len();
        Ok(match result {
            Ok(Some(value)) => {
                prop_assert!(used > 0);
                decoded(&value, used)?;
                Some(true)
            }
            Ok(None) => {
                prop_assert_eq!(used, 0);
                None
            }
            Err(e) => {
                prop_assert_eq!(used, 0);
                prop_assert!(!e.message().is_empty());
                Some(false)
            }
        })
    }

    /// The mutated runs must reach real decodes, refusals and cuts.
    fn assert_mutations_reach_every_outcome(outcomes: &Outcomes) {
        assert!(outcomes.decoded >= CASES / 20, "{outcomes:?}");
        assert!(
            outcomes.refused > 0 && outcomes.incomplete > 0,
            "{outcomes:?}"
        );
    }

    fn request_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..16)
    }

    fn encoded_request(args: &[Vec<u8>]) -> BytesMut {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut encoded = BytesMut::new();
        encode_request(&refs, &mut encoded);
        encoded
    }

    /// Every request encodes and decodes back, leaving what follows it; every strict prefix asks
    /// for more without consuming anything.
    #[test]
    fn valid_requests_roundtrip_and_their_prefixes_are_incomplete() {
        let outcomes = tally(request_args(), |args| {
            let mut encoded = encoded_request(&args);
            prefixes_are_incomplete(&encoded, decode)?;
            encoded.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            let decoded = decode(&mut encoded).unwrap().unwrap();
            prop_assert_eq!(decoded.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), args);
            prop_assert_eq!(&encoded[..], &b"*1\r\n$4\r\nPING\r\n"[..]);
            Ok(Some(true))
        });
        assert_eq!(outcomes.decoded, CASES, "{outcomes:?}");
    }

    /// A changed valid request decodes to a request, asks for more, or is refused with a reason.
    #[test]
    fn mutated_requests_decode_or_are_refused() {
        let outcomes = tally((request_args(), mutation()), |(args, m)| {
            decode_mutated(&encoded_request(&args), &m, decode, |got, used| {
                prop_assert!(!got.is_empty() && got.len() <= ARGS_MAX);
                let got: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
                // Canonical headers are the shortest; the decoder also takes leading zeros.
                prop_assert!(encoded_request(&got).len() <= used);
                Ok(())
            })
        });
        assert_mutations_reach_every_outcome(&outcomes);
    }

    fn reply_strategy() -> impl Strategy<Value = Reply> {
        let line = "[ -~]{0,24}";
        let leaf = prop_oneof![
            line.prop_map(Reply::Status),
            line.prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Int),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(Reply::bulk),
            Just(Reply::Nil),
        ];
        // Four levels of arrays at most, as `decode_reply` accepts.
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop::collection::vec(inner, 0..6).prop_map(Reply::Array)
        })
    }

    fn encoded_reply(reply: &Reply) -> BytesMut {
        let mut encoded = BytesMut::new();
        reply.encode(&mut encoded);
        encoded
    }

    /// Every reply encodes and decodes back; every strict prefix asks for more.
    #[test]
    fn valid_replies_roundtrip_and_their_prefixes_are_incomplete() {
        let outcomes = tally(reply_strategy(), |reply| {
            let mut encoded = encoded_reply(&reply);
            prefixes_are_incomplete(&encoded, decode_reply)?;
            prop_assert_eq!(decode_reply(&mut encoded), Ok(Some(reply)));
            prop_assert!(encoded.is_empty());
            Ok(Some(true))
        });
        assert_eq!(outcomes.decoded, CASES, "{outcomes:?}");
    }

    /// A changed valid reply decodes, asks for more, or is refused with a reason.
    #[test]
    fn mutated_replies_decode_or_are_refused() {
        let outcomes = tally((reply_strategy(), mutation()), |(reply, m)| {
            decode_mutated(&encoded_reply(&reply), &m, decode_reply, |_, _| Ok(()))
        });
        assert_mutations_reach_every_outcome(&outcomes);
    }

    #[test]
    fn a_bulk_reply_must_end_with_crlf() {
        let mut buf = BytesMut::from(&b"$3\r\nabcXY"[..]);
        assert_eq!(decode_reply(&mut buf), Err(FrameError::Malformed));
        assert_eq!(buf.len(), 9);
    }

    #[test]
    fn a_reply_starting_with_crlf_is_refused() {
        let mut buf = BytesMut::from(&b"\r\n+OK\r\n"[..]);
        assert_eq!(decode_reply(&mut buf), Err(FrameError::Malformed));
        let mut nested = BytesMut::from(&b"*1\r\n\r\n"[..]);
        assert_eq!(decode_reply(&mut nested), Err(FrameError::Malformed));
    }
}
