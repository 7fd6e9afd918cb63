//! The Ed25519 key that signs access tokens: from a PEM in the configuration, from a key
//! file (created with mode 0600 on first start), or generated for this process only.
//!
//! Only the public half leaves this module: as SPKI PEM for query-api nodes and as the
//! verifier. The private key is never logged or formatted.
use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::EncodingKey;
use web::JwtVerifier;

/// Where the signing key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The PEM given in the configuration.
    Configured,
    /// A key file that already existed.
    File(PathBuf),
    /// A key file written on this start.
    Created(PathBuf),
    /// Generated for this process; tokens do not survive a restart.
    Ephemeral,
}

/// The signing key in the forms the rest of `auth` needs.
pub struct SigningKeys {
    encoding: EncodingKey,
    public_pem: String,
    source: KeySource,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// The key from `pem` if given, else from `file` (created if missing), else a new
    /// ephemeral one (with a warning).
    pub fn load(pem: Option<&str>, file: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(pem) = pem {
            if file.is_some() {
                tracing::warn!(
                    "both a signing key PEM and a key file are configured; using the PEM"
                );
            }
            let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
                anyhow::anyhow!(
                    "the configured signing key is not a PKCS#8 PEM Ed25519 private key"
                )
            })?;
            return Self::from_key(&key, KeySource::Configured);
        }
        if let Some(path) = file {
            return Self::from_file(path);
        }
        tracing::warn!(
            "no token signing key is configured: using an ephemeral key, so access tokens will not survive a restart \
             and other nodes cannot verify them; configure a key file"
        );
        Self::from_key(
            &SigningKey::generate(&mut rand::rngs::OsRng),
            KeySource::Ephemeral,
        )
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
                    anyhow::anyhow!(
                        "{} does not hold a PKCS#8 PEM Ed25519 private key",
                        path.display()
                    )
                })?;
                Self::from_key(&key, KeySource::File(path.to_owned()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                write_new_key_file(path, &key)?;
                tracing::info!(path = %path.display(), "created a new token signing key");
                Self::from_key(&key, KeySource::Created(path.to_owned()))
            }
            Err(err) => Err(err)
                .with_context(|| format!("cannot read the signing key file {}", path.display())),
        }
    }

    fn from_key(key: &SigningKey, source: KeySource) -> anyhow::Result<Self> {
        let private = key
            .to_pkcs8_pem(LineEnding::LF)
            .context("cannot encode the signing key")?;
        let encoding = EncodingKey::from_ed_pem(private.as_bytes())
            .context("jsonwebtoken refused the signing key")?;
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .context("cannot encode the public key")?;
        Ok(Self {
            encoding,
            public_pem,
            source,
        })
    }

    /// Signs access tokens.
    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public key as SPKI PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// A verifier for tokens this key signs.
    pub fn verifier(&self) -> anyhow::Result<JwtVerifier> {
        JwtVerifier::from_public_pem(self.public_pem.as_bytes())
            .context("cannot build the token verifier")
    }
}

/// A new Ed25519 private key as PKCS#8 PEM (for `emporium` to write a key file, or tests).
pub fn generate_pem() -> anyhow::Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .context("cannot encode the signing key")?
        .to_string())
}

/// Writes `key` to a file that must not exist yet, readable by its owner only.
fn write_new_key_file(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("cannot encode the signing key")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key file {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("signing.pem");
        let first = SigningKeys::load(None, Some(&path)).unwrap();
        assert_eq!(first.source(), &KeySource::Created(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = SigningKeys::load(None, Some(&path)).unwrap();
        assert_eq!(second.source(), &KeySource::File(path.clone()));
        assert_eq!(first.public_pem(), second.public_pem());
    }

    #[test]
    fn a_configured_pem_wins_and_bad_ones_are_refused() {
        let pem = generate_pem().unwrap();
        let a = SigningKeys::load(Some(&pem), None).unwrap();
        let b = SigningKeys::load(Some(&pem), None).unwrap();
        assert_eq!(a.public_pem(), b.public_pem());
        assert!(a.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        let err = SigningKeys::load(
            Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("AAAA"), "key material is not echoed: {err}");
    }

    #[test]
    fn ephemeral_keys_differ() {
        let a = SigningKeys::load(None, None).unwrap();
        let b = SigningKeys::load(None, None).unwrap();
        assert_eq!(a.source(), &KeySource::Ephemeral);
        assert_ne!(a.public_pem(), b.public_pem());
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
