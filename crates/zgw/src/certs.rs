//! Certificates for the host names whose TLS the gateway terminates: for route fqdn F,
//! `<certs dir>/F.crt` (PEM chain, leaf first) and `<certs dir>/F.key` (PEM private key). A farmer
//! may put real ones there; when either is missing the gateway makes a self-signed pair for F
//! (rcgen, ECDSA P-256), writes both (the key mode 0600) and uses them. There is no ACME: these
//! machines have no Internet to answer a challenge from.
//!
//! One rustls `ServerConfig` (ALPN `http/1.1`) per host name, kept across reloads while its two
//! files are unchanged.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a host name has no TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no certificate")]
    Empty { path: String },
    #[error("generating a certificate for {fqdn}: {source}")]
    Generate {
        fqdn: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the certificate of {fqdn} does not fit its key: {source}")]
    Config {
        fqdn: String,
        #[source]
        source: rustls::Error,
    },
}

/// The certificate directory and the TLS configurations built from it.
#[derive(Debug)]
pub struct Certs {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug)]
struct Cached {
    config: Arc<ServerConfig>,
    /// Modification times of the `.crt` and `.key` files the configuration was built from.
    stamp: (SystemTime, SystemTime),
}

impl Certs {
    pub fn new(dir: PathBuf) -> Certs {
        Certs {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The certificate and key files of `fqdn`.
    pub fn paths(dir: &Path, fqdn: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{fqdn}.crt")),
            dir.join(format!("{fqdn}.key")),
        )
    }

    /// The TLS configuration of `fqdn`, once [`Certs::prepare`] made it.
    pub fn get(&self, fqdn: &str) -> Option<Arc<ServerConfig>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(fqdn).map(|c| c.config.clone())
    }

    /// Makes the TLS configuration of `fqdn`: the cached one while its files are unchanged, else
    /// built from the files, which are generated first when one is missing. Blocking file IO.
    pub fn prepare(&self, fqdn: &str) -> Result<(), CertError> {
        let (crt, key) = Certs::paths(&self.dir, fqdn);
        match (crt.is_file(), key.is_file()) {
            (true, true) => {}
            (false, false) => self.generate(fqdn, &crt, &key)?,
            (has_crt, _) => {
                let (lone, missing) = if has_crt { (&crt, &key) } else { (&key, &crt) };
                tracing::warn!(
                    "replacing {} with a self-signed pair: {} is missing",
                    lone.display(),
                    missing.display()
                );
                self.generate(fqdn, &crt, &key)?;
            }
        }
        let stamp = (modified(&crt)?, modified(&key)?);
        if let Some(cached) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(fqdn)
            && cached.stamp == stamp
        {
            return Ok(());
        }
        let config = Arc::new(server_config(fqdn, &crt, &key)?);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(fqdn.to_string(), Cached { config, stamp });
        Ok(())
    }

    /// Forgets the configurations of the host names `keep` refuses.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|fqdn, _| keep(fqdn));
    }

    fn generate(&self, fqdn: &str, crt: &Path, key: &Path) -> Result<(), CertError> {
        let generate_error = |source| CertError::Generate {
            fqdn: fqdn.to_string(),
            source,
        };
        let mut params =
            rcgen::CertificateParams::new(vec![fqdn.to_string()]).map_err(generate_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, fqdn);
        let key_pair = rcgen::KeyPair::generate().map_err(generate_error)?;
        let cert = params.self_signed(&key_pair).map_err(generate_error)?;
        // The key first: a crash between the two leaves no certificate, so the pair is made anew.
        write_file(&self.dir, key, key_pair.serialize_pem().as_bytes(), 0o600)?;
        write_file(&self.dir, crt, cert.pem().as_bytes(), 0o644)?;
        tracing::info!(fqdn, path = %crt.display(), "made a self-signed certificate");
        Ok(())
    }
}

/// A rustls server configuration (ring, TLS 1.2 and 1.3, ALPN http/1.1) from PEM files.
fn server_config(fqdn: &str, crt: &Path, key: &Path) -> Result<ServerConfig, CertError> {
    let read_error = |path: &Path, e: rustls::pki_types::pem::Error| CertError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(crt)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(crt, e))?;
    if chain.is_empty() {
        return Err(CertError::Empty {
            path: crt.display().to_string(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_error(key, e))?;
    let config_error = |source| CertError::Config {
        fqdn: fqdn.to_string(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn modified(path: &Path) -> Result<SystemTime, CertError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| CertError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Writes `path` whole or not at all: a temporary file of `mode` renamed into place.
fn write_file(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let write_error = |source| CertError::Write {
        path: path.display().to_string(),
        source,
    };
    let name = path.file_name().expect("a certificate path names a file");
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(write_error)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    std::fs::rename(&tmp, path).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certs::new(dir.path().to_path_buf());
        assert!(certs.get("web.example.com").is_none());
        certs.prepare("web.example.com").unwrap();
        let first = certs.get("web.example.com").unwrap();
        let (crt, key) = Certs::paths(dir.path(), "web.example.com");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pem = std::fs::read(&crt).unwrap();
        certs.prepare("web.example.com").unwrap();
        assert_eq!(std::fs::read(&crt).unwrap(), pem, "not generated again");
        assert!(Arc::ptr_eq(&first, &certs.get("web.example.com").unwrap()));
        certs.retain(|fqdn| fqdn != "web.example.com");
        assert!(certs.get("web.example.com").is_none());
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certs::new(dir.path().to_path_buf());
        let (crt, key) = Certs::paths(dir.path(), "bad.example.com");
        std::fs::write(&crt, "no pem here").unwrap();
        std::fs::write(&key, "no pem here").unwrap();
        let err = certs.prepare("bad.example.com").unwrap_err().to_string();
        assert!(
            err.contains("bad.example.com.crt holds no certificate"),
            "{err}"
        );
        assert!(certs.get("bad.example.com").is_none());
    }
}
