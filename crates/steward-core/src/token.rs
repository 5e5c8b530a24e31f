//! API tokens: `stw_<id>_<secret>`. The id is public (it names the token in lists and the
//! audit trail); only SHA-256 of the secret is stored. Parsing and checking live here so
//! that the control plane and the data plane (version pinning) read tokens the same way;
//! making them (randomness) is the server's.
//!
//! Invariant: a token's secret never reaches a log, an error or the audit trail.

use sha2::{Digest as _, Sha256};

pub const TOKEN_PREFIX: &str = "stw_";
pub const ID_BYTES: usize = 8;
pub const SECRET_BYTES: usize = 32;

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
    fn tokens_parse_and_hashes_compare() {
        let text = format!(
            "stw_{}_{}",
            "0a".repeat(ID_BYTES),
            "1b".repeat(SECRET_BYTES)
        );
        let (id, secret) = parse(&text).unwrap();
        assert_eq!(id, "0a".repeat(ID_BYTES));
        assert!(hashes_equal(
            &hash_secret(secret),
            &hash_secret(&"1b".repeat(SECRET_BYTES))
        ));
        assert!(!hashes_equal(&hash_secret(secret), &hash_secret("other")));
        assert!(parse("stw_abc_def").is_none());
        assert!(parse(&text.replace("stw_", "xyz_")).is_none());
        assert!(is_token_id(&"0a".repeat(ID_BYTES)));
        assert!(!is_token_id("0A0A0A0A0A0A0A0A"));
    }
}
