//! Access tokens: short-lived EdDSA-signed JWTs carrying [`web::AccessClaims`].
//!
//! They are stateless: a query-api node checks them with the public key alone. The price
//! is that a token stays valid until it expires even if its account is locked meanwhile;
//! that is why they live minutes, and refresh tokens (which are checked against the
//! database) carry the long sessions.
use std::time::Duration;

use domain::{account::Role, ids::AccountId};
use jsonwebtoken::{Algorithm, Header};
use web::{AccessClaims, ApiError, jwt::ISSUER};

use super::keys::SigningKeys;

/// Issues access tokens.
#[derive(Debug)]
pub struct AccessTokens {
    keys: SigningKeys,
    ttl: Duration,
}

impl AccessTokens {
    /// Tokens signed with `keys`, valid for `ttl`.
    pub fn new(keys: SigningKeys, ttl: Duration) -> Self {
        Self { keys, ttl }
    }

    /// How long a token is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The signing key.
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The claims of a new token for `account` in `role`, issued now.
    pub fn claims(&self, account: AccountId, role: Role) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        AccessClaims {
            sub: account,
            role,
            iss: ISSUER.to_owned(),
            aud: ISSUER.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl),
            jti: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// A signed token for `account` in `role`.
    pub fn issue(&self, account: AccountId, role: Role) -> Result<String, ApiError> {
        self.sign(&self.claims(account, role))
    }

    /// Signs arbitrary claims (`EdDSA`, `typ: JWT`). Tests use it to forge expired tokens.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, self.keys.encoding()).map_err(
            |err| ApiError::Internal(anyhow::anyhow!("cannot sign an access token: {err}")),
        )
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(
            SigningKeys::load(None, None).unwrap(),
            Duration::from_secs(900),
        )
    }

    fn account() -> AccountId {
        AccountId::new(uuid::Uuid::now_v7())
    }

    fn unauthorized<T: std::fmt::Debug>(result: Result<T, ApiError>) {
        assert!(
            matches!(result, Err(ApiError::Unauthorized(_))),
            "expected 401, got {result:?}"
        );
    }

    #[test]
    fn issued_tokens_verify() {
        let tokens = tokens();
        let verifier = tokens.keys().verifier().unwrap();
        let id = account();
        let token = tokens.issue(id, Role::Staff).unwrap();
        let claims = verifier.verify(&token).unwrap();
        // The second time from the verifier's kept claims: the same answer.
        assert_eq!(verifier.verify(&token).unwrap(), claims);
        assert_eq!(
            (
                claims.sub,
                claims.role,
                claims.iss.as_str(),
                claims.aud.as_str()
            ),
            (id, Role::Staff, "emporium", "emporium")
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn forged_tokens_are_refused() {
        let tokens = tokens();
        let verifier = tokens.keys().verifier().unwrap();
        let claims = tokens.claims(account(), Role::Customer);

        // Another key.
        unauthorized(verifier.verify(&self::tokens().sign(&claims).unwrap()));
        // Expired.
        let mut expired = claims.clone();
        expired.iat -= 7200;
        expired.exp = expired.iat + 900;
        unauthorized(verifier.verify(&tokens.sign(&expired).unwrap()));
        // Wrong audience.
        let mut other = claims.clone();
        other.aud = "someone-else".into();
        unauthorized(verifier.verify(&tokens.sign(&other).unwrap()));
        // alg: none.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        unauthorized(verifier.verify(&format!("{header}.{payload}.")));
        // HS256 with a guessed secret.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        unauthorized(verifier.verify(&hs));
        // Tampered payload, original signature (the genuine token verified, and kept,
        // first).
        let genuine = tokens.sign(&claims).unwrap();
        verifier.verify(&genuine).unwrap();
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut admin = claims;
        admin.role = Role::Admin;
        let tampered = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        unauthorized(verifier.verify(&format!("{}.{tampered}.{}", parts[0], parts[2])));
    }
}
