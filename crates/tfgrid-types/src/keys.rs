//! Account keys: ed25519 key pairs, their SS58 addresses (prefix 42, as on TFChain), signatures, single
//! and batch verification (ZIP-215 rules, as Substrate verifies), and Substrate-compatible derivation
//! of keys from BIP39 phrases and dev URIs such as `//Alice`.

use blake2::{Blake2b512, Digest, digest::consts::U32};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes, batch};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The SS58 address format of TFChain (the generic Substrate prefix).
pub const SS58_PREFIX: u8 = 42;

/// The phrase behind Substrate's well-known development accounts (`//Alice`, `//Bob`, ...).
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{0:?} is not an address (an SS58 address like 5F... or 0x and 64 hex digits)")]
    BadAddress(String),
    #[error("the secret phrase is not a valid BIP39 English mnemonic: {0}")]
    BadPhrase(String),
    #[error(
        "soft derivation {0:?} is not possible with ed25519 keys: use a hard junction like //name"
    )]
    SoftDerivation(String),
    #[error("a secret seed must be 0x and 64 hex digits")]
    BadSeed,
    #[error("sealing failed")]
    Seal,
}

/// An account on the ledger: the 32 bytes of an ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// The SS58 address of this account.
    pub fn to_ss58(&self) -> String {
        let mut data = Vec::with_capacity(35);
        data.push(SS58_PREFIX);
        data.extend_from_slice(&self.0);
        let checksum = ss58_checksum(&data);
        data.extend_from_slice(&checksum);
        bs58::encode(data).into_string()
    }
}

fn ss58_checksum(data: &[u8]) -> [u8; 2] {
    let mut hasher = Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(data);
    let out = hasher.finalize();
    [out[0], out[1]]
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl FromStr for AccountId {
    type Err = KeyError;
    /// Parses an SS58 address with prefix 42, or `0x` and the 64 hex digits of a public key.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::BadAddress(s.to_owned());
        if let Some(digits) = s.strip_prefix("0x") {
            let mut out = [0u8; 32];
            hex::decode_to_slice(digits, &mut out).map_err(|_| bad())?;
            return Ok(AccountId(out));
        }
        let data = bs58::decode(s).into_vec().map_err(|_| bad())?;
        if data.len() != 35 || data[0] != SS58_PREFIX || ss58_checksum(&data[..33]) != data[33..] {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&data[1..33]);
        Ok(AccountId(out))
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(text.strip_prefix("0x").unwrap_or(&text), &mut out)
            .map_err(|_| serde::de::Error::custom("a signature is 0x and 128 hex digits"))?;
        Ok(Signature(out))
    }
}

/// Checks one signature of `message` by `account`.
pub fn verify(account: &AccountId, message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerificationKey::try_from(account.0) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
        .is_ok()
}

/// Checks many signatures at once, about twice as fast as one by one. On failure it returns the
/// positions of the bad ones (found one by one, so the answer is exact).
pub fn verify_batch<R: RngCore + CryptoRng>(
    items: &[(AccountId, &[u8], Signature)],
    rng: R,
) -> Result<(), Vec<usize>> {
    let mut verifier = batch::Verifier::new();
    for (account, message, signature) in items {
        let sig = ed25519_zebra::Signature::from_bytes(&signature.0);
        verifier.queue((VerificationKeyBytes::from(account.0), sig, message));
    }
    if verifier.verify(rng).is_ok() {
        return Ok(());
    }
    let bad: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (account, message, signature))| !verify(account, message, signature))
        .map(|(i, _)| i)
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// An ed25519 key pair, kept as its 32-byte secret seed.
#[derive(Clone)]
pub struct Keypair {
    seed: [u8; 32],
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.account())
    }
}

