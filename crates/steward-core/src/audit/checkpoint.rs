//! Signed checkpoints of the audit log: C2SP tlog-checkpoint bodies, C2SP
//! signed-note Ed25519 signatures (wire-compatible with Go's
//! `golang.org/x/mod/sumdb/note`), and C2SP tlog-proof inclusion proof files.
//!
//! Invariants:
//! - parsing is strict and serialising is canonical, so for every text these
//!   parsers accept, serialising the result gives back the same bytes: a
//!   checkpoint, key or proof file has exactly one accepted spelling;
//! - [`open_note`] returns a body only if at least one signature from a known
//!   key verifies, no signature from a known key fails, and every signature
//!   line is well formed; signatures from unknown keys are kept, unverified;
//! - everything a signer here produces opens and parses again: signing
//!   rejects bodies and checkpoints that could not be read back;
//! - notes are bounded ([`NOTE_BYTES_MAX`], [`NOTE_SIGNATURES_MAX`]) so that
//!   opening one costs bounded memory and signature checks;
//! - the private key appears only in the signer key text (`Display` of
//!   [`NoteSigner`]), never in `Debug` output or error messages.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::{self, Hash, ProofError};

/// Largest note [`open_note`] reads: 256 KiB.
///
/// A checkpoint body is about 100 bytes and an Ed25519 signature line about
/// 100 more, but C2SP signed-note asks verifiers to accept at least 16
/// signatures of any type, and a post-quantum cosignature line can be near
/// 7 KiB once base64-encoded; 256 KiB covers that more than twice over while
/// keeping a hostile note cheap to reject.
pub const NOTE_BYTES_MAX: usize = 256 * 1024;

/// Most signature lines [`open_note`] accepts, like Go's `note.Open`; C2SP
/// signed-note requires at least 16.
pub const NOTE_SIGNATURES_MAX: usize = 100;

/// Largest tlog-proof file [`InclusionProofFile::parse`] reads: a full note
/// plus 16 KiB for the header, up to 64 proof hashes and the extra data.
pub const PROOF_FILE_BYTES_MAX: usize = NOTE_BYTES_MAX + 16 * 1024;

/// Most hashes an inclusion proof can have: one per level of a tree of up to
/// `u64::MAX` leaves.
pub const PROOF_HASHES_MAX: usize = 64;

/// Signature type byte of Ed25519 in C2SP signed-note.
const ALGORITHM_ED25519: u8 = 0x01;
/// What starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// What starts a signer key's text, as in Go's `note.NewSigner`.
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";
/// First line of a C2SP tlog-proof file.
const PROOF_FILE_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// How much of an offending input line an error message quotes.
const EXCERPT_CHARS: usize = 64;

/// A log's signed statement of its tree: the body of a C2SP tlog-checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `example.com/log`; non-empty, one line.
    pub origin: String,
    /// How many leaves the tree has.
    pub size: u64,
    /// The RFC 9162 root of the tree of `size` leaves.
    pub root: Hash,
    /// Opaque, non-empty extra lines; C2SP discourages them.
    pub extensions: Vec<String>,
}

/// Why a checkpoint body is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint contains control character U+{code:04X} at byte {offset}")]
    ControlCharacter { offset: usize, code: u32 },
    #[error("checkpoint does not end with a newline")]
    MissingFinalNewline,
    #[error("checkpoint has {lines} lines, expected at least origin, size and root")]
    TooFewLines { lines: usize },
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    #[error("checkpoint size `{0}` is not a decimal number without leading zeros")]
    InvalidSize(String),
    #[error("checkpoint root `{0}` is not the base64 of 32 bytes")]
    InvalidRoot(String),
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtension { line: usize },
    #[error("checkpoint {field} contains a newline")]
    FieldWithNewline { field: &'static str },
}

