//! Namespace settings and their descriptor file `zdb-namespace`: magic, version, flags, mode,
//! maximum size, name and password, closed by a CRC32C. Written atomically (temporary file + rename).

use crate::error::{Error, Result};
use crate::format::{Mode, crc};

/// Descriptor format version.
pub const DESCRIPTOR_VERSION: u32 = 1;
const DESCRIPTOR_MAGIC: [u8; 4] = *b"ZDBN";
const FLAG_PUBLIC: u8 = 1;
const FLAG_WORM: u8 = 2;

/// Persistent properties of a namespace (lock and freeze are runtime-only and live elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub password: Option<Vec<u8>>,
    pub public: bool,
    pub worm: bool,
    /// Quota on live payload bytes; 0 means unlimited.
    pub maxsize: u64,
    pub mode: Mode,
}

impl Settings {
    /// Settings of a fresh namespace: public, no password, no quota.
    pub fn new(mode: Mode) -> Settings {
        Settings {
            password: None,
            public: true,
            worm: false,
            maxsize: 0,
            mode,
        }
    }

    pub fn encode(&self, name: &str) -> Vec<u8> {
        let password = self.password.as_deref().unwrap_or_default();
        assert!(
            name.len() <= 255 && password.len() <= 255,
            "descriptor field too long"
        );
        let mut out = Vec::with_capacity(32 + name.len() + password.len());
        out.extend_from_slice(&DESCRIPTOR_MAGIC);
        out.extend_from_slice(&DESCRIPTOR_VERSION.to_le_bytes());
        let mut flags = 0;
        if self.public {
            flags |= FLAG_PUBLIC;
        }
        if self.worm {
            flags |= FLAG_WORM;
        }
        out.push(flags);
        out.push(self.mode.to_byte());
        out.push(u8::from(self.password.is_some()));
        out.extend_from_slice(&self.maxsize.to_le_bytes());
        out.push(name.len() as u8);
        out.push(password.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(password);
        let sum = crc(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes a descriptor, returning the name it records and the settings.
    pub fn decode(bytes: &[u8]) -> Result<(String, Settings)> {
        let corrupt = || Error::Corrupt {
            what: "namespace descriptor".into(),
        };
        if bytes.len() < 25 || bytes[0..4] != DESCRIPTOR_MAGIC {
            return Err(corrupt());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 4);
        if crc(body).to_le_bytes() != sum {
            return Err(corrupt());
        }
        if u32::from_le_bytes(body[4..8].try_into().map_err(|_| corrupt())?) != DESCRIPTOR_VERSION {
            return Err(corrupt());
        }
        let flags = body[8];
        let mode = Mode::from_byte(body[9]).ok_or_else(corrupt)?;
        let has_password = body[10] == 1;
        let maxsize = u64::from_le_bytes(body[11..19].try_into().map_err(|_| corrupt())?);
        let name_len = usize::from(body[19]);
        let pass_len = usize::from(body[20]);
        if body.len() != 21 + name_len + pass_len {
            return Err(corrupt());
        }
        let name = String::from_utf8(body[21..21 + name_len].to_vec()).map_err(|_| corrupt())?;
        let password = has_password.then(|| body[21 + name_len..].to_vec());
        Ok((
            name,
            Settings {
                password,
                public: flags & FLAG_PUBLIC != 0,
                worm: flags & FLAG_WORM != 0,
                maxsize,
                mode,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_roundtrip_and_corruption() {
        let settings = Settings {
            password: Some(b"secret".to_vec()),
            public: false,
            worm: true,
            maxsize: 1 << 20,
            mode: Mode::Seq,
        };
        let mut bytes = settings.encode("ns1");
        assert_eq!(
            Settings::decode(&bytes).unwrap(),
            ("ns1".to_owned(), settings)
        );
        bytes[12] ^= 0xff;
        assert!(Settings::decode(&bytes).is_err());
        let empty = Settings::new(Mode::User);
        assert_eq!(Settings::decode(&empty.encode("")).unwrap().1, empty);
    }
}
