//! Random tokens, hashes, and sealing (AES-256-GCM) of secrets kept at rest.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A random token of 32 bytes, base64url (authorization codes, refresh tokens, ids).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

#[expect(
    clippy::expect_used,
    reason = "without the system's random source no secret can be made; nothing to fall back to"
)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// sha256, hex: how codes, refresh tokens and client secrets are stored. They are
/// 256-bit random values, so a slow password hash would add nothing.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Comparison that leaks nothing useful through timing: it compares digests, whose
/// common prefix says nothing about the inputs'.
pub fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Encrypts values at rest and derives per-purpose MAC keys from one master key.
pub struct Sealer {
    key: LessSafeKey,
    mac: hmac::Key,
}

impl Sealer {
    #[expect(
        clippy::expect_used,
        reason = "the type guarantees a 32-byte AES-256 key"
    )]
    pub fn new(master: &[u8; 32]) -> Sealer {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master).expect("32-byte key"));
        // A separate key for MACs, derived so one secret configures both.
        let derive = hmac::Key::new(hmac::HMAC_SHA256, master);
        let mac_key = hmac::sign(&derive, b"authhost mac key v1");
        Sealer {
            key,
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_ref()),
        }
    }

    /// The master key from `AUTHHOST_ENCRYPTION_KEY` (base64 of 32 bytes), else from
    /// `file`, created with a fresh key on first start. Instances that share a database
    /// must share this key.
    pub fn load_or_create(file: &Path) -> anyhow::Result<Sealer> {
        let encoded = match std::env::var("AUTHHOST_ENCRYPTION_KEY") {
            Ok(value) => value,
            Err(_) if file.exists() => std::fs::read_to_string(file)?,
            Err(_) => {
                let encoded = STANDARD.encode(random_bytes::<32>());
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(file, &encoded)?;
                tracing::info!(file = %file.display(), "created a new encryption key");
                encoded
            }
        };
        let bytes = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the encryption key (AUTHHOST_ENCRYPTION_KEY or {}) must be base64 of 32 bytes",
                    file.display()
                )
            })?;
        Ok(Sealer::new(&bytes))
    }

    #[expect(
        clippy::expect_used,
        reason = "AES-GCM sealing fails only for inputs beyond 64 GiB"
    )]
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::empty(),
                &mut buffer,
            )
            .expect("sealing cannot fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = STANDARD.decode(sealed)?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "sealed value too short");
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut buffer)
            .map_err(|_| {
                anyhow::anyhow!("cannot decrypt: wrong encryption key or corrupted value")
            })?;
        Ok(plain.to_vec())
    }

    /// A MAC of `value` for `purpose`, base64url.
    pub fn mac(&self, purpose: &str, value: &str) -> String {
        let tag = hmac::sign(&self.mac, format!("{purpose}\0{value}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"upstream refresh token");
        assert_eq!(sealer.open(&sealed).unwrap(), b"upstream refresh token");
        assert!(Sealer::new(&[8; 32]).open(&sealed).is_err());
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&STANDARD.encode(bytes)).is_err());
        assert_eq!(sealer.mac("csrf", "a"), sealer.mac("csrf", "a"));
        assert_ne!(sealer.mac("csrf", "a"), sealer.mac("other", "a"));
    }
}