impl Keypair {
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            seed,
            signing: SigningKey::from(seed),
        }
    }

    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Keypair {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Keypair::from_seed(seed)
    }

    /// A new random 12-word BIP39 phrase.
    pub fn generate_phrase<R: RngCore + CryptoRng>(rng: &mut R) -> String {
        let mut entropy = [0u8; 16];
        rng.fill_bytes(&mut entropy);
        bip39::Mnemonic::from_entropy(&entropy)
            .expect("16 bytes is a valid entropy length")
            .to_string()
    }

    /// The key of a secret URI as Substrate reads it for ed25519: a BIP39 phrase (the dev phrase when
    /// omitted), optional hard junctions `//name`, and an optional `///password`; or a `0x` seed.
    pub fn from_uri(uri: &str) -> Result<Keypair, KeyError> {
        let uri = uri.trim();
        let (rest, password) = match uri.split_once("///") {
            Some((rest, password)) => (rest, password),
            None => (uri, ""),
        };
        let (phrase, path) = match rest.find('/') {
            Some(at) => (rest[..at].trim(), &rest[at..]),
            None => (rest.trim(), ""),
        };
        let mut seed = if let Some(hex_seed) = phrase.strip_prefix("0x") {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(hex_seed, &mut seed).map_err(|_| KeyError::BadSeed)?;
            seed
        } else {
            let phrase = if phrase.is_empty() {
                DEV_PHRASE
            } else {
                phrase
            };
            seed_from_phrase(phrase, password)?
        };
        for junction in path.split("//").skip(1) {
            if junction.contains('/') || junction.is_empty() {
                return Err(KeyError::SoftDerivation(junction.to_owned()));
            }
            seed = derive_hard(&seed, junction);
        }
        if path.starts_with('/') && !path.starts_with("//") {
            return Err(KeyError::SoftDerivation(path.to_owned()));
        }
        Ok(Keypair::from_seed(seed))
    }

    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    pub fn account(&self) -> AccountId {
        AccountId(VerificationKey::from(&self.signing).into())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

/// Seals `plain` so that only the holder of `account`'s key can open it: libsodium's sealed box
/// (X25519 and XSalsa20-Poly1305) to the X25519 form of the account's ed25519 key.
pub fn seal<R: RngCore + CryptoRng>(
    account: &AccountId,
    plain: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, KeyError> {
    let point = curve25519_dalek::edwards::CompressedEdwardsY(account.0)
        .decompress()
        .ok_or_else(|| KeyError::BadAddress(account.to_string()))?;
    let public = crypto_box::PublicKey::from(point.to_montgomery().to_bytes());
    public.seal(rng, plain).map_err(|_| KeyError::Seal)
}

impl Keypair {
    /// Opens a box sealed to this key with [`seal`]; `None` if it was not, or was altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        use sha2::Digest as _;
        // The X25519 secret of an ed25519 key: the clamped first half of SHA-512 of its seed.
        let hash = sha2::Sha512::digest(self.seed);
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&hash[..32]);
        crypto_box::SecretKey::from(scalar).unseal(sealed).ok()
    }
}

/// Substrate's ed25519 seed of a phrase: the first half of the BIP39 seed of the phrase's entropy.
fn seed_from_phrase(phrase: &str, password: &str) -> Result<[u8; 32], KeyError> {
    let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase)
        .map_err(|e| KeyError::BadPhrase(e.to_string()))?;
    let full = substrate_bip39::seed_from_entropy(&mnemonic.to_entropy(), password)
        .map_err(|e| KeyError::BadPhrase(format!("{e:?}")))?;
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&full[..32]);
    Ok(seed)
}

/// Substrate's ed25519 hard derivation: blake2b-256 over the SCALE encoding of
/// `("Ed25519HDKD", seed, chain_code)`.
fn derive_hard(seed: &[u8; 32], junction: &str) -> [u8; 32] {
    let mut hasher = blake2::Blake2b::<U32>::new();
    hasher.update([11 << 2]); // SCALE compact length of the 11-byte tag
    hasher.update(b"Ed25519HDKD");
    hasher.update(seed);
    hasher.update(chain_code(junction));
    hasher.finalize().into()
}

