//! API tokens: `stw_<id>_<secret>`. The id is public (it names the token in lists and the
//! audit trail); only SHA-256 of the secret is stored, and the token is shown once.
//!
//! Invariant: a token's secret never reaches a log, an error or the audit trail.

pub use steward_core::token::{
    ID_BYTES, SECRET_BYTES, TOKEN_PREFIX, hash_secret, hashes_equal, is_token_id, parse,
};

/// A freshly made token: `text` goes to the user once, `id` and `secret_hash` are stored.
pub struct NewToken {
    pub id: String,
    pub text: String,
    pub secret_hash: String,
}

pub fn generate() -> Result<NewToken, getrandom::Error> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    Ok(NewToken {
        text: format!("{TOKEN_PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_only_the_hash_is_kept() {
        let token = generate().unwrap();
        let (id, secret) = parse(&token.text).unwrap();
        assert_eq!(id, token.id);
        assert!(hashes_equal(&hash_secret(secret), &token.secret_hash));
        assert!(!token.secret_hash.contains(secret));
        assert!(parse("stw_abc_def").is_none());
        assert!(parse(&token.text.replace("stw_", "xyz_")).is_none());
        assert!(!hashes_equal(&token.secret_hash, &hash_secret("other")));
    }
}
