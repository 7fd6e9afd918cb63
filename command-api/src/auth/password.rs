//! Passwords: Argon2id (OWASP parameters: 7 MiB, 5 passes, 1 lane) in PHC strings.
//!
//! Hashing is slow and memory-hungry by design, so it runs on the blocking pool and at
//! most a few hashes run at once (a login flood queues instead of exhausting memory).
//! A login for an unknown account still verifies, against a dummy hash, so the answer
//! takes as long whether or not the username exists.
use std::sync::{Arc, LazyLock};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use domain::validation::Validator;
use tokio::sync::Semaphore;
use web::ApiError;

/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 8;
/// Longest password accepted, in characters (bounds the hashing work per request).
pub const MAX_LEN: usize = 128;

/// Records a field error at `field` unless `password` is [`MIN_LEN`]..=[`MAX_LEN`]
/// characters. Passwords are taken as typed: never trimmed.
pub fn check(v: &mut Validator, field: &str, password: &str) {
    let len = password.chars().count();
    v.check(
        (MIN_LEN..=MAX_LEN).contains(&len),
        field,
        format!("must be {MIN_LEN} to {MAX_LEN} characters"),
    );
}

/// A hash of a random password with the current parameters: what unknown accounts are
/// verified against.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    hash_now(&random).unwrap_or_default()
});

/// Memory of each new hash, in KiB. OWASP's Password Storage Cheat Sheet rates Argon2id
/// with 7 MiB and 5 passes as defending as well as with 19 MiB and 2 passes (the crate's
/// default); it takes about the same CPU time, and a hash in progress holds 7 MiB instead
/// of 19. With one hash per CPU at once, logins were the all-in-one process's peaks: two
/// logins added 38 MiB to its resident set for a moment.
const MEMORY_KIB: u32 = 7 * 1024;
/// Passes over that memory, for each new hash.
const PASSES: u32 = 5;

/// The hasher of new passwords. Verifying reads the parameters from the stored PHC
/// string, so hashes made with other parameters keep verifying.
fn hasher() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether `hash` was made as new hashes are (Argon2id with today's memory and passes);
/// a hash made otherwise is replaced at the next successful login. Pure.
pub fn is_current(hash: &str) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && params.m_cost() == MEMORY_KIB
        && params.t_cost() == PASSES
        && params.p_cost() == 1
}

fn hash_now(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(hasher()?.hash_password(password)?.to_string())
}

fn verify_now(password: &[u8], hash: &str) -> bool {
    Argon2::default().verify_password(password, hash).is_ok()
}

/// Hashes and verifies passwords off the async threads, a bounded number at a time.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// At most one hash per CPU at once: hashing is all CPU, so more at once finishes
    /// none sooner, and each holds Argon2's working memory. Inside a Tokio runtime, the
    /// dummy hash is computed in the background right away, so even the first failed
    /// login takes as long as any other.
    pub fn new() -> Self {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(|| LazyLock::force(&DUMMY_HASH).len());
        }
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            permits: Arc::new(Semaphore::new(cpus)),
        }
    }

    /// The PHC string (`$argon2id$v=19$…`) of `password` with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        self.blocking(move || hash_now(password.as_bytes()))
            .await?
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("password hashing failed: {err}")))
    }

    /// Whether `password` matches `hash`. With no hash (no such account) a dummy hash is
    /// verified instead, and the answer is `false`.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.blocking(move || match hash {
            Some(hash) => verify_now(password.as_bytes(), &hash),
            None => {
                let _ = verify_now(password.as_bytes(), &DUMMY_HASH);
                false
            }
        })
        .await
    }

    /// Computes the dummy hash now rather than on the first failed login.
    pub async fn warm_up(&self) -> Result<(), ApiError> {
        self.blocking(|| LazyLock::force(&DUMMY_HASH).len())
            .await
            .map(drop)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit =
            self.permits.acquire().await.map_err(|_| {
                ApiError::Internal(anyhow::anyhow!("password hashing is shut down"))
            })?;
        tokio::task::spawn_blocking(work).await.map_err(|err| {
            ApiError::Internal(anyhow::anyhow!("password hashing task failed: {err}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let passwords = Passwords::new();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("correct hors", Some(&hash)).await.unwrap());
        assert_ne!(
            hash,
            passwords.hash("correct horse").await.unwrap(),
            "a fresh salt every time"
        );
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_keep_verifying() {
        let passwords = Passwords::new();
        let old = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(passwords.verify("correct horse", Some(&old)).await.unwrap());
        assert!(!passwords.verify("correct hors", Some(&old)).await.unwrap());
        assert!(!is_current(&old), "replaced at the next login");
        assert!(is_current(&passwords.hash("correct horse").await.unwrap()));
        assert!(!is_current("not a hash"));
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let passwords = Passwords::new();
        passwords.warm_up().await.unwrap();
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
        assert!(!passwords.verify("anything", None).await.unwrap());
        assert!(
            !passwords
                .verify("anything", Some("not a phc string"))
                .await
                .unwrap()
        );
    }
}