/// The chain code of a junction: a number as its little-endian u64, otherwise the SCALE encoding of
/// the string, hashed with blake2b-256 when longer than 32 bytes.
fn chain_code(junction: &str) -> [u8; 32] {
    let mut code = [0u8; 32];
    if let Ok(n) = junction.parse::<u64>() {
        code[..8].copy_from_slice(&n.to_le_bytes());
        return code;
    }
    let mut encoded = scale_compact_len(junction.len());
    encoded.extend_from_slice(junction.as_bytes());
    if encoded.len() > 32 {
        let mut hasher = blake2::Blake2b::<U32>::new();
        hasher.update(&encoded);
        code = hasher.finalize().into();
    } else {
        code[..encoded.len()].copy_from_slice(&encoded);
    }
    code
}

fn scale_compact_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x3f => vec![(len as u8) << 2],
        0x40..=0x3fff => ((len as u16) << 2 | 1).to_le_bytes().to_vec(),
        _ => ((len as u32) << 2 | 2).to_le_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_match_substrate() {
        // The ed25519 dev accounts that Substrate's `subkey inspect --scheme ed25519 //Alice` prints.
        let alice = Keypair::from_uri("//Alice").unwrap();
        assert_eq!(
            alice.account().to_string(),
            "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"
        );
        let bob = Keypair::from_uri("//Bob").unwrap();
        assert_eq!(
            bob.account().to_string(),
            "5GoNkf6WdbxCFnPdAnYYQyCjAKPJgLNxXwPjwTh6DGg6gN3E"
        );
    }

    #[test]
    fn addresses_round_trip_and_reject_typos() {
        let account = Keypair::from_uri("//Charlie").unwrap().account();
        let text = account.to_string();
        assert_eq!(text.parse::<AccountId>().unwrap(), account);
        let hex_form = format!("0x{}", hex::encode(account.0));
        assert_eq!(hex_form.parse::<AccountId>().unwrap(), account);
        let mut typo = text.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(
            String::from_utf8(typo)
                .unwrap()
                .parse::<AccountId>()
                .is_err()
        );
        assert!("hello".parse::<AccountId>().is_err());
    }

    #[test]
    fn uris_and_phrases() {
        let phrase = Keypair::generate_phrase(&mut rand::thread_rng());
        assert_eq!(phrase.split(' ').count(), 12);
        let a = Keypair::from_uri(&phrase).unwrap();
        let b = Keypair::from_uri(&format!("{phrase}//0")).unwrap();
        assert_ne!(a.account(), b.account());
        assert_eq!(
            Keypair::from_uri(&format!("0x{}", hex::encode(a.seed())))
                .unwrap()
                .account(),
            a.account()
        );
        assert!(matches!(
            Keypair::from_uri("not a phrase"),
            Err(KeyError::BadPhrase(_))
        ));
        assert!(matches!(
            Keypair::from_uri("//Alice/soft"),
            Err(KeyError::SoftDerivation(_))
        ));
    }

    #[test]
    fn sealed_boxes_open_only_for_their_key() {
        let node = Keypair::from_uri("//node1").unwrap();
        let other = Keypair::from_uri("//node2").unwrap();
        let sealed = seal(&node.account(), b"secret password", &mut rand::thread_rng()).unwrap();
        assert_eq!(node.open(&sealed).as_deref(), Some(&b"secret password"[..]));
        assert_eq!(other.open(&sealed), None);
        let mut tampered = sealed.clone();
        tampered[40] ^= 1;
        assert_eq!(node.open(&tampered), None);
    }

    #[test]
    fn signatures_single_and_batch() {
        let keys: Vec<Keypair> = (0..8)
            .map(|i| Keypair::from_uri(&format!("//user{i}")).unwrap())
            .collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 40]).collect();
        let mut items: Vec<(AccountId, &[u8], Signature)> = keys
            .iter()
            .zip(&messages)
            .map(|(k, m)| (k.account(), m.as_slice(), k.sign(m)))
            .collect();
        assert!(items.iter().all(|(a, m, s)| verify(a, m, s)));
        assert_eq!(verify_batch(&items, rand::thread_rng()), Ok(()));
        items[3].2 = keys[0].sign(b"something else");
        items[6].1 = b"tampered";
        assert_eq!(verify_batch(&items, rand::thread_rng()), Err(vec![3, 6]));
    }
}
