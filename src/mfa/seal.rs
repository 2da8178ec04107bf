//! Device secrets at rest: ChaCha20-Poly1305 under a 32-byte key kept in
//! `<state_dir>/mfa.key` (mode 0600, created on first start).
//!
//! A sealed value is `nonce (12) || ciphertext || tag (16)`; the nonce is random per seal and
//! the device id is the associated data, so a sealed secret copied to another row does not
//! open.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The key file's name under the state directory.
pub const KEY_FILE: &str = "mfa.key";
/// Octets of the key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The sealing key. `Debug` does not show it.
#[derive(Clone)]
pub struct SealKey([u8; KEY_LEN]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(****)")
    }
}

/// Why a value could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The OS random number generator failed.
    #[error("random number generator: {0}")]
    Random(getrandom::Error),
    /// Encryption failed (it does not for inputs of sane length).
    #[error("encryption failed")]
    Encrypt,
}

impl SealKey {
    /// Reads `state_dir/mfa.key`, or creates it (mode 0600, 32 random octets) when missing.
    pub fn load_or_create(state_dir: &Path) -> io::Result<SealKey> {
        let path = state_dir.join(KEY_FILE);
        match std::fs::File::open(&path) {
            Ok(mut file) => {
                let mut key = [0u8; KEY_LEN];
                let mut extra = [0u8; 1];
                file.read_exact(&mut key)?;
                if file.read(&mut extra)? != 0 {
                    return Err(io::Error::other(format!(
                        "{}: longer than {KEY_LEN} octets",
                        path.display()
                    )));
                }
                Ok(SealKey(key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = SealKey::random().map_err(|e| io::Error::other(e.to_string()))?;
                // create_new: two daemons starting at once cannot both write a key.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(&key.0)?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "created the MFA sealing key");
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// A fingerprint of the key (SHA-256 of a label and the key, first 16 octets, in hex):
    /// nodes that share one state database compare it, so a node with another key, which
    /// could open none of the devices the others paired, refuses to start. It does not reveal
    /// the key.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"portcullis mfa.key fingerprint\0")
            .chain_update(self.0)
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A random key, for tests and in-memory state.
    pub fn random() -> Result<SealKey, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        Ok(SealKey(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `plaintext` bound to `context` (the device id).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(SealError::Random)?;
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a sealed value; `None` when it was not sealed under this key and `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let key = SealKey::random().unwrap();
        let sealed = key.seal(b"device-1", b"secret bytes").unwrap();
        assert_eq!(sealed.len(), 12 + 12 + 16);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(b"device-1", &sealed).unwrap(), b"secret bytes");
        assert!(key.open(b"device-2", &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(key.open(b"device-1", &flipped).is_none());
        assert!(key.open(b"device-1", &sealed[..5]).is_none());
        let other = SealKey::random().unwrap();
        assert!(other.open(b"device-1", &sealed).is_none());
        assert_eq!(format!("{key:?}"), "SealKey(****)");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        let again = SealKey::load_or_create(dir.path()).unwrap();
        let sealed = key.seal(b"d", b"x").unwrap();
        assert_eq!(again.open(b"d", &sealed).unwrap(), b"x");
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(SealKey::load_or_create(dir.path()).is_err());
    }
}
