//! Tests of checkpoints, signed notes and tlog-proof files: Go's
//! `sumdb/note` vectors, the C2SP examples and real sum.golang.org tree notes
//! for interoperability, byte-exact round trips, and every rejection rule.

use expect_test::expect;

use super::merkle::{consistency_proof, inclusion_proof, leaf_hash, root_of};
use super::*;

// golang.org/x/mod sumdb/note/note_test.go (commit fe2ec04f).
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// sum.golang.org's verifier key, as in golang.org/x/mod `gosumcheck`.
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

fn peter() -> NoteVerifier {
    NoteVerifier::parse(PETER_VKEY).unwrap()
}

fn enoch() -> NoteVerifier {
    NoteVerifier::parse(ENOCH_VKEY).unwrap()
}

/// A deterministic test signer.
fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "steward.example/audit".into(),
        size,
        root: root_of(&leaves(size)),
        extensions: Vec::new(),
    }
}

fn leaves(size: u64) -> Vec<Hash> {
    (0..size).map(|i| leaf_hash(&entry(i))).collect()
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

/// The error of `result` as text, or "ok".
fn outcome<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(err) => err.to_string(),
    }
}

#[test]
fn go_keys_parse_and_print_back() {
    for vkey in [PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY] {
        assert_eq!(NoteVerifier::parse(vkey).unwrap().to_string(), vkey);
    }
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.to_private_key_text(), PETER_SKEY);
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.verifier(), peter());
    assert_eq!(
        PETER_SKEY.parse::<NoteSigner>().unwrap().verifier(),
        peter()
    );
    assert_eq!(PETER_VKEY.parse::<NoteVerifier>().unwrap(), peter());
}

