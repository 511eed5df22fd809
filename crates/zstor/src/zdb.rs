//! A small 0-db client over tokio: one TCP connection to one namespace (SELECT with its password on
//! connect), RESP2 requests of bulk strings, replies bounded by `limits` before anything is
//! allocated, and a time-out on every command. A connection that failed once is broken for good, so
//! a half-read reply is never taken for the next one.

use crate::config::BackendConfig;
use crate::limits;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// A failed exchange with a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZdbError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Io(String),
    #[error("unexpected reply: {0}")]
    Protocol(String),
    #[error("server error: {0}")]
    Server(String),
    #[error("connection unusable after an earlier error")]
    Broken,
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
}

/// One connection to one namespace.
#[derive(Debug)]
pub struct Conn {
    stream: BufStream<TcpStream>,
    broken: bool,
    /// Round trip of the PING after connecting: how fast this backend answers.
    pub rtt: Duration,
}

impl Conn {
    /// Connects, selects the namespace (with its password, if any) and measures one PING.
    pub async fn connect(backend: &BackendConfig) -> Result<Conn, ZdbError> {
        let tcp = tokio::time::timeout(
            limits::CONNECT_TIMEOUT,
            TcpStream::connect(&backend.address),
        )
        .await
        .map_err(|_| ZdbError::Timeout(limits::CONNECT_TIMEOUT))?
        .map_err(|e| ZdbError::Connect(e.to_string()))?;
        tcp.set_nodelay(true)
            .map_err(|e| ZdbError::Connect(e.to_string()))?;
        let mut conn = Conn {
            stream: BufStream::with_capacity(64 << 10, 64 << 10, tcp),
            broken: false,
            rtt: Duration::ZERO,
        };
        let mut select: Vec<&[u8]> = vec![b"SELECT", backend.namespace.as_bytes()];
        if let Some(password) = &backend.password {
            select.push(password.as_bytes());
        }
        let reply = tokio::time::timeout(limits::CONNECT_TIMEOUT, conn.exchange(&select))
            .await
            .map_err(|_| ZdbError::Timeout(limits::CONNECT_TIMEOUT))??;
        expect_ok(reply)?;
        let start = Instant::now();
        match conn.call(&[b"PING"]).await? {
            Reply::Status(s) if s == "PONG" => {}
            other => return Err(unexpected(&other)),
        }
        conn.rtt = start.elapsed();
        Ok(conn)
    }

