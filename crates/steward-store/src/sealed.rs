//! The at-rest encryption format of sealed blobs (P5): a blob's bytes cut into 64 KiB
//! segments, each sealed with AES-256-GCM under the blob's own data key.
//!
//! Nonces follow the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015, as in
//! age and Tink's streaming AEAD): an 11-byte big-endian segment counter and a final byte that
//! is 1 on the last segment only. A data key seals exactly one blob, so counter nonces never
//! repeat under a key. The associated data names the blob (`steward-sealed-v1:` and its
//! plaintext digest), so a sealed file moved under another blob's name does not open.
//! Reordering, dropping or appending segments, and cutting the last one off, all fail the
//! authentication tag of some segment.
//!
//! Layout: `seal(segment 0) || seal(segment 1) || … || seal(last)`. Every segment but the
//! last holds exactly [`SEGMENT_BYTES`] of plaintext; the last holds the rest (possibly
//! none, so even an empty blob has one segment). Each sealed segment is its plaintext length
//! plus a [`TAG_BYTES`] tag.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// Plaintext bytes per segment.
pub const SEGMENT_BYTES: usize = 64 * 1024;
/// The AES-GCM tag at the end of each sealed segment.
pub const TAG_BYTES: usize = 16;
/// The name recorded with each sealed blob.
pub const ALGORITHM: &str = "AES-256-GCM-STREAM-64KiB";
/// Data key length: AES-256.
pub const DATA_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "sealed segment {segment} failed authentication: the ciphertext was changed, cut, reordered or sealed under another key"
    )]
    Inauthentic { segment: u64 },
    #[error("sealed blob has {actual} bytes, which no sealed blob can have")]
    BadLength { actual: u64 },
    #[error("a data key has {actual} bytes, not {DATA_KEY_BYTES}")]
    BadKey { actual: usize },
    #[error("no randomness for a data key: {0}")]
    Random(String),
}

/// A blob's data key. Its bytes are wiped when it is dropped.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_BYTES]>);