/// Go's `TestNewVerifier` and `TestNewSigner`: every proper substring and
/// every single-byte increment of a key is rejected.
#[test]
fn go_mangled_keys_are_rejected() {
    fn manglings(key: &str) -> Vec<String> {
        let bytes = key.as_bytes();
        let mut out = Vec::new();
        for i in 0..=bytes.len() {
            for j in i + 1..=bytes.len() {
                if i != 0 || j != bytes.len() {
                    out.push(String::from_utf8(bytes[i..j].to_vec()).unwrap());
                }
            }
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] += 1;
            out.push(String::from_utf8(changed).unwrap());
        }
        out
    }
    for mangled in manglings(PETER_VKEY) {
        assert!(
            NoteVerifier::parse(&mangled).is_err(),
            "accepted `{mangled}`"
        );
    }
    for mangled in manglings(PETER_SKEY) {
        assert!(
            NoteSigner::parse(&mangled).is_err(),
            "accepted a mangled signer key"
        );
    }
    let table = [
        // Go's wrong-length case (not canonical base64 here), then a key one
        // byte short and an unknown algorithm, each with its key id fixed up
        // so that only that defect remains.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+a3fe51bc+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10Q=",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
    ]
    .iter()
    .map(|key| format!("{}\n", outcome(NoteVerifier::parse(key))))
    .collect::<String>();
    expect![[r#"
        verifier key is not of the form `<name>+<8 hex digit key id>+<base64 key>`
        ed25519 key is 31 bytes, expected 32
        key algorithm 0x65 is not ed25519 (0x01)
        verifier key is not of the form `<name>+<8 hex digit key id>+<base64 key>`
        key id c74f20a4 does not match c74f20a3 computed from the name and key
        key name `Peter Neumann` is empty or contains a space, a `+` or a control character
        key name `` is empty or contains a space, a `+` or a control character
        verifier key is not of the form `<name>+<8 hex digit key id>+<base64 key>`
    "#]]
    .assert_eq(&table);
}

#[test]
fn signer_debug_does_not_show_the_key() {
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    let debug = format!("{signer:?}");
    expect![[r#"NoteSigner { name: "PeterNeumann", key_id: c74f20a3, .. }"#]].assert_eq(&debug);
    let seed = &PETER_SKEY[PETER_SKEY.len() - 44..];
    assert!(!debug.contains(seed));
    let errors = [
        outcome(NoteSigner::parse(
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        )),
        outcome(NoteSigner::parse(
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKD",
        )),
        outcome(NoteSigner::parse(
            "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        )),
    ];
    for error in &errors {
        assert!(!error.contains("AYEKFALV"), "error shows the key: {error}");
    }
    expect![[r#"
        key id c74f20a4 does not match c74f20a3 computed from the name and key
        signer key is not of the form `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`
        signer key is not of the form `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`"#]]
    .assert_eq(&errors.join("\n"));
}

/// Go's `TestSign`: Ed25519 is deterministic, so the note is byte-exact.
#[test]
fn go_sign_vector() {
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    let note = sign_note(GO_TEXT, &signer).unwrap();
    assert_eq!(note, format!("{GO_TEXT}\n{PETER_SIG}"));
    assert_eq!(
        outcome(sign_note("abc", &signer)),
        "note text to sign does not end with a newline"
    );
}

/// Go's `TestOpen`, where our rules agree with Go's.
#[test]
fn go_open_vectors() {
    let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One signature verified, one from an unknown key.
    let note = open_note(&both, &[peter()]).unwrap();
    assert_eq!(note.body, GO_TEXT);
    assert_eq!(names(&note.verified), ["PeterNeumann+c74f20a3"]);
    assert_eq!(names(&note.unverified), ["EnochRoot+af0cfe78"]);
    assert_eq!(note.unverified[0].signature.len(), 64);

    // Both verified.
    let note = open_note(&both, &[peter(), enoch()]).unwrap();
    assert_eq!(
        names(&note.verified),
        ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    );
    assert!(note.unverified.is_empty());

    // Neither known.
    assert_eq!(
        open_note(&both, &[]),
        Err(NoteError::NoVerifiedSignature { unverified: 2 })
    );

    // Too many signatures: Go also stops at 100.
    let hundred = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
    assert_eq!(
        names(&open_note(&hundred, &[peter()]).unwrap().verified).len(),
        1
    );
    let too_many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        open_note(&too_many, &[peter()]),
        Err(NoteError::TooManySignatures { max: 100 })
    );

    // A known key's signature that does not verify.
    let bad_peter = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        outcome(open_note(&format!("{GO_TEXT}\n{bad_peter}"), &[peter()])),
        "signature by known key `PeterNeumann+c74f20a3` does not verify"
    );

    // Repeated signatures: one verified entry, exact duplicates of unknown
    // ones dropped.
    let bad_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let repeated = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{bad_enoch}");
    let note = open_note(&repeated, &[peter()]).unwrap();
    assert_eq!(names(&note.verified), ["PeterNeumann+c74f20a3"]);
    assert_eq!(
        names(&note.unverified),
        ["EnochRoot+af0cfe78", "EnochRoot+af0cfe78"]
    );
    assert_ne!(note.unverified[0], note.unverified[1]);

    // Malformed notes. (Go's "\xff" case cannot be a `&str`.)
    let bad_name = "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
    let malformed = [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", PETER_SIG.trim_end()),
        format!("\x01{GO_TEXT}\n{PETER_SIG}"),
        format!("{GO_TEXT}\n{bad_name}"),
        format!("{GO_TEXT}\n{bad_name}\n"),
        format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ]
    .iter()
    .map(|text| format!("{}\n", outcome(open_note(text, &[peter()]))))
    .collect::<String>();
    expect![[r#"
        note has no blank line before its signatures
        note has no signature lines after its blank line
        note does not end with a newline
        note contains control character U+0001 at byte 0
        note does not end with a newline
        signature line 1 is malformed: the signature is not canonical base64
        signature line 2 is malformed: it does not start with an em dash and a space
    "#]]
    .assert_eq(&malformed);
}

/// Where we deliberately differ from Go: a verifier list that repeats the
/// same key is not ambiguous, but two different keys with one name and id
/// are.
#[test]
fn duplicate_verifiers() {
    let note = format!("{GO_TEXT}\n{ENOCH_SIG}");
    assert!(open_note(&note, &[enoch(), peter(), enoch()]).is_ok());

    // A key forged to collide with Enoch's name and id (ids are only 32
    // bits); `NoteVerifier` computes ids, so build it by hand.
    let impostor = NoteVerifier {
        key: signer("EnochRoot", 9).verifier().key,
        ..enoch()
    };
    assert_eq!(
        outcome(open_note(&note, &[enoch(), impostor])),
        "several verifiers for key `EnochRoot+af0cfe78` have different public keys"
    );
}

fn names(signatures: &[NoteSignature]) -> Vec<String> {
    signatures
        .iter()
        .map(|s| format!("{}+{:08x}", s.name, s.key_id))
        .collect()
}

/// The example of C2SP signed-note.
#[test]
fn c2sp_signed_note_example() {
    let verifier = NoteVerifier::parse(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .unwrap();
    let text = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let note = open_note(text, &[verifier]).unwrap();
    assert_eq!(note.body, "This is an example message.\n");
}

/// The example of C2SP tlog-checkpoint; its signing key is not published, so
/// only the body is checked.
#[test]
fn c2sp_checkpoint_example() {
    let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    assert_eq!(
        open_note(text, &[]),
        Err(NoteError::NoVerifiedSignature { unverified: 1 })
    );
    let body = &text[..text.find("\n\n").unwrap() + 1];
    let checkpoint = Checkpoint::parse_body(body).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20_852_163);
    assert_eq!(checkpoint.to_body(), body);
}

/// Real tree heads signed by sum.golang.org, quoted in public documents (for
/// example the README of github.com/andrew-j-price/journey, a `curl
/// https://sum.golang.org/lookup/…` transcript). They verify under Go's
/// published key, so they are genuine, and they show that notes signed by
/// Go's tooling open here.
#[test]
fn sum_golang_org_tree_notes() {
    let sumdb = NoteVerifier::parse(SUMDB_VKEY).unwrap();
    let notes = [
        (
            10_680_630,
            "k1UQFwFXWQa7MF1BREWVQxIhScvUdgRepXuyRS3sRuE=",
            "Az3grqgyWctiMcdUtITQpkGSxEoEvbaAq7J3FpbaVlW1Zo47LX/jmeeE7LiBktpmR2d/1RsdocLU9HMXYXxHCVyf/AQ=",
        ),
        (
            15_368_405,
            "/g9am3I6YWNKaZX/jkne1fqd9zEyjss+JXyPXG0WfkY=",
            "Az3grqJGUaSGukG9p8nI2vKgiFn7qGHxn0W+mrwyI6Gz3F0t1J3LzmWk/p96Ybf295EjwdSwlzgijq5WA9d1Ded7owM=",
        ),
        (
            3_784_599,
            "7uvxIZ67TZygcq/AehTD8iHYt81Ih+Zl2Y7vXZbfszQ=",
            "Az3grn972wXskjQrsZhVGc93fTU2uOsmSTiId1Wn1lxDCup5z4ggl1/4gaUqOkMa6cMbYvjB7hn7yemNr7Zqanol/go=",
        ),
        (
            445_646,
            "jEFFy4AtYgBBNTSZTiNnQrgQqMbcH0mfO2oP2FxR9VU=",
            "Az3grkGho/PqvUmEuTv6+r2g303hUhu60FOD6vLpm19mBwH9UjquWY2OKxNmZ55z0gHrp24AgPC3Q5WO7uZrVdvdCQU=",
        ),
    ];
    for (size, root, signature) in notes {
        let body = format!("go.sum database tree\n{size}\n{root}\n");
        let text = format!("{body}\n— sum.golang.org {signature}\n");
        let checkpoint = Checkpoint::open(&text, std::slice::from_ref(&sumdb))
            .unwrap_or_else(|err| panic!("tree {size}: {err}"));
        assert_eq!(checkpoint.origin, "go.sum database tree");
        assert_eq!(checkpoint.size, size);
        assert_eq!(checkpoint.to_body(), body);

        // One changed digit in the size breaks the signature.
        let forged = text.replacen(&size.to_string(), &(size + 1).to_string(), 1);
        assert!(matches!(
            Checkpoint::open(&forged, std::slice::from_ref(&sumdb)),
            Err(NoteError::InvalidSignature { .. })
        ));
    }
}

/// golang.org/x/mod sumdb/tlog `TestParseTree`: the tree hash there is the
/// record hash of "hello world", i.e. our leaf hash.
#[test]
fn go_tlog_tree_vector() {
    let body = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let checkpoint = Checkpoint::parse_body(body).unwrap();
    assert_eq!(checkpoint.size, 123_456_789_012);
    assert_eq!(checkpoint.root, leaf_hash(b"hello world"));
    assert_eq!(checkpoint.to_body(), body);
    for bad in [
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
    ] {
        assert!(Checkpoint::parse_body(bad).is_err());
    }
}

#[test]
fn checkpoint_body_round_trips_byte_exact() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    for body in [
        format!("example.com/log\n0\n{root}\n"),
        format!("example.com/log\n1\n{root}\n"),
        format!("example.com/log\n18446744073709551615\n{root}\n"),
        format!("a b+c é\n42\n{root}\nextension one\n— not a signature\n"),
    ] {
        let checkpoint = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(checkpoint.to_body(), body);
    }
    let mut checkpoint = checkpoint(5);
    checkpoint.extensions = vec!["x".into(), "y z".into()];
    assert_eq!(
        Checkpoint::parse_body(&checkpoint.to_body()).unwrap(),
        checkpoint
    );
}

#[test]
fn checkpoint_body_rejections() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let bodies = [
        format!("\n5\n{root}\n"),
        format!("log\n05\n{root}\n"),
        format!("log\n00\n{root}\n"),
        format!("log\n+5\n{root}\n"),
        format!("log\n-5\n{root}\n"),
        format!("log\n 5\n{root}\n"),
        format!("log\n\n{root}\n"),
        format!("log\n18446744073709551616\n{root}\n"),
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(),
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_owned(),
        "log\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".to_owned(),
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n".to_owned(),
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n".to_owned(),
        format!("log\n5\n{root}"),
        "log\n5\n".to_owned(),
        String::new(),
        format!("log\n5\n{root}\n\n"),
        format!("log\n5\n{root}\next\n\nmore\n"),
        format!("lo\tg\n5\n{root}\n"),
        format!("log\r\n5\n{root}\n"),
        format!("log\n5\n{root}\nbell\x07\n"),
        format!("log\u{7f}\n5\n{root}\n"),
        format!("log\u{85}\n5\n{root}\n"),
    ];
    let table = bodies
        .iter()
        .map(|body| format!("{}\n", outcome(Checkpoint::parse_body(body))))
        .collect::<String>();
    expect![[r#"
        checkpoint origin is empty
        checkpoint size `05` is not a decimal number without leading zeros
        checkpoint size `00` is not a decimal number without leading zeros
        checkpoint size `+5` is not a decimal number without leading zeros
        checkpoint size `-5` is not a decimal number without leading zeros
        checkpoint size ` 5` is not a decimal number without leading zeros
        checkpoint size `` is not a decimal number without leading zeros
        checkpoint size `18446744073709551616` is not a decimal number without leading zeros
        checkpoint root `CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=` is not the base64 of 32 bytes
        checkpoint root `CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I` is not the base64 of 32 bytes
        checkpoint root `CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=` is not the base64 of 32 bytes
        checkpoint root `CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx` is not the base64 of 32 bytes
        checkpoint root `CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA` is not the base64 of 32 bytes
        checkpoint does not end with a newline
        checkpoint has 2 lines, expected at least origin, size and root
        checkpoint does not end with a newline
        checkpoint extension line 4 is empty
        checkpoint extension line 5 is empty
        checkpoint contains control character U+0009 at byte 2
        checkpoint contains control character U+000D at byte 3
        checkpoint contains control character U+0007 at byte 55
        checkpoint contains control character U+007F at byte 3
        checkpoint contains control character U+0085 at byte 3
    "#]]
    .assert_eq(&table);
}

#[test]
fn checkpoint_sign_and_open() {
    let log = signer("steward.example/audit", 1);
    let checkpoint = checkpoint(13);
    let text = checkpoint.sign(&log).unwrap();
    assert!(text.starts_with(&checkpoint.to_body()));
    assert_eq!(
        Checkpoint::open(&text, &[log.verifier()]).unwrap(),
        checkpoint
    );

    // Checkpoints that would not read back are not signed.
    let unsignable = [
        Checkpoint {
            origin: String::new(),
            ..checkpoint.clone()
        },
        Checkpoint {
            origin: "two\nlines".into(),
            ..checkpoint.clone()
        },
        Checkpoint {
            extensions: vec![String::new()],
            ..checkpoint.clone()
        },
        Checkpoint {
            extensions: vec!["a\nb".into()],
            ..checkpoint.clone()
        },
        Checkpoint {
            origin: "tab\there".into(),
            ..checkpoint.clone()
        },
    ]
    .iter()
    .map(|checkpoint| format!("{}\n", outcome(checkpoint.sign(&log))))
    .collect::<String>();
    expect![[r#"
        checkpoint origin is empty
        checkpoint origin contains a newline
        checkpoint extension line 4 is empty
        checkpoint extension contains a newline
        checkpoint contains control character U+0009 at byte 3
    "#]]
    .assert_eq(&unsignable);
}

#[test]
fn unknown_keys_are_ignored_and_known_keys_must_verify() {
    let log = signer("steward.example/audit", 1);
    let witness = signer("witness.example", 2);
    let body = checkpoint(13).to_body();
    let by_log = sign_note(&body, &log).unwrap();
    let by_witness = sign_note(&body, &witness).unwrap();
    let witness_line = &by_witness[body.len() + 1..];
    let both = format!("{by_log}{witness_line}");

    // Unknown keys: kept unverified.
    let note = open_note(&both, &[log.verifier()]).unwrap();
    assert_eq!(
        names(&note.verified),
        [format!("steward.example/audit+{:08x}", log.key_id())]
    );
    assert_eq!(
        names(&note.unverified),
        [format!("witness.example+{:08x}", witness.key_id())]
    );
    assert_eq!(
        open_note(&both, &[log.verifier(), witness.verifier()])
            .unwrap()
            .verified
            .len(),
        2
    );

    // No known key at all.
    assert_eq!(
        open_note(&both, &[signer("other", 3).verifier()]),
        Err(NoteError::NoVerifiedSignature { unverified: 2 })
    );

    // A key sharing only the name, or only the id, is unknown.
    let same_name = signer("steward.example/audit", 4);
    let note = open_note(&both, &[log.verifier(), same_name.verifier()]).unwrap();
    assert_eq!(note.verified.len(), 1);
    let same_id = NoteVerifier {
        name: "witness.example".into(),
        ..log.verifier()
    };
    assert_eq!(
        open_note(&by_log, &[same_id]),
        Err(NoteError::NoVerifiedSignature { unverified: 1 })
    );

    // A known key's bad signature rejects the note, even next to a good one:
    // here a line under the log's name and id made with another key.
    let impostor = NoteSigner {
        name: log.name.clone(),
        key_id: log.key_id,
        key: SigningKey::from_bytes(&[5; 32]),
    };
    let impostor_line = &sign_note(&body, &impostor).unwrap()[body.len() + 1..];
    let mixed = format!("{both}{impostor_line}");
    assert!(matches!(
        open_note(&mixed, &[log.verifier()]),
        Err(NoteError::InvalidSignature { .. })
    ));
    // ... but is ignored as unknown by someone who does not trust the log.
    assert!(open_note(&mixed, &[witness.verifier()]).is_ok());

    // A signature of the wrong length from a known key.
    let short = format!(
        "{body}\n— {} {}\n",
        log.name(),
        BASE64.encode([&log.key_id().to_be_bytes()[..], &[0; 63]].concat())
    );
    assert!(matches!(
        open_note(&short, &[log.verifier()]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn tampered_checkpoints_are_rejected() {
    let log = signer("steward.example/audit", 1);
    let verifiers = [log.verifier()];
    let original = checkpoint(13);
    let text = original.sign(&log).unwrap();
    let body = original.to_body();
    let signatures = &text[body.len()..];

    let other_root = BASE64.encode(checkpoint(12).root);
    let tampered = [
        text.replacen("13\n", "14\n", 1),
        text.replacen(&BASE64.encode(original.root), &other_root, 1),
        text.replacen("steward", "Steward", 1),
        format!("{}extension\n{signatures}", body),
        text.replacen('\n', "\n\n", 1),
    ];
    for text in &tampered {
        assert!(
            matches!(
                Checkpoint::open(text, &verifiers),
                Err(NoteError::InvalidSignature { .. })
            ),
            "accepted or misreported {text:?}"
        );
    }

    // Swapped roots: the same root under a checkpoint of the other size.
    let small = checkpoint(12);
    let swapped = Checkpoint {
        root: original.root,
        ..small.clone()
    };
    let swapped_text = format!(
        "{}{}",
        swapped.to_body(),
        &small.sign(&log).unwrap()[small.to_body().len()..]
    );
    assert!(Checkpoint::open(&swapped_text, &verifiers).is_err());
}

#[test]
fn sixteen_signatures_are_accepted() {
    let signers: Vec<NoteSigner> = (0..16)
        .map(|i| signer(&format!("witness{i}.example"), i))
        .collect();
    let body = checkpoint(7).to_body();
    let mut text = format!("{body}\n");
    for signer in &signers {
        text.push_str(&sign_note(&body, signer).unwrap()[body.len() + 1..]);
    }
    let verifiers: Vec<NoteVerifier> = signers.iter().map(NoteSigner::verifier).collect();
    let note = open_note(&text, &verifiers).unwrap();
    assert_eq!(note.verified.len(), 16);
    let note = open_note(&text, &verifiers[3..4]).unwrap();
    assert_eq!((note.verified.len(), note.unverified.len()), (1, 15));
    assert_eq!(Checkpoint::open(&text, &verifiers).unwrap(), checkpoint(7));
}

#[test]
fn note_size_limits() {
    let log = signer("log", 1);
    let mut body = "x".repeat(NOTE_BYTES_MAX - 120);
    body.push('\n');
    let text = sign_note(&body, &log).unwrap();
    assert!(text.len() <= NOTE_BYTES_MAX);
    assert!(open_note(&text, &[log.verifier()]).is_ok());

    let mut big = "x".repeat(NOTE_BYTES_MAX);
    big.push('\n');
    assert!(matches!(
        sign_note(&big, &log),
        Err(NoteError::TooLarge { .. })
    ));
    let oversized = format!("{big}\n{}", &text[body.len() + 1..]);
    assert!(matches!(
        open_note(&oversized, &[log.verifier()]),
        Err(NoteError::TooLarge { .. })
    ));
    assert_eq!(
        outcome(sign_note("bell\x07\n", &log)),
        "note contains control character U+0007 at byte 4"
    );
}

/// A log of 13 entries, its signed checkpoint and the proof file of entry 5.
fn proof_file(log: &NoteSigner) -> InclusionProofFile {
    InclusionProofFile {
        extra: None,
        index: 5,
        proof: inclusion_proof(&leaves(13), 5, 13).unwrap(),
        checkpoint_note: checkpoint(13).sign(log).unwrap(),
    }
}

#[test]
fn tlog_proof_round_trip_and_verification() {
    let log = signer("steward.example/audit", 1);
    let verifiers = [log.verifier()];
    let file = proof_file(&log);
    let text = file.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 5\n"));
    assert_eq!(InclusionProofFile::parse(&text).unwrap(), file);
    assert_eq!(InclusionProofFile::parse(&text).unwrap().to_text(), text);
    assert_eq!(
        verify_inclusion_file(&file, &entry(5), &verifiers).unwrap(),
        checkpoint(13)
    );

    // With extra data, and for an entry whose proof is empty.
    let with_extra = InclusionProofFile {
        extra: Some(b"artifact.tar.gz".to_vec()),
        ..file.clone()
    };
    let text = with_extra.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra YXJ0aWZhY3QudGFyLmd6\nindex 5\n"));
    assert_eq!(InclusionProofFile::parse(&text).unwrap(), with_extra);
    let single = InclusionProofFile {
        extra: Some(Vec::new()),
        index: 0,
        proof: Vec::new(),
        checkpoint_note: checkpoint(1).sign(&log).unwrap(),
    };
    let text = single.to_text();
    assert!(
        text.starts_with("c2sp.org/tlog-proof@v1\nextra \nindex 0\n\nsteward.example/audit\n1\n")
    );
    assert_eq!(InclusionProofFile::parse(&text).unwrap(), single);
    assert!(verify_inclusion_file(&single, &entry(0), &verifiers).is_ok());
}

#[test]
fn tlog_proof_tampering_is_rejected() {
    let log = signer("steward.example/audit", 1);
    let verifiers = [log.verifier()];
    let file = proof_file(&log);

    let mut flipped = file.clone();
    flipped.proof[1][7] ^= 0x10;
    let mut shortened = file.clone();
    shortened.proof.pop();
    let other_checkpoint = InclusionProofFile {
        checkpoint_note: checkpoint(12).sign(&log).unwrap(),
        ..file.clone()
    };
    let bigger_checkpoint = InclusionProofFile {
        checkpoint_note: checkpoint(14).sign(&log).unwrap(),
        ..file.clone()
    };
    let unknown_log = InclusionProofFile {
        checkpoint_note: checkpoint(13)
            .sign(&signer("steward.example/audit", 2))
            .unwrap(),
        ..file.clone()
    };
    let cases = [
        (
            "wrong index",
            InclusionProofFile {
                index: 4,
                ..file.clone()
            },
            entry(5),
        ),
        (
            "index past size",
            InclusionProofFile {
                index: 13,
                ..file.clone()
            },
            entry(5),
        ),
        ("flipped hash", flipped, entry(5)),
        ("missing hash", shortened, entry(5)),
        ("other checkpoint", other_checkpoint, entry(5)),
        ("bigger checkpoint", bigger_checkpoint, entry(5)),
        ("unknown log key", unknown_log, entry(5)),
        ("other entry", file.clone(), entry(6)),
    ];
    let table = cases
        .iter()
        .map(|(what, file, data)| {
            let message = outcome(verify_inclusion_file(file, data, &verifiers));
            // Cut the long hashes in root mismatches to keep this readable.
            format!("{what}: {}\n", excerpt(&message))
        })
        .collect::<String>();
    expect![[r#"
        wrong index: inclusion proof does not verify: computed root b09a08927016a6a2b…
        index past size: inclusion proof does not verify: index 13 is not below tree size…
        flipped hash: inclusion proof does not verify: computed root 6a5cfd7ed73006c28…
        missing hash: inclusion proof does not verify: proof is missing 1 hash
        other checkpoint: inclusion proof does not verify: computed root c0c1289f00605f8d7…
        bigger checkpoint: inclusion proof does not verify: computed root c0c1289f00605f8d7…
        unknown log key: note has no verified signature from a known key (1 from unknown …
        other entry: inclusion proof does not verify: computed root 3ca421dd9f0c76107…
    "#]]
    .assert_eq(&table);
}

#[test]
fn tlog_proof_parse_rejections() {
    let log = signer("steward.example/audit", 1);
    let good = proof_file(&log).to_text();
    let hash = BASE64.encode([7; 32]);
    let note = checkpoint(13).sign(&log).unwrap();
    let texts = [
        good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
        good.replacen("index 5", "index 05", 1),
        good.replacen("index 5", "index -5", 1),
        good.replacen("index 5", "index  5", 1),
        good.replacen("index 5\n", "", 1),
        good.replacen("index 5", "extra !!\nindex 5", 1),
        good.replacen("\n\n", "\nnot base64\n\n", 1),
        good.replacen("\n\n", &format!("\n{}\n\n", &hash[..40]), 1),
        format!(
            "c2sp.org/tlog-proof@v1\nindex 5\n{}\n{note}",
            format!("{hash}\n").repeat(65)
        ),
        "c2sp.org/tlog-proof@v1\nindex 5\n".to_owned(),
        "c2sp.org/tlog-proof@v1\nindex 5\n\n".to_owned(),
        "c2sp.org/tlog-proof@v1".to_owned(),
        format!(
            "c2sp.org/tlog-proof@v1\nindex 5\n\n{}",
            "x".repeat(PROOF_FILE_BYTES_MAX)
        ),
    ];
    let table = texts
        .iter()
        .map(|text| format!("{}\n", outcome(InclusionProofFile::parse(text))))
        .collect::<String>();
    expect![[r#"
        tlog proof line 1 is malformed: `c2sp.org/tlog-proof@v2` is not `c2sp.org/tlog-proof@v1`
        tlog proof line 2 is malformed: `index 05` is not `index` and a decimal number without leading zeros
        tlog proof line 2 is malformed: `index -5` is not `index` and a decimal number without leading zeros
        tlog proof line 2 is malformed: `index  5` is not `index` and a decimal number without leading zeros
        tlog proof line 2 is malformed: `SFM123z+yWXxX/dF/GJcQdXqJkaTaTAWWCj3PdS2iFQ=` is not `index` and a decimal number without leading zeros
        tlog proof line 2 is malformed: extra data is not canonical base64
        tlog proof line 7 is malformed: `not base64` is not the base64 of 32 bytes
        tlog proof line 7 is malformed: `BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH` is not the base64 of 32 bytes
        tlog proof line 67 is malformed: proof has more than 64 hashes
        tlog proof line 3 is malformed: the file ends before the checkpoint
        tlog proof line 3 is malformed: no checkpoint follows the proof
        tlog proof line 1 is malformed: the file ends before the checkpoint
        tlog proof is 278560 bytes, more than the 278528 allowed
    "#]]
    .assert_eq(&table);
}

/// The example of C2SP tlog-proof parses and prints back byte for byte. (Its
/// signatures are elided with `[...]`, so it cannot be verified.)
#[test]
fn c2sp_tlog_proof_example() {
    let text = "c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
— witness2.example TnKKVHLX[...]xwYwrSjgow==
— witness3.example S4X82uH5[...]3oEcROGLFQ==
";
    let file = InclusionProofFile::parse(text).unwrap();
    assert_eq!(file.index, 73_894);
    assert_eq!(file.proof.len(), 5);
    assert!(
        file.extra
            .as_deref()
            .unwrap()
            .starts_with(b"age-v1.2.1-darwin-arm64.tar.gz")
    );
    assert!(
        file.checkpoint_note
            .starts_with("example.com/fancylog\n109482\n")
    );
    assert_eq!(file.to_text(), text);
    assert!(matches!(
        verify_inclusion_file(&file, b"", &[]),
        Err(ProofFileError::Note(NoteError::MalformedSignature {
            line: 1,
            ..
        }))
    ));
}

/// Consistency proofs between two signed checkpoints, the way a verifier
/// following the log uses both modules together.
#[test]
fn consistency_between_signed_checkpoints() {
    let log = signer("steward.example/audit", 1);
    let verifiers = [log.verifier()];
    let old = Checkpoint::open(&checkpoint(6).sign(&log).unwrap(), &verifiers).unwrap();
    let new = Checkpoint::open(&checkpoint(13).sign(&log).unwrap(), &verifiers).unwrap();
    let proof = consistency_proof(&leaves(13), old.size, new.size).unwrap();
    assert!(merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).is_ok());
    assert!(merkle::verify_consistency(old.size, new.size, &new.root, &old.root, &proof).is_err());
}

/// Deleting any one character of a signed checkpoint or of a proof file
/// must make it fail, and never panic.
#[test]
fn every_single_deletion_is_rejected() {
    let log = signer("l", 1);
    let verifiers = [log.verifier()];
    let file = InclusionProofFile {
        extra: Some(b"x".to_vec()),
        index: 2,
        proof: inclusion_proof(&leaves(3), 2, 3).unwrap(),
        checkpoint_note: Checkpoint {
            origin: "l".into(),
            ..checkpoint(3)
        }
        .sign(&log)
        .unwrap(),
    };
    let text = file.to_text();
    assert!(verify_inclusion_file(&file, &entry(2), &verifiers).is_ok());
    for (at, c) in text.char_indices() {
        let mangled = format!("{}{}", &text[..at], &text[at + c.len_utf8()..]);
        let result = InclusionProofFile::parse(&mangled)
            .and_then(|file| verify_inclusion_file(&file, &entry(2), &verifiers));
        assert!(result.is_err(), "accepted deletion at byte {at}");
    }
}