    /// Sends one command and reads its reply, within the command time-out.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, ZdbError> {
        if self.broken {
            return Err(ZdbError::Broken);
        }
        let result = tokio::time::timeout(limits::COMMAND_TIMEOUT, self.exchange(args))
            .await
            .unwrap_or(Err(ZdbError::Timeout(limits::COMMAND_TIMEOUT)));
        match result {
            Ok(Reply::Error(e)) => Err(ZdbError::Server(e)),
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    async fn exchange(&mut self, args: &[&[u8]]) -> Result<Reply, ZdbError> {
        let io = |e: std::io::Error| ZdbError::Io(e.to_string());
        // Small parts gather in the write buffer; a large value bypasses it (tokio's BufWriter).
        let s = &mut self.stream;
        s.write_all(format!("*{}\r\n", args.len()).as_bytes())
            .await
            .map_err(io)?;
        for arg in args {
            s.write_all(format!("${}\r\n", arg.len()).as_bytes())
                .await
                .map_err(io)?;
            s.write_all(arg).await.map_err(io)?;
            s.write_all(b"\r\n").await.map_err(io)?;
        }
        s.flush().await.map_err(io)?;
        read_reply(&mut self.stream, 0).await
    }

    /// SET with an empty key in a sequential namespace: stores a new value and returns its id.
    pub async fn set_seq(&mut self, value: &[u8]) -> Result<u64, ZdbError> {
        match self.call(&[b"SET", b"", value]).await? {
            Reply::Bulk(Some(id)) if id.len() == 8 => {
                Ok(u64::from_le_bytes(id[..].try_into().expect("8 bytes")))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// SET of a user key (nil, "unchanged", counts as success).
    pub async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), ZdbError> {
        match self.call(&[b"SET", key, value]).await? {
            Reply::Bulk(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>, ZdbError> {
        match self.call(&[b"GET", key]).await? {
            Reply::Bulk(value) => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    /// GET of a sequential id.
    pub async fn get_seq(&mut self, id: u64) -> Result<Option<Bytes>, ZdbError> {
        self.get(&id.to_le_bytes()).await
    }

    /// NSINFO as `field → value`.
    pub async fn nsinfo(&mut self, namespace: &str) -> Result<BTreeMap<String, String>, ZdbError> {
        match self.call(&[b"NSINFO", namespace.as_bytes()]).await? {
            Reply::Bulk(Some(text)) => Ok(String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|line| line.split_once(": "))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// One SCAN page after `cursor`: the next cursor and the keys, or `None` past the end.
    pub async fn scan(
        &mut self,
        cursor: Option<&[u8]>,
    ) -> Result<Option<(Bytes, Vec<Bytes>)>, ZdbError> {
        let mut args: Vec<&[u8]> = vec![b"SCAN"];
        args.extend(cursor);
        let reply = match self.call(&args).await {
            Err(ZdbError::Server(e)) if e == "No more data" => return Ok(None),
            other => other?,
        };
        let Reply::Array(Some(mut parts)) = reply else {
            return Err(unexpected(&reply));
        };
        if parts.len() != 2 {
            return Err(ZdbError::Protocol(
                "SCAN reply is not [cursor, entries]".into(),
            ));
        }
        let entries = parts.pop().expect("two parts");
        let cursor = parts.pop().expect("two parts");
        let (Reply::Bulk(Some(cursor)), Reply::Array(Some(entries))) = (cursor, entries) else {
            return Err(ZdbError::Protocol(
                "SCAN reply is not [cursor, entries]".into(),
            ));
        };
        let keys = entries
            .into_iter()
            .map(|entry| match entry {
                Reply::Array(Some(mut fields)) if !fields.is_empty() => match fields.swap_remove(0)
                {
                    Reply::Bulk(Some(key)) => Ok(key),
                    other => Err(unexpected(&other)),
                },
                other => Err(unexpected(&other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Some((cursor, keys)))
    }
}

fn expect_ok(reply: Reply) -> Result<(), ZdbError> {
    match reply {
        Reply::Status(s) if s == "OK" => Ok(()),
        Reply::Error(e) => Err(ZdbError::Server(e)),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(reply: &Reply) -> ZdbError {
    let mut text = format!("{reply:?}");
    text.truncate(200);
    ZdbError::Protocol(text)
}

/// Reads one reply, refusing lengths over the limits before allocating.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    depth: usize,
) -> Result<Reply, ZdbError> {
    let line = read_line(reader).await?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| ZdbError::Protocol("empty reply line".into()))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    let number = || -> Result<i64, ZdbError> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ZdbError::Protocol(format!("bad number {:?}", text())))
    };
    match kind {
        b'+' => Ok(Reply::Status(text())),
        b'-' => Ok(Reply::Error(text())),
        b':' => Ok(Reply::Int(number()?)),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = len as usize;
            if len > limits::VALUE_BYTES_MAX {
                return Err(ZdbError::Protocol(format!(
                    "value of {len} bytes is over the limit"
                )));
            }
            // Read into spare capacity: no zeroing of a buffer about to be overwritten.
            let mut value = bytes::BytesMut::with_capacity(len + 2);
            while value.len() < len + 2 {
                let n = (&mut *reader)
                    .take((len + 2 - value.len()) as u64)
                    .read_buf(&mut value)
                    .await
                    .map_err(|e| ZdbError::Io(e.to_string()))?;
                if n == 0 {
                    return Err(ZdbError::Io("connection closed by the backend".into()));
                }
            }
            if &value[len..] != b"\r\n" {
                return Err(ZdbError::Protocol("bulk string not ended by CRLF".into()));
            }
            value.truncate(len);
            Ok(Reply::Bulk(Some(value.freeze())))
        }
        b'*' => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Array(None));
            }
            let len = len as usize;
            if len > limits::ARRAY_LEN_MAX || depth >= limits::ARRAY_DEPTH_MAX {
                return Err(ZdbError::Protocol(format!(
                    "array of {len} at depth {depth} is over the limit"
                )));
            }
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(Box::pin(read_reply(reader, depth + 1)).await?);
            }
            Ok(Reply::Array(Some(items)))
        }
        other => Err(ZdbError::Protocol(format!(
            "unknown reply type {:?}",
            *other as char
        ))),
    }
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Vec<u8>, ZdbError> {
    let mut line = Vec::new();
    let n = reader
        .take(limits::LINE_BYTES_MAX)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| ZdbError::Io(e.to_string()))?;
    if n == 0 {
        return Err(ZdbError::Io("connection closed by the backend".into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(ZdbError::Protocol(
            "reply line too long or not ended by CRLF".into(),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(input: &[u8]) -> Result<Reply, ZdbError> {
        let mut reader = tokio::io::BufReader::new(input);
        read_reply(&mut reader, 0).await
    }

    #[tokio::test]
    async fn replies() {
        assert_eq!(parse(b"+OK\r\n").await, Ok(Reply::Status("OK".into())));
        assert_eq!(
            parse(b"-No more data\r\n").await,
            Ok(Reply::Error("No more data".into()))
        );
        assert_eq!(parse(b":42\r\n").await, Ok(Reply::Int(42)));
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Bulk(None)));
        assert_eq!(
            parse(b"$3\r\nabc\r\n").await,
            Ok(Reply::Bulk(Some(Bytes::from_static(b"abc"))))
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n*1\r\n:1\r\n").await,
            Ok(Reply::Array(Some(vec![
                Reply::Bulk(Some(Bytes::from_static(b"x"))),
                Reply::Array(Some(vec![Reply::Int(1)]))
            ])))
        );
        assert!(matches!(
            parse(b"$99999999999\r\n").await,
            Err(ZdbError::Protocol(_))
        ));
        assert!(matches!(
            parse(b"*100000\r\n").await,
            Err(ZdbError::Protocol(_))
        ));
        assert!(matches!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n").await,
            Err(ZdbError::Protocol(_))
        ));
        assert!(matches!(
            parse(b"$3\r\nabcd\r\n").await,
            Err(ZdbError::Protocol(_))
        ));
        assert!(matches!(parse(b"?\r\n").await, Err(ZdbError::Protocol(_))));
        assert!(matches!(parse(b"").await, Err(ZdbError::Io(_))));
    }
}
