//! The server name (SNI) of a TLS ClientHello, read from the first bytes a client sends: a pure
//! parser over a byte slice (no IO), so the TLS listener can route a connection before deciding
//! whether to terminate TLS itself or pass the bytes through to a backend untouched.
//!
//! Layout (RFC 8446 §5.1 and §4.1.2, RFC 6066 §3): records of `type (0x16 = handshake) ‖ version
//! (0x03 0x0N) ‖ u16 length ‖ fragment`, whose fragments concatenated hold the handshake message
//! `type (1 = ClientHello) ‖ u24 length ‖ body`; the body is `version ‖ random[32] ‖ session id<u8>
//! ‖ cipher suites<u16> ‖ compression methods<u8> ‖ extensions<u16>`, and the extension of type 0
//! holds a `list<u16>` of `name type (0 = host_name) ‖ name<u16>`.

use crate::limits::CLIENT_HELLO_BYTES_MAX;

/// Bytes of one TLS record's fragment (RFC 8446: 2^14).
const RECORD_FRAGMENT_BYTES_MAX: usize = 16 * 1024;
const RECORD_HEADER_BYTES: usize = 5;
const HANDSHAKE_HEADER_BYTES: usize = 4;
const CONTENT_TYPE_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the start of a stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// Not enough bytes yet: read more and ask again.
    Incomplete,
    /// The stream does not start with a TLS handshake record.
    NotTls,
    /// A TLS handshake that breaks the format.
    Malformed(&'static str),
    /// A whole ClientHello, with its host name (lowercase) if it sent one.
    Hello { sni: Option<String> },
}

/// Reads the ClientHello at the start of `buf`, which holds the first bytes of a stream.
pub fn parse(buf: &[u8]) -> ClientHello {
    match buf {
        [] => return ClientHello::Incomplete,
        [first, ..] if *first != CONTENT_TYPE_HANDSHAKE => return ClientHello::NotTls,
        [_, major, ..] if *major != 3 => return ClientHello::NotTls,
        _ => {}
    }
    // Join the fragments of the whole records until they hold the handshake message.
    let mut handshake = Vec::new();
    let mut rest = buf;
    loop {
        if let Some(len) = message_len(&handshake) {
            if len > CLIENT_HELLO_BYTES_MAX {
                return ClientHello::Malformed("client hello longer than the gateway accepts");
            }
            if handshake.len() >= HANDSHAKE_HEADER_BYTES + len {
                if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                    return ClientHello::Malformed("first handshake message is not a client hello");
                }
                let body = &handshake[HANDSHAKE_HEADER_BYTES..HANDSHAKE_HEADER_BYTES + len];
                return match hello_sni(body) {
                    Ok(sni) => ClientHello::Hello { sni },
                    Err(reason) => ClientHello::Malformed(reason),
                };
            }
        }
        if rest.len() < RECORD_HEADER_BYTES {
            return ClientHello::Incomplete;
        }
        if rest[0] != CONTENT_TYPE_HANDSHAKE || rest[1] != 3 {
            return ClientHello::Malformed("a record other than handshake inside the client hello");
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > RECORD_FRAGMENT_BYTES_MAX {
            return ClientHello::Malformed("handshake record length out of range");
        }
        let Some(fragment) = rest.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
            return ClientHello::Incomplete;
        };
        handshake.extend_from_slice(fragment);
        rest = &rest[RECORD_HEADER_BYTES + len..];
    }
}