impl DataKey {
    /// A fresh random key, from the operating system.
    pub fn generate() -> Result<DataKey, SealError> {
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|err| SealError::Random(err.to_string()))?;
        Ok(DataKey(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey, SealError> {
        let array: [u8; DATA_KEY_BYTES] = bytes.try_into().map_err(|_| SealError::BadKey {
            actual: bytes.len(),
        })?;
        Ok(DataKey(Zeroizing::new(array)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.0).into())
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

fn nonce(counter: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut bytes = [0u8; 12];
    bytes[3..11].copy_from_slice(&counter.to_be_bytes());
    bytes[11] = u8::from(last);
    bytes.into()
}

/// The associated data that binds a sealed blob to its plaintext digest.
pub fn associated_data(plaintext_digest: &str) -> Vec<u8> {
    format!("steward-sealed-v1:{plaintext_digest}").into_bytes()
}

/// The sealed size of `plaintext` bytes.
pub fn sealed_size(plaintext: u64) -> u64 {
    let segments = plaintext.div_ceil(SEGMENT_BYTES as u64).max(1);
    plaintext + segments * TAG_BYTES as u64
}

/// The sealed size of each segment of a sealed blob of `sealed` bytes, in order.
/// Fails when no plaintext seals to that size.
pub fn segment_sizes(sealed: u64) -> Result<(u64, usize), SealError> {
    let full = (SEGMENT_BYTES + TAG_BYTES) as u64;
    if sealed < TAG_BYTES as u64 {
        return Err(SealError::BadLength { actual: sealed });
    }
    let segments = sealed.div_ceil(full);
    let last = sealed - (segments - 1) * full;
    if last < TAG_BYTES as u64 {
        return Err(SealError::BadLength { actual: sealed });
    }
    Ok((segments, last as usize))
}

/// Seals a blob's segments in order.
pub struct Sealer {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u64,
}

impl Sealer {
    pub fn new(key: &DataKey, plaintext_digest: &str) -> Sealer {
        Sealer {
            cipher: key.cipher(),
            aad: associated_data(plaintext_digest),
            counter: 0,
        }
    }

    /// Seals the next segment in place (the tag is appended). Every segment but the last must
    /// hold exactly `SEGMENT_BYTES`.
    pub fn seal(&mut self, segment: &mut Vec<u8>, last: bool) {
        debug_assert!(segment.len() == SEGMENT_BYTES || (last && segment.len() <= SEGMENT_BYTES));
        // AES-GCM refuses only messages over 64 GiB; a segment is 64 KiB.
        self.cipher
            .encrypt_in_place(&nonce(self.counter, last), &self.aad, segment)
            .expect("a 64 KiB segment is within AES-GCM's message limit");
        self.counter += 1;
    }
}

/// Opens a blob's sealed segments in order.
pub struct Opener {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u64,
}

impl Opener {
    pub fn new(key: &DataKey, plaintext_digest: &str) -> Opener {
        Opener {
            cipher: key.cipher(),
            aad: associated_data(plaintext_digest),
            counter: 0,
        }
    }

    /// Opens the next sealed segment in place (the tag is removed).
    pub fn open(&mut self, segment: &mut Vec<u8>, last: bool) -> Result<(), SealError> {
        let counter = self.counter;
        self.cipher
            .decrypt_in_place(&nonce(counter, last), &self.aad, segment)
            .map_err(|_| SealError::Inauthentic { segment: counter })?;
        self.counter += 1;
        Ok(())
    }
}

/// Seals a whole blob held in memory (tests, small blobs).
pub fn seal_all(key: &DataKey, plaintext_digest: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut sealer = Sealer::new(key, plaintext_digest);
    let mut out = Vec::with_capacity(sealed_size(plaintext.len() as u64) as usize);
    let mut chunks = plaintext.chunks(SEGMENT_BYTES).peekable();
    if chunks.peek().is_none() {
        let mut segment = Vec::new();
        sealer.seal(&mut segment, true);
        out.extend_from_slice(&segment);
    }
    while let Some(chunk) = chunks.next() {
        let mut segment = chunk.to_vec();
        sealer.seal(&mut segment, chunks.peek().is_none());
        out.extend_from_slice(&segment);
    }
    out
}

/// Opens a whole sealed blob held in memory.
pub fn open_all(
    key: &DataKey,
    plaintext_digest: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    let (segments, _) = segment_sizes(sealed.len() as u64)?;
    let mut opener = Opener::new(key, plaintext_digest);
    let mut out = Vec::with_capacity(sealed.len());
    for (index, chunk) in sealed.chunks(SEGMENT_BYTES + TAG_BYTES).enumerate() {
        let mut segment = chunk.to_vec();
        opener.open(&mut segment, index as u64 + 1 == segments)?;
        out.extend_from_slice(&segment);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn every_size_round_trips_and_has_the_predicted_length() {
        let seg = SEGMENT_BYTES;
        for size in [0, 1, seg - 1, seg, seg + 1, 2 * seg, 3 * seg + 17] {
            let plaintext: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = seal_all(&key(7), DIGEST, &plaintext);
            assert_eq!(sealed.len() as u64, sealed_size(size as u64), "size {size}");
            if size > 0 {
                assert_ne!(&sealed[..size.min(64)], &plaintext[..size.min(64)]);
            }
            assert_eq!(
                open_all(&key(7), DIGEST, &sealed).unwrap(),
                plaintext,
                "size {size}"
            );
        }
    }

    #[test]
    fn any_changed_byte_fails_the_tag() {
        let plaintext = vec![42u8; SEGMENT_BYTES + 100];
        let sealed = seal_all(&key(1), DIGEST, &plaintext);
        for at in [
            0,
            17,
            SEGMENT_BYTES + TAG_BYTES - 1,
            SEGMENT_BYTES + TAG_BYTES + 5,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let err = open_all(&key(1), DIGEST, &bad).unwrap_err();
            assert!(
                matches!(err, SealError::Inauthentic { .. }),
                "byte {at}: {err}"
            );
        }
    }

    #[test]
    fn cut_reordered_moved_or_rekeyed_blobs_do_not_open() {
        let plaintext: Vec<u8> = (0..3 * SEGMENT_BYTES).map(|i| i as u8).collect();
        let sealed = seal_all(&key(1), DIGEST, &plaintext);
        let full = SEGMENT_BYTES + TAG_BYTES;
        // The last segment dropped: the new last one was not sealed as last.
        assert_eq!(
            open_all(&key(1), DIGEST, &sealed[..2 * full]).unwrap_err(),
            SealError::Inauthentic { segment: 1 }
        );
        // Two segments swapped.
        let mut swapped = sealed[full..2 * full].to_vec();
        swapped.extend_from_slice(&sealed[..full]);
        swapped.extend_from_slice(&sealed[2 * full..]);
        assert_eq!(
            open_all(&key(1), DIGEST, &swapped).unwrap_err(),
            SealError::Inauthentic { segment: 0 }
        );
        // A segment appended after the last.
        let mut longer = sealed.clone();
        longer.extend_from_slice(&sealed[..full]);
        assert!(open_all(&key(1), DIGEST, &longer).is_err());
        // Under another blob's name, or another key.
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert!(open_all(&key(1), other, &sealed).is_err());
        assert!(open_all(&key(2), DIGEST, &sealed).is_err());
        // Lengths no sealing produces.
        assert_eq!(
            open_all(&key(1), DIGEST, &sealed[..10]).unwrap_err(),
            SealError::BadLength { actual: 10 }
        );
        assert!(segment_sizes(full as u64 + 3).is_err());
    }

    #[test]
    fn nonces_are_counter_and_last_flag() {
        let n = nonce(0x0102, true);
        assert_eq!(n.as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_ne!(nonce(5, false), nonce(5, true));
    }

    #[test]
    fn data_keys_are_random_and_never_printed() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(format!("{a:?}"), "DataKey(…)");
        assert_eq!(
            DataKey::from_bytes(&[0; 16]).unwrap_err(),
            SealError::BadKey { actual: 16 }
        );
    }
}