impl Checkpoint {
    /// The note body: origin, size and base64 root lines, then the extension
    /// lines, each ending in a newline.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for extension in &self.extensions {
            body.push_str(extension);
            body.push('\n');
        }
        body
    }

    /// Parses a note body as [`Checkpoint::to_body`] writes it; anything else
    /// is rejected, so `parse_body(b)?.to_body() == b`.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        // Stricter than signed-note (which only bans C0 controls): a
        // checkpoint is machine text, and DEL or C1 controls in it could only
        // serve to confuse whoever displays it.
        if let Some((offset, c)) = body
            .char_indices()
            .find(|&(_, c)| c.is_control() && c != '\n')
        {
            return Err(CheckpointError::ControlCharacter {
                offset,
                code: u32::from(c),
            });
        }
        let content = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = content.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size =
            parse_decimal(size).ok_or_else(|| CheckpointError::InvalidSize(excerpt(size)))?;
        let root = decode_hash(root).ok_or_else(|| CheckpointError::InvalidRoot(excerpt(root)))?;
        if let Some(position) = extensions.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyExtension { line: position + 4 });
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Signs this checkpoint, giving the note text.
    ///
    /// Fails if the fields could not be read back as the same checkpoint
    /// (an empty origin, a newline or control character in a field, an empty
    /// extension), so that a log never signs what its verifiers would reject.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        if self.origin.contains('\n') {
            return Err(CheckpointError::FieldWithNewline { field: "origin" }.into());
        }
        if self.extensions.iter().any(|line| line.contains('\n')) {
            return Err(CheckpointError::FieldWithNewline { field: "extension" }.into());
        }
        // Without newlines inside fields, lines map one-to-one onto fields,
        // so parsing succeeds exactly when the fields are valid.
        let body = self.to_body();
        Self::parse_body(&body)?;
        sign_note(&body, signer)
    }

    /// Opens a signed checkpoint note (see [`open_note`]) and parses its body.
    ///
    /// Which log the checkpoint is from is the caller's decision: pass only
    /// that log's keys, and compare [`Checkpoint::origin`] with the expected
    /// origin.
    pub fn open(text: &str, verifiers: &[NoteVerifier]) -> Result<Self, NoteError> {
        let note = open_note(text, verifiers)?;
        Ok(Self::parse_body(&note.body)?)
    }
}

/// Why a key's text or a key name is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("verifier key is not of the form `<name>+<8 hex digit key id>+<base64 key>`")]
    MalformedVerifier,
    #[error("signer key is not of the form `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`")]
    MalformedSigner,
    #[error("key name `{0}` is empty or contains a space, a `+` or a control character")]
    InvalidName(String),
    #[error("key algorithm {0:#04x} is not ed25519 (0x01)")]
    UnknownAlgorithm(u8),
    #[error("ed25519 key is {0} bytes, expected 32")]
    WrongKeyLength(usize),
    #[error("key id {stated:08x} does not match {computed:08x} computed from the name and key")]
    KeyIdMismatch { stated: u32, computed: u32 },
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
}

