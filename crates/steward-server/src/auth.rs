//! API tokens: `stw_<id>_<secret>`. The id is public (it names the token in lists and the
//! audit trail); only SHA-256 of the secret is stored, and the token is shown once.
//!
//! Invariant: a token's secret never reaches a log, an error or the audit trail.

use sha2::{Digest as _, Sha256};

pub const TOKEN_PREFIX: &str = "stw_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

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

/// Whether `text` is shaped like a token id (16 lowercase hex digits), the only thing a path
/// may name a token by.
pub fn is_token_id(text: &str) -> bool {
    text.len() == 2 * ID_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a presented token into `(id, secret)`; `None` if it is not shaped like one.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_ok = |part: &str, n_bytes: usize| {
        part.len() == 2 * n_bytes && part.bytes().all(|b| b.is_ascii_hexdigit())
    };
    (hex_ok(id, ID_BYTES) && hex_ok(secret, SECRET_BYTES)).then_some((id, secret))
}

/// Compares two hex hashes in time independent of where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
