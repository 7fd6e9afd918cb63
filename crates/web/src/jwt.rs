//! Access tokens: Ed25519-signed JWTs. Verifiers hold only the public key.
//!
//! `alg: none`, other algorithms, wrong keys, tampered payloads, wrong issuer or audience
//! and expired tokens are all rejected: the validation accepts exactly `EdDSA`.
use domain::{account::Role, ids::AccountId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::ApiError;

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

/// Verifies access tokens with an Ed25519 public key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
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
        Ok(Self { key, validation })
    }

    /// The claims of a valid token, or 401.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
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
