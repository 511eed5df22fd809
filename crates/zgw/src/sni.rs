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
mod tests {
    use std::sync::Arc;

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

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_a_tls_start(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            bytes.splice(0..0, [0x16, 0x03, 0x01, (bytes.len() >> 8) as u8, bytes.len() as u8]);
            let _ = parse(&bytes);
        }

        #[test]
        fn one_flipped_byte_never_panics(at in 0usize..4096, value in any::<u8>()) {
            let mut bytes = rustls_hello("flip.example.com", true, Some(128));
            let at = at % bytes.len();
            bytes[at] = value;
            let _ = parse(&bytes);
        }
    }
}