/// The declared body length of the handshake message, once its header is there.
fn message_len(handshake: &[u8]) -> Option<usize> {
    match handshake {
        [_, a, b, c, ..] => Some(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
        _ => None,
    }
}

/// The host name in a ClientHello's body.
fn hello_sni(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(body);
    r.take(2 + 32)
        .ok_or("client hello shorter than its version and random")?;
    r.vec_u8().ok_or("session id overruns the client hello")?;
    r.vec_u16()
        .ok_or("cipher suites overrun the client hello")?;
    r.vec_u8()
        .ok_or("compression methods overrun the client hello")?;
    if r.0.is_empty() {
        return Ok(None); // TLS 1.2 allows a hello without extensions
    }
    let mut extensions = Reader(r.vec_u16().ok_or("extensions overrun the client hello")?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16().ok_or("extension header cut short")?;
        let data = extensions.vec_u16().ok_or("extension overruns the list")?;
        if kind == EXTENSION_SERVER_NAME {
            return server_name(data).map(Some);
        }
    }
    Ok(None)
}

/// The host name in a server_name extension's data.
fn server_name(data: &[u8]) -> Result<String, &'static str> {
    let mut list = Reader(Reader(data).vec_u16().ok_or("server name list overruns")?);
    while !list.0.is_empty() {
        let kind = list.u8().ok_or("server name entry cut short")?;
        let name = list.vec_u16().ok_or("server name overruns the list")?;
        if kind == NAME_TYPE_HOST_NAME {
            let valid = !name.is_empty()
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !valid {
                return Err("server name is not a host name");
            }
            return Ok(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    Err("server name extension without a host name")
}

/// Big-endian reads off the front of a slice; `None` when the slice is too short.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec_u8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec_u16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use mutation::{Mutation, mutate, mutation};
    use proptest::prelude::*;
    use rustls::pki_types::ServerName;

    use super::*;

    /// The first flight of a real rustls client (a ClientHello), with records of at most
    /// `fragment` bytes.
    fn rustls_hello(name: &str, sni: bool, fragment: Option<usize>) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.enable_sni = sni;
        config.max_fragment_size = fragment;
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out
    }

    fn check(input: &[u8], expect: ClientHello) {
        assert_eq!(parse(input), expect, "{input:02x?}");
    }

    fn hello(sni: Option<&str>) -> ClientHello {
        ClientHello::Hello {
            sni: sni.map(str::to_string),
        }
    }

    #[test]
    fn real_hellos() {
        check(
            &rustls_hello("Web.Example.com", true, None),
            hello(Some("web.example.com")),
        );
        check(&rustls_hello("web.example.com", false, None), hello(None));
        // An IP address is never sent as a server name.
        check(&rustls_hello("10.1.2.3", true, None), hello(None));
        // Spread over many records.
        let whole = rustls_hello("spread.example.com", true, None);
        let spread = rustls_hello("spread.example.com", true, Some(64));
        let records = (spread.len() - whole.len()) / 5 + 1;
        assert!(records > 3, "{records} records");
        check(&spread, hello(Some("spread.example.com")));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for bytes in [
            rustls_hello("a.example.com", true, None),
            rustls_hello("b.example.com", true, Some(64)),
        ] {
            for cut in 0..bytes.len() {
                check(&bytes[..cut], ClientHello::Incomplete);
            }
            // Bytes after the hello (the client's next records) change nothing.
            let mut more = bytes.clone();
            more.extend_from_slice(b"\x17\x03\x03\x00\x05hello");
            assert!(matches!(parse(&more), ClientHello::Hello { sni: Some(_) }));
        }
    }

    #[test]
    fn not_tls_and_malformed() {
        check(b"GET / HTTP/1.1\r\n", ClientHello::NotTls);
        check(b"\x16\x01", ClientHello::NotTls);
        check(b"\x16", ClientHello::Incomplete);
        let malformed = |input: &[u8], reason: &str| match parse(input) {
            ClientHello::Malformed(r) => assert!(r.contains(reason), "{input:02x?}: {r}"),
            other => panic!("{input:02x?}: {other:?}"),
        };
        malformed(b"\x16\x03\x01\x00\x00", "record length");
        malformed(b"\x16\x03\x01\x40\x01", "record length");
        malformed(
            b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
            "not a client hello",
        );
        malformed(
            b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
            "version and random",
        );
        malformed(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", "longer than");
        malformed(
            b"\x16\x03\x01\x00\x02\x01\x00\x17\x03\x03\x00\x01\x00",
            "other than handshake",
        );
        // A server name that is not a host name.
        let good = rustls_hello("bad.example.com", true, None);
        let at = good
            .windows(15)
            .position(|w| w == b"bad.example.com")
            .unwrap();
        let mut bad = good.clone();
        bad[at + 3] = b'/';
        malformed(&bad, "not a host name");
        // A cut inside the extensions with the lengths around it left as they are.
        let mut cut = good.clone();
        cut.truncate(at + 4);
        let shrink = good.len() - cut.len();
        let record_len = u16::from_be_bytes([cut[3], cut[4]]) as usize - shrink;
        cut[3..5].copy_from_slice(&(record_len as u16).to_be_bytes());
        let message_len =
            (usize::from(cut[6]) << 16 | usize::from(cut[7]) << 8 | usize::from(cut[8])) - shrink;
        cut[6..9].copy_from_slice(&(message_len as u32).to_be_bytes()[1..]);
        malformed(&cut, "overrun");
    }

    /// A ClientHello to build: everything the parser walks over, with arbitrary contents.
    #[derive(Debug, Clone)]
    struct HelloSpec {
        random: [u8; 32],
        session_id: Vec<u8>,
        cipher_suites: Vec<u16>,
        compression: Vec<u8>,
        /// `None`: no extensions block at all (TLS 1.2 allows it).
        extensions: Option<Extensions>,
        /// Record fragment size the hello is cut into.
        fragment: usize,
        record_minor: u8,
    }

    /// A server name entry: its name type and name.
    type NameEntry = (u8, Vec<u8>);

    #[derive(Debug, Clone)]
    struct Extensions {
        before: Vec<(u16, Vec<u8>)>,
        /// Name entries of other types before the host name, and the host name.
        sni: Option<(Vec<NameEntry>, String)>,
        after: Vec<(u16, Vec<u8>)>,
    }

    fn vec_u8(out: &mut Vec<u8>, data: &[u8]) {
        out.push(u8::try_from(data.len()).unwrap());
        out.extend_from_slice(data);
    }

    fn vec_u16(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(data);
    }

    fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        vec_u16(out, data);
    }

    /// The records of the hello `spec` describes.
    fn encode_hello(spec: &HelloSpec) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&spec.random);
        vec_u8(&mut body, &spec.session_id);
        let suites: Vec<u8> = spec
            .cipher_suites
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        vec_u16(&mut body, &suites);
        vec_u8(&mut body, &spec.compression);
        if let Some(ext) = &spec.extensions {
            let mut list = Vec::new();
            for (kind, data) in &ext.before {
                extension(&mut list, *kind, data);
            }
            if let Some((others, host)) = &ext.sni {
                let mut names = Vec::new();
                for (kind, name) in others {
                    names.push(*kind);
                    vec_u16(&mut names, name);
                }
                names.push(NAME_TYPE_HOST_NAME);
                vec_u16(&mut names, host.as_bytes());
                let mut data = Vec::new();
                vec_u16(&mut data, &names);
                extension(&mut list, EXTENSION_SERVER_NAME, &data);
            }
            for (kind, data) in &ext.after {
                extension(&mut list, *kind, data);
            }
            vec_u16(&mut body, &list);
        }
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut message = vec![HANDSHAKE_CLIENT_HELLO, len[1], len[2], len[3]];
        message.extend_from_slice(&body);
        let mut records = Vec::new();
        for chunk in message.chunks(spec.fragment) {
            records.extend_from_slice(&[CONTENT_TYPE_HANDSHAKE, 3, spec.record_minor]);
            vec_u16(&mut records, chunk);
        }
        records
    }

    fn hello_spec() -> impl Strategy<Value = HelloSpec> {
        let bytes = |max| proptest::collection::vec(any::<u8>(), 0..max);
        let other_extension = (1u16.., bytes(24));
        let other_name = (1u8.., bytes(16));
        let host = "[a-zA-Z0-9_.-]{1,60}";
        let sni = proptest::option::of((proptest::collection::vec(other_name, 0..2), host));
        let extensions = (
            proptest::collection::vec(other_extension.clone(), 0..4),
            sni,
            proptest::collection::vec(other_extension, 0..3),
        )
            .prop_map(|(before, sni, after)| Extensions { before, sni, after });
        (
            any::<[u8; 32]>(),
            bytes(33),
            proptest::collection::vec(any::<u16>(), 1..20),
            proptest::collection::vec(any::<u8>(), 1..3),
            proptest::option::weighted(0.9, extensions),
            prop_oneof![1usize..64, Just(RECORD_FRAGMENT_BYTES_MAX)],
            0u8..=4,
        )
            .prop_map(
                |(random, session_id, cipher_suites, compression, extensions, fragment, minor)| {
                    HelloSpec {
                        random,
                        session_id,
                        cipher_suites,
                        compression,
                        extensions,
                        fragment,
                        record_minor: minor,
                    }
                },
            )
    }

    /// What parsing the hello `spec` describes must give.
    fn expected(spec: &HelloSpec) -> ClientHello {
        let sni = spec.extensions.as_ref().and_then(|e| e.sni.as_ref());
        hello(sni.map(|(_, host)| host.to_ascii_lowercase()).as_deref())
    }

    pub(crate) const CASES: u32 = 512;

    /// Runs `test` on [`CASES`] inputs from `strategy`; returns how many it said decoded.
    pub(crate) fn count_decoded<S: Strategy>(
        strategy: S,
        test: impl Fn(S::Value) -> Result<bool, proptest::test_runner::TestCaseError>,
    ) -> u32 {
        let decoded = std::cell::Cell::new(0);
        proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES))
            .run(&strategy, |value| {
                decoded.set(decoded.get() + u32::from(test(value)?));
                Ok(())
            })
            .unwrap();
        decoded.get()
    }

    /// Hellos built from their parts parse to their host name (lowercase), over one record or
    /// many; every strict prefix is incomplete.
    #[test]
    fn built_hellos_parse_and_their_prefixes_are_incomplete() {
        let decoded = count_decoded(hello_spec(), |spec| {
            let bytes = encode_hello(&spec);
            prop_assert_eq!(parse(&bytes), expected(&spec));
            for cut in 0..bytes.len() {
                prop_assert_eq!(parse(&bytes[..cut]), ClientHello::Incomplete);
            }
            Ok(true)
        });
        assert_eq!(decoded, CASES);
    }

    /// Parses `valid` changed by `m`: it must not panic, a cut one must ask for more, and what
    /// parses names a host name or none. `Some(true)`: parsed; `Some(false)`: refused as malformed.
    fn parse_changed(
        valid: &[u8],
        m: &Mutation,
    ) -> Result<Option<bool>, proptest::test_runner::TestCaseError> {
        let result = parse(&mutate(valid, m));
        if matches!(m, Mutation::Truncate(_)) {
            prop_assert_eq!(&result, &ClientHello::Incomplete);
        }
        Ok(match result {
            ClientHello::Hello { sni } => {
                if let Some(name) = sni {
                    prop_assert!(!name.is_empty());
                    prop_assert_eq!(name.to_ascii_lowercase(), name);
                }
                Some(true)
            }
            ClientHello::Malformed(reason) => {
                prop_assert!(!reason.is_empty());
                Some(false)
            }
            ClientHello::Incomplete | ClientHello::NotTls => None,
        })
    }

    /// Changed hellos (built ones, or real ones from rustls): parsed, refused or incomplete, and
    /// enough of each.
    #[test]
    fn changed_hellos_parse_or_are_refused() {
        let real = [
            rustls_hello("flip.example.com", true, None),
            rustls_hello("Flip.Example.com", true, Some(128)),
            rustls_hello("flip.example.com", false, None),
        ];
        let hellos = prop_oneof![
            hello_spec().prop_map(|spec| encode_hello(&spec)),
            proptest::sample::select(real.to_vec()),
        ];
        let refused = std::cell::Cell::new(0u32);
        let decoded = count_decoded((hellos, mutation()), |(bytes, m)| {
            let outcome = parse_changed(&bytes, &m)?;
            refused.set(refused.get() + u32::from(outcome == Some(false)));
            Ok(outcome == Some(true))
        });
        assert!(decoded >= CASES / 20, "{decoded} parsed");
        assert!(refused.get() > 0, "none refused");
    }
}
