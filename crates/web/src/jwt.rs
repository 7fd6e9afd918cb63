//! Access tokens: Ed25519-signed JWTs. Verifiers hold only the public key.
//!
//! `alg: none`, other algorithms, wrong keys, tampered payloads, wrong issuer or audience
//! and expired tokens are all rejected: the validation accepts exactly `EdDSA`.
//!
//! Checking an Ed25519 signature was about a tenth of the command process's CPU under
//! load, and a client sends the same token with every request; so the claims of a token
//! that passed are kept, keyed by the whole token, and taken again only while the token
//! has not expired. A token that fails is never kept. A token issued before its
//! account was locked or its password reset is refused ([`Revocations`]).
use std::{sync::Arc, time::Duration};

use domain::{account::Role, ids::AccountId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::{ApiError, revocations::Revocations};

/// Issuer and audience of every Emporium access token.
pub const ISSUER: &str = "emporium";

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The account id.
    pub sub: AccountId,
    /// The account's role.
    pub role: Role,
    /// Issuer (`emporium`).
    pub iss: String,
    /// Audience (`emporium`).
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// Tokens whose claims a verifier keeps (about half a kilobyte each).
const VERIFIED_CAPACITY: u64 = 4_096;

/// Longest a verified token is kept, whatever its expiry.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Verifies access tokens with an Ed25519 public key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    verified: moka::sync::Cache<String, AccessClaims>,
    revocations: Arc<Revocations>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for the public key in SPKI PEM form.
    pub fn from_public_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = DecodingKey::from_ed_pem(pem)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let verified = moka::sync::Cache::builder()
            .max_capacity(VERIFIED_CAPACITY)
            .time_to_live(VERIFIED_TTL)
            .build();
        Ok(Self {
            key,
            validation,
            verified,
            revocations: Arc::default(),
        })
    }

    /// The revocations this verifier honours: fill them with
    /// [`crate::revocations::follow`].
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revocations.clone()
    }

    /// The claims of a valid token, or 401.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = match self
            .verified
            .get(token)
            .filter(|claims| unexpired(claims, now, self.validation.leeway))
        {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signed(token)?;
                self.verified.insert(token.to_owned(), claims.clone());
                claims
            }
        };
        if self.revocations.refuses(&claims) {
            return Err(ApiError::Unauthorized(
                "the access token was revoked: sign in again".into(),
            ));
        }
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<AccessClaims, ApiError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let detail = match err.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "the token's algorithm is not accepted"
                    }
                    ErrorKind::InvalidSignature => "the token's signature is invalid",
                    _ => "the access token is invalid",
                };
                ApiError::Unauthorized(detail.into())
            })
    }
}

/// Whether a kept token's claims may still be used at `now` (seconds since the epoch): the
/// same rule as the validation's (`exp` no more than `leeway` seconds past).
fn unexpired(claims: &AccessClaims, now: u64, leeway: u64) -> bool {
    u64::try_from(claims.exp).is_ok_and(|exp| exp.saturating_add(leeway) >= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_expiring_at(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: AccountId::new(uuid::Uuid::nil()),
            role: Role::Customer,
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            iat: 0,
            exp,
            jti: "t".into(),
        }
    }

    #[test]
    fn kept_claims_are_used_only_until_expiry_and_leeway() {
        let claims = claims_expiring_at(1_000);
        assert!(unexpired(&claims, 990, 5));
        assert!(unexpired(&claims, 1_005, 5));
        assert!(!unexpired(&claims, 1_006, 5));
        assert!(!unexpired(&claims_expiring_at(-1), 0, 5));
    }
}