/// A key that signs notes: a name and an Ed25519 signing key.
///
/// Its text form is the secret `PRIVATE+KEY+<name>+<key id>+<base64 seed>` of
/// Go's `note.NewSigner`; `Debug` leaves the key out.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer named `name` using `key`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, KeyError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key.verifying_key()),
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte seed)>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .strip_prefix(SIGNER_PREFIX)
            .ok_or(KeyError::MalformedSigner)?;
        let (name, stated, mut material) = split_key_text(rest).ok_or(KeyError::MalformedSigner)?;
        let parsed = Self::from_parts(name, stated, &material);
        // Best effort only: the caller's text still holds the seed.
        wipe(&mut material);
        parsed
    }

    /// The signer for a parsed key text, checking the stated key id.
    fn from_parts(name: &str, stated: u32, material: &[u8]) -> Result<Self, KeyError> {
        check_name(name)?;
        let mut seed = ed25519_material(material)?;
        let key = SigningKey::from_bytes(&seed);
        wipe(&mut seed);
        let signer = Self::new(name, key)?;
        if signer.key_id != stated {
            return Err(KeyError::KeyIdMismatch {
                stated,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The key name that signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id that signatures carry.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier matching this signer.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }
}

/// The secret key text, `PRIVATE+KEY+<name>+<key id>+<base64 seed>`: keep it
/// out of logs.
impl NoteSigner {
    /// The private key in Go's note format, `PRIVATE+KEY+<name>+<id>+<base64>`.
    ///
    /// Deliberately not `Display`: a stray `{}` in a log line must not print a key.
    pub fn to_private_key_text(&self) -> String {
        let mut material = [0; 33];
        material[0] = ALGORITHM_ED25519;
        material[1..].copy_from_slice(self.key.as_bytes());
        let encoded = BASE64.encode(material);
        wipe(&mut material);
        format!("{SIGNER_PREFIX}{}+{:08x}+{encoded}", self.name, self.key_id)
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl FromStr for NoteSigner {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

/// A key that verifies notes: a name, its key id and an Ed25519 public key.
///
/// Its text form is Go's verifier key, `<name>+<key id>+<base64 key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier named `name` for `key`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// Parses `<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte public key)>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (name, stated, material) = split_key_text(text).ok_or(KeyError::MalformedVerifier)?;
        check_name(name)?;
        let public = ed25519_material(&material)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| KeyError::InvalidPublicKey)?;
        let verifier = Self::new(name, key)?;
        if verifier.key_id != stated {
            return Err(KeyError::KeyIdMismatch {
                stated,
                computed: verifier.key_id,
            });
        }
        Ok(verifier)
    }

    /// The key name that signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id that signatures carry.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = [0; 33];
        material[0] = ALGORITHM_ED25519;
        material[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(material)
        )
    }
}

impl FromStr for NoteVerifier {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

/// Overwrites secret bytes before they are dropped. Best effort: without a
/// zeroize dependency nothing stops the compiler from eliding this, hence the
/// `black_box`.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// Key id of an Ed25519 key (C2SP signed-note): the first four bytes, big
/// endian, of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALGORITHM_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Key names are non-empty, without Unicode spaces or `+` (C2SP signed-note),
/// and without control characters, which no note may contain anyway.
fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::InvalidName(excerpt(name)))
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// Splits `<name>+<key id>+<base64>` into the name, the key id and the
/// decoded base64. The key id must be exactly 8 lowercase hex digits, the
/// spelling Go writes, so that a key has a single text form. The base64 may
/// itself contain `+`, hence splitting on the first two only.
fn split_key_text(text: &str) -> Option<(&str, u32, Vec<u8>)> {
    let (name, rest) = text.split_once('+')?;
    let (id_hex, material) = rest.split_once('+')?;
    let is_lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if id_hex.len() != 8 || !id_hex.chars().all(is_lower_hex) {
        return None;
    }
    let key_id = u32::from_str_radix(id_hex, 16).ok()?;
    Some((name, key_id, BASE64.decode(material).ok()?))
}

/// The 32 key bytes of `0x01 ‖ key`.
fn ed25519_material(material: &[u8]) -> Result<[u8; 32], KeyError> {
    match material.split_first() {
        None => Err(KeyError::WrongKeyLength(0)),
        Some((&ALGORITHM_ED25519, key)) => key
            .try_into()
            .map_err(|_| KeyError::WrongKeyLength(key.len())),
        Some((&algorithm, _)) => Err(KeyError::UnknownAlgorithm(algorithm)),
    }
}

/// A note whose signatures have been checked by [`open_note`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, including its final newline.
    pub body: String,
    /// Signatures from known keys, all verified, one per key.
    pub verified: Vec<NoteSignature>,
    /// Signatures from unknown keys (e.g. witnesses' cosignatures), not
    /// checked, without exact duplicates.
    pub unverified: Vec<NoteSignature>,
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// Why a note was not signed or not opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("note contains control character U+{code:04X} at byte {offset}")]
    ControlCharacter { offset: usize, code: u32 },
    #[error("note text to sign does not end with a newline")]
    BodyWithoutFinalNewline,
    #[error("note has no blank line before its signatures")]
    MissingSignatureBlock,
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    #[error("note has no signature lines after its blank line")]
    NoSignatureLines,
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignature { line: usize, reason: &'static str },
    #[error("note has more than {max} signatures")]
    TooManySignatures { max: usize },
    #[error("several verifiers for key `{key}` have different public keys")]
    AmbiguousKey { key: String },
    #[error("signature by known key `{key}` does not verify")]
    InvalidSignature { key: String },
    #[error("note has no verified signature from a known key ({unverified} from unknown keys)")]
    NoVerifiedSignature { unverified: usize },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Signs `body` (C2SP signed-note): the note is the body, a blank line and
/// the signature line `— <name> <base64(key id ‖ signature)>`.
///
/// Fails unless `body` ends with a newline, has no control character other
/// than newline and leaves room for the signature within
/// [`NOTE_BYTES_MAX`], because [`open_note`] would reject such a note.
pub fn sign_note(body: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    check_note_characters(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::BodyWithoutFinalNewline);
    }
    let signature = signer.key.sign(body.as_bytes());
    let mut payload = Vec::with_capacity(4 + Signature::BYTE_SIZE);
    payload.extend_from_slice(&signer.key_id.to_be_bytes());
    payload.extend_from_slice(&signature.to_bytes());
    let note = format!(
        "{body}\n{SIGNATURE_PREFIX}{} {}\n",
        signer.name,
        BASE64.encode(payload)
    );
    if note.len() > NOTE_BYTES_MAX {
        return Err(NoteError::TooLarge {
            len: note.len(),
            max: NOTE_BYTES_MAX,
        });
    }
    Ok(note)
}

/// Opens a signed note (C2SP signed-note, as Go's `note.Open`).
///
/// The body is everything up to the last blank line; every line after it
/// must be a well-formed signature line. A signature whose key name and id
/// both match a verifier must verify, or the whole note is rejected; others
/// are returned unverified. At least one must verify. Notes over
/// [`NOTE_BYTES_MAX`] bytes or [`NOTE_SIGNATURES_MAX`] signatures are
/// rejected. Unlike Go, a repeated signature by a known key is verified
/// again rather than skipped, and a verifier list repeating the same key is
/// not ambiguous.
pub fn open_note(text: &str, verifiers: &[NoteVerifier]) -> Result<OpenedNote, NoteError> {
    if text.len() > NOTE_BYTES_MAX {
        return Err(NoteError::TooLarge {
            len: text.len(),
            max: NOTE_BYTES_MAX,
        });
    }
    check_note_characters(text)?;
    let split = text.rfind("\n\n").ok_or(NoteError::MissingSignatureBlock)?;
    let (body, signatures) = (&text[..=split], &text[split + 2..]);
    if signatures.is_empty() {
        return Err(NoteError::NoSignatureLines);
    }
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or(NoteError::MissingFinalNewline)?;

    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    for (index, line) in signatures.split('\n').enumerate() {
        if index >= NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let signature =
            parse_signature_line(line).map_err(|reason| NoteError::MalformedSignature {
                line: index + 1,
                reason,
            })?;
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == signature.name && v.key_id == signature.key_id);
        let Some(verifier) = known.next() else {
            if !unverified.contains(&signature) {
                unverified.push(signature);
            }
            continue;
        };
        let key_text = || format!("{}+{:08x}", signature.name, signature.key_id);
        if known.any(|other| other.key != verifier.key) {
            return Err(NoteError::AmbiguousKey { key: key_text() });
        }
        // Strict verification also refuses small-order keys and commitments,
        // which honest signers never produce.
        let valid = Signature::from_slice(&signature.signature)
            .is_ok_and(|sig| verifier.key.verify_strict(body.as_bytes(), &sig).is_ok());
        if !valid {
            return Err(NoteError::InvalidSignature { key: key_text() });
        }
        if !verified
            .iter()
            .any(|seen| seen.name == signature.name && seen.key_id == signature.key_id)
        {
            verified.push(signature);
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoVerifiedSignature {
            unverified: unverified.len(),
        });
    }
    Ok(OpenedNote {
        body: body.to_owned(),
        verified,
        unverified,
    })
}

/// C2SP signed-note: no ASCII control character other than newline. (UTF-8
/// validity, the other rule, is what `&str` guarantees.)
fn check_note_characters(text: &str) -> Result<(), NoteError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(NoteError::ControlCharacter {
            offset,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// Parses `— <name> <base64(key id ‖ signature)>` (without its newline).
fn parse_signature_line(line: &str) -> Result<NoteSignature, &'static str> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or("it does not start with an em dash and a space")?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or("it has no space between key name and signature")?;
    if !is_valid_name(name) {
        return Err("the key name is empty or contains a space, a `+` or a control character");
    }
    let decoded = BASE64
        .decode(encoded)
        .map_err(|_| "the signature is not canonical base64")?;
    match decoded.split_first_chunk::<4>() {
        Some((key_id, signature)) if !signature.is_empty() => Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*key_id),
            signature: signature.to_vec(),
        }),
        _ => Err("the signature is shorter than a key id and one byte"),
    }
}

/// A C2SP tlog-proof file: a checkpoint and the inclusion proof of one entry
/// in it, verifiable offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProofFile {
    /// Opaque, unauthenticated application data (the optional `extra` line).
    pub extra: Option<Vec<u8>>,
    /// Index of the entry in the log.
    pub index: u64,
    /// Inclusion proof of the entry in the checkpoint's tree, from the leaf's
    /// sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint_note: String,
}

/// Why a tlog-proof file is not acceptable or does not prove inclusion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    #[error("tlog proof is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("tlog proof line {line} is malformed: {reason}")]
    Malformed { line: usize, reason: String },
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("inclusion proof does not verify: {0}")]
    Proof(#[from] ProofError),
}

impl InclusionProofFile {
    /// The file text: the `c2sp.org/tlog-proof@v1` line, the optional
    /// `extra <base64>` line, `index <n>`, one base64 hash per line, a blank
    /// line, then the checkpoint note.
    pub fn to_text(&self) -> String {
        let mut text = format!("{PROOF_FILE_HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str("extra ");
            text.push_str(&BASE64.encode(extra));
            text.push('\n');
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            text.push_str(&BASE64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint_note);
        text
    }

    /// Parses what [`InclusionProofFile::to_text`] writes, strictly, so that
    /// `parse(t)?.to_text() == t`. The checkpoint note is only split off here;
    /// [`verify_inclusion_file`] opens it.
    pub fn parse(text: &str) -> Result<Self, ProofFileError> {
        if text.len() > PROOF_FILE_BYTES_MAX {
            return Err(ProofFileError::TooLarge {
                len: text.len(),
                max: PROOF_FILE_BYTES_MAX,
            });
        }
        let mut lines = ProofFileLines {
            rest: text,
            line: 0,
        };

        let header = lines.next()?;
        if header != PROOF_FILE_HEADER {
            return Err(lines.malformed(format!(
                "`{}` is not `{PROOF_FILE_HEADER}`",
                excerpt(header)
            )));
        }
        let mut line = lines.next()?;
        let extra = match line.strip_prefix("extra ") {
            Some(encoded) => {
                let extra = BASE64
                    .decode(encoded)
                    .map_err(|_| lines.malformed("extra data is not canonical base64".into()))?;
                line = lines.next()?;
                Some(extra)
            }
            None => None,
        };
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| {
                lines.malformed(format!(
                    "`{}` is not `index` and a decimal number without leading zeros",
                    excerpt(line)
                ))
            })?;
        let mut proof = Vec::new();
        loop {
            let line = lines.next()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == PROOF_HASHES_MAX {
                return Err(
                    lines.malformed(format!("proof has more than {PROOF_HASHES_MAX} hashes"))
                );
            }
            let hash = decode_hash(line).ok_or_else(|| {
                lines.malformed(format!("`{}` is not the base64 of 32 bytes", excerpt(line)))
            })?;
            proof.push(hash);
        }
        if lines.rest.is_empty() {
            return Err(lines.malformed("no checkpoint follows the proof".into()));
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint_note: lines.rest.to_owned(),
        })
    }
}

/// Newline-terminated lines of a tlog-proof file, with line numbers for
/// error messages.
struct ProofFileLines<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> ProofFileLines<'a> {
    fn next(&mut self) -> Result<&'a str, ProofFileError> {
        self.line += 1;
        let (line, rest) = self
            .rest
            .split_once('\n')
            .ok_or_else(|| self.malformed("the file ends before the checkpoint".into()))?;
        self.rest = rest;
        Ok(line)
    }

    fn malformed(&self, reason: String) -> ProofFileError {
        ProofFileError::Malformed {
            line: self.line,
            reason,
        }
    }
}

/// Verifies a tlog-proof file: opens its checkpoint with `verifiers` (see
/// [`Checkpoint::open`]), then checks that `leaf_hash(leaf_data)` is at
/// `file.index` in the checkpoint's tree. Returns the checkpoint, whose
/// origin the caller should check; the `extra` data is not authenticated.
pub fn verify_inclusion_file(
    file: &InclusionProofFile,
    leaf_data: &[u8],
    verifiers: &[NoteVerifier],
) -> Result<Checkpoint, ProofFileError> {
    let checkpoint = Checkpoint::open(&file.checkpoint_note, verifiers)?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(leaf_data),
        file.index,
        checkpoint.size,
        &file.proof,
        &checkpoint.root,
    )?;
    Ok(checkpoint)
}

/// A decimal `u64` without sign or leading zeros ("0" itself is fine).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// A hash from canonical, padded standard base64.
fn decode_hash(text: &str) -> Option<Hash> {
    BASE64.decode(text).ok()?.try_into().ok()
}

/// `text` cut to [`EXCERPT_CHARS`] characters for an error message.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
