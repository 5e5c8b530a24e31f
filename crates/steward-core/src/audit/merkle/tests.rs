//! Tests of the RFC 9162 Merkle tree: known answers from transparency-dev/merkle
//! and the C2SP merkle-tree example, then every tree of 1 to 70 leaves with
//! every index and old size, where honest proofs must verify and every
//! corruption must be rejected.

use expect_test::expect;

use super::*;

/// A hash from hex; test input only.
fn h(hex: &str) -> Hash {
    hex::decode(hex).unwrap().try_into().unwrap()
}

/// Leaf data of transparency-dev/merkle `proof/verify_test.go` (the in-code
/// vectors it had before commit bcba819 moved them to JSON), in hex.
const TD_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of the first 1..=8 `TD_LEAVES`, same source.
const TD_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `sha256SomeHash` of the same file: an arbitrary hash that is no node of
/// any tree here.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn td_leaf_hashes() -> Vec<Hash> {
    TD_LEAVES
        .iter()
        .map(|data| leaf_hash(&hex::decode(data).unwrap()))
        .collect()
}

fn td_root(size: u64) -> Hash {
    h(TD_ROOTS[usize::try_from(size).unwrap() - 1])
}

/// The Merkle Tree Hash straight from its recursive definition (RFC 9162
/// §2.1.1), as an independent reference for `CompactTree` and `root_of`.
fn reference_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
        }
    }
}

/// Distinct leaf hashes `leaf_hash(i as 8 bytes)` for `i in 0..n`.
fn numbered_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn primitives_match_rfc_6962() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(root_of(&[]), empty_root());
    assert_eq!(CompactTree::new().root(), empty_root());
    // The root of a one-leaf tree is that leaf's hash.
    assert_eq!(leaf_hash(b""), td_root(1));
    let leaves = td_leaf_hashes();
    assert_eq!(node_hash(&leaves[0], &leaves[1]), td_root(2));
}

#[test]
fn transparency_dev_roots() {
    let leaves = td_leaf_hashes();
    let mut tree = CompactTree::new();
    for (size, leaf) in (1..).zip(&leaves) {
        tree.push(*leaf);
        assert_eq!(tree.size(), size);
        assert_eq!(tree.root(), td_root(size), "compact tree, size {size}");
        let prefix = &leaves[..usize::try_from(size).unwrap()];
        assert_eq!(root_of(prefix), td_root(size), "root_of, size {size}");
        assert_eq!(
            reference_mth(prefix),
            td_root(size),
            "reference, size {size}"
        );
    }
    assert_eq!(
        hex::encode(tree.root()),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
}

#[test]
fn transparency_dev_inclusion_proofs() {
    // (1-based leaf, tree size, proof) from `inclusionProofs`.
    let vectors: [(u64, u64, Vec<Hash>); 5] = [
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            3,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            2,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ];
    let leaves = td_leaf_hashes();
    for (leaf, size, want) in vectors {
        let index = leaf - 1;
        assert_eq!(inclusion_proof(&leaves, index, size).unwrap(), want);
        let leaf = leaves[usize::try_from(index).unwrap()];
        check_inclusion(&leaf, index, size, &want, &td_root(size));
    }
    // `{0, 0, nil}`: there is no leaf in an empty tree.
    assert_eq!(
        inclusion_proof(&leaves, 0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
}

#[test]
fn transparency_dev_consistency_proofs() {
    // (old size, new size, proof) from `consistencyProofs`.
    let vectors: [(u64, u64, Vec<Hash>); 5] = [
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ];
    let leaves = td_leaf_hashes();
    for (old_size, new_size, want) in vectors {
        assert_eq!(
            consistency_proof(&leaves, old_size, new_size).unwrap(),
            want
        );
        check_consistency(
            old_size,
            new_size,
            &td_root(old_size),
            &td_root(new_size),
            &want,
        );
    }
}

/// The 7-leaf example of C2SP merkle-tree (commit 76d4d10, "merkle-tree: new
/// spec"), with the first seven transparency-dev leaves as `d[0..7]`.
#[test]
fn c2sp_seven_leaf_example() {
    let leaves = td_leaf_hashes();
    let [a, b, c, d, e, f, g] = <[Hash; 7]>::try_from(&leaves[..7]).unwrap();
    let h_ = node_hash(&a, &b);
    let i = node_hash(&c, &d);
    let j = node_hash(&e, &f);
    let k = node_hash(&h_, &i);
    let l = node_hash(&j, &g);
    let root = node_hash(&k, &l);
    assert_eq!(root, td_root(7));
    assert_eq!(root_of(&leaves[..7]), root);

    for (index, want) in [
        (0, vec![b, i, l]),
        (3, vec![c, h_, l]),
        (4, vec![f, g, k]),
        (6, vec![j, k]),
    ] {
        assert_eq!(
            inclusion_proof(&leaves, index, 7).unwrap(),
            want,
            "index {index}"
        );
        let leaf = leaves[usize::try_from(index).unwrap()];
        check_inclusion(&leaf, index, 7, &want, &root);
    }
    for (old_size, want) in [(3, vec![c, d, h_, l]), (4, vec![l]), (6, vec![j, g, k])] {
        assert_eq!(
            consistency_proof(&leaves, old_size, 7).unwrap(),
            want,
            "old size {old_size}"
        );
        check_consistency(old_size, 7, &td_root(old_size), &root, &want);
    }
}

/// Every index of every tree of 1 to 70 leaves.
#[test]
fn all_inclusion_proofs_up_to_70_leaves() {
    let leaves = numbered_leaves(70);
    let mut probes = 0;
    for size in 1..=70 {
        let root = root_of(&leaves[..usize::try_from(size).unwrap()]);
        for index in 0..size {
            let proof = inclusion_proof(&leaves, index, size).unwrap();
            let leaf = leaves[usize::try_from(index).unwrap()];
            probes += check_inclusion(&leaf, index, size, &proof, &root);
        }
    }
    // 70·71/2 honest proofs, each with at least 14 corruptions.
    assert!(probes > 2485 * 14, "only {probes} probes");
}

/// Every old size of every tree of 1 to 70 leaves.
#[test]
fn all_consistency_proofs_up_to_70_leaves() {
    let leaves = numbered_leaves(70);
    let roots: Vec<Hash> = (0..=70).map(|n| root_of(&leaves[..n])).collect();
    let mut probes = 0;
    for new_size in 1..=70 {
        for old_size in 1..=new_size {
            let proof = consistency_proof(&leaves, old_size, new_size).unwrap();
            let old_root = roots[usize::try_from(old_size).unwrap()];
            let new_root = roots[usize::try_from(new_size).unwrap()];
            probes += check_consistency(old_size, new_size, &old_root, &new_root, &proof);
        }
        // The empty tree is a prefix of everything, with no proof.
        assert_eq!(
            consistency_proof(&leaves, 0, new_size).unwrap(),
            Vec::<Hash>::new()
        );
        verify_consistency(
            0,
            new_size,
            &empty_root(),
            &roots[usize::try_from(new_size).unwrap()],
            &[],
        )
        .unwrap();
    }
    assert!(probes > 2485 * 16, "only {probes} probes");
}

/// Verifies an honest inclusion proof, then checks that each corruption of it
/// is rejected. Returns how many corruptions were tried.
fn check_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> usize {
    verify_inclusion(leaf, index, size, proof, root)
        .unwrap_or_else(|err| panic!("honest proof of {index} in {size}: {err}"));

    let some = h(SOME_HASH);
    let garbage = [0; 32];
    let with = |edit: &dyn Fn(&mut Vec<Hash>)| {
        let mut changed = proof.to_vec();
        edit(&mut changed);
        changed
    };
    let mut probes: Vec<(String, Hash, u64, u64, Vec<Hash>, Hash)> = vec![
        (
            "index - 1".into(),
            *leaf,
            index.wrapping_sub(1),
            size,
            proof.to_vec(),
            *root,
        ),
        (
            "index + 1".into(),
            *leaf,
            index + 1,
            size,
            proof.to_vec(),
            *root,
        ),
        (
            "index ^ 2".into(),
            *leaf,
            index ^ 2,
            size,
            proof.to_vec(),
            *root,
        ),
        (
            "size * 2".into(),
            *leaf,
            index,
            size * 2,
            proof.to_vec(),
            *root,
        ),
        (
            "size / 2".into(),
            *leaf,
            index,
            size / 2,
            proof.to_vec(),
            *root,
        ),
        (
            "wrong leaf".into(),
            leaf_hash(b"WrongLeaf"),
            index,
            size,
            proof.to_vec(),
            *root,
        ),
        (
            "empty root".into(),
            *leaf,
            index,
            size,
            proof.to_vec(),
            empty_root(),
        ),
        (
            "random root".into(),
            *leaf,
            index,
            size,
            proof.to_vec(),
            some,
        ),
        (
            "appended garbage".into(),
            *leaf,
            index,
            size,
            with(&|p| p.push(garbage)),
            *root,
        ),
        (
            "appended root".into(),
            *leaf,
            index,
            size,
            with(&|p| p.push(*root)),
            *root,
        ),
        (
            "prepended garbage".into(),
            *leaf,
            index,
            size,
            with(&|p| p.insert(0, garbage)),
            *root,
        ),
        (
            "prepended root".into(),
            *leaf,
            index,
            size,
            with(&|p| p.insert(0, *root)),
            *root,
        ),
    ];
    if !proof.is_empty() {
        probes.push((
            "removed last".into(),
            *leaf,
            index,
            size,
            with(&|p| p.truncate(p.len() - 1)),
            *root,
        ));
        probes.push((
            "removed first".into(),
            *leaf,
            index,
            size,
            with(&|p| {
                p.remove(0);
            }),
            *root,
        ));
        probes.push((
            "inserted component".into(),
            *leaf,
            index,
            size,
            with(&|p| p.insert(1, some)),
            *root,
        ));
    }
    for i in 0..proof.len() {
        for (byte, bit) in [(0, 3), (31, 0)] {
            let flipped = with(&|p| p[i][byte] ^= 1 << bit);
            probes.push((
                format!("proof[{i}] byte {byte} bit {bit}"),
                *leaf,
                index,
                size,
                flipped,
                *root,
            ));
        }
    }
    for (what, leaf, index, size, proof, root) in &probes {
        assert!(
            verify_inclusion(leaf, *index, *size, proof, root).is_err(),
            "accepted {what} for an inclusion proof of {index} in {size}"
        );
    }
    probes.len()
}

/// Verifies an honest consistency proof, then checks that each corruption of
/// it is rejected. Returns how many corruptions were tried.
fn check_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> usize {
    verify_consistency(old_size, new_size, old_root, new_root, proof)
        .unwrap_or_else(|err| panic!("honest proof of {old_size} to {new_size}: {err}"));

    let some = h(SOME_HASH);
    let garbage = [0; 32];
    let with = |edit: &dyn Fn(&mut Vec<Hash>)| {
        let mut changed = proof.to_vec();
        edit(&mut changed);
        changed
    };
    let (m, n, r1, r2) = (old_size, new_size, *old_root, *new_root);
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        ("old size - 1".into(), m - 1, n, r1, r2, proof.to_vec()),
        ("new size * 2".into(), m, n * 2, r1, r2, proof.to_vec()),
        (
            "appended garbage".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.push(garbage)),
        ),
        (
            "prepended garbage".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.insert(0, garbage)),
        ),
        (
            "appended old root".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.push(r1)),
        ),
        (
            "appended new root".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.push(r2)),
        ),
        (
            "prepended old root".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.insert(0, r1)),
        ),
        (
            "prepended new root".into(),
            m,
            n,
            r1,
            r2,
            with(&|p| p.insert(0, r2)),
        ),
    ];
    if m < n {
        probes.extend([
            ("old size + 1".into(), m + 1, n, r1, r2, proof.to_vec()),
            ("old size ^ 2".into(), m ^ 2, n, r1, r2, proof.to_vec()),
            ("new size / 2".into(), m, n / 2, r1, r2, proof.to_vec()),
            ("wrong old root".into(), m, n, some, r2, proof.to_vec()),
            ("wrong new root".into(), m, n, r1, some, proof.to_vec()),
            ("swapped roots".into(), m, n, r2, r1, proof.to_vec()),
            ("empty proof".into(), m, n, r1, r2, Vec::new()),
            (
                "truncated proof".into(),
                m,
                n,
                r1,
                r2,
                with(&|p| p.truncate(p.len() - 1)),
            ),
            (
                "removed first".into(),
                m,
                n,
                r1,
                r2,
                with(&|p| {
                    p.remove(0);
                }),
            ),
            (
                "prepended proof[0]".into(),
                m,
                n,
                r1,
                r2,
                with(&|p| p.insert(0, p[0])),
            ),
            (
                "inserted component".into(),
                m,
                n,
                r1,
                r2,
                with(&|p| p.insert(1, some)),
            ),
        ]);
        for i in 0..proof.len() {
            for (byte, bit) in [(0, 4), (31, 7)] {
                let flipped = with(&|p| p[i][byte] ^= 1 << bit);
                probes.push((
                    format!("proof[{i}] byte {byte} bit {bit}"),
                    m,
                    n,
                    r1,
                    r2,
                    flipped,
                ));
            }
        }
    } else {
        // Equal sizes: the only honest proof is empty and the roots are equal.
        probes.extend([
            ("different new root".into(), m, n, r1, some, Vec::new()),
            ("different old root".into(), m, n, some, r2, Vec::new()),
            ("non-empty proof".into(), m, n, r1, r2, vec![r1]),
            ("old size + 1".into(), m + 1, n, r1, r2, Vec::new()),
        ]);
    }
    for (what, m, n, r1, r2, proof) in &probes {
        assert!(
            verify_consistency(*m, *n, r1, r2, proof).is_err(),
            "accepted {what} for a consistency proof of {old_size} to {new_size}"
        );
    }
    probes.len()
}

/// Name, old size, new size, old root, new root, proof.
type ConsistencyCase = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

/// Name, leaf, index, size, proof, root.
type InclusionCase = (&'static str, Hash, u64, u64, Vec<Hash>, Hash);

/// Renders a verification outcome for the tables below.
fn outcome(result: Result<(), ProofError>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(err) => err.to_string(),
    }
}

#[test]
fn consistency_edge_cases() {
    let e = empty_root();
    let x = h(SOME_HASH);
    let y = leaf_hash(b"y");
    let leaves = numbered_leaves(5);
    let r5 = root_of(&leaves);
    let cases: [ConsistencyCase; 16] = [
        ("(0,0) empty roots", 0, 0, e, e, vec![]),
        ("(0,0) proof", 0, 0, e, e, vec![e]),
        ("(0,0) other root", 0, 0, x, x, vec![]),
        ("(0,0) roots differ", 0, 0, e, x, vec![]),
        ("(0,5)", 0, 5, e, r5, vec![]),
        ("(0,5) proof", 0, 5, e, r5, vec![r5]),
        ("(0,5) other root", 0, 5, x, r5, vec![]),
        ("(1,1)", 1, 1, x, x, vec![]),
        ("(1,1) roots differ", 1, 1, x, y, vec![]),
        ("(1,1) proof", 1, 1, x, x, vec![x]),
        ("(1,0) time travel", 1, 0, x, y, vec![]),
        ("(2,1) time travel", 2, 1, x, y, vec![]),
        ("(1,2) empty proof", 1, 2, x, y, vec![]),
        ("(3,7) empty proof", 3, 7, x, y, vec![]),
        ("(3,7) short proof", 3, 7, x, y, vec![x]),
        ("(max-1,max) empty", u64::MAX - 1, u64::MAX, x, y, vec![]),
    ];
    let table: String = cases
        .into_iter()
        .map(|(name, m, n, r1, r2, proof)| {
            format!(
                "{name}: {}\n",
                outcome(verify_consistency(m, n, &r1, &r2, &proof))
            )
        })
        .collect();
    expect![[r#"
        (0,0) empty roots: ok
        (0,0) proof: proof has 1 extra hash
        (0,0) other root: root abacaba000000000000000000000000000000000000000000060061e00123456 of a tree of size 0 is not the empty root e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
        (0,0) roots differ: old root e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 and new root abacaba000000000000000000000000000000000000000000060061e00123456 differ at the same tree size 0
        (0,5): ok
        (0,5) proof: proof has 1 extra hash
        (0,5) other root: root abacaba000000000000000000000000000000000000000000060061e00123456 of a tree of size 0 is not the empty root e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
        (1,1): ok
        (1,1) roots differ: old root abacaba000000000000000000000000000000000000000000060061e00123456 and new root 3553eb351adac70cf5caa4fefa1caf8cec726403fe4b34c14f1bb8d980c20b95 differ at the same tree size 1
        (1,1) proof: proof has 1 extra hash
        (1,0) time travel: old tree size 1 is larger than new tree size 0
        (2,1) time travel: old tree size 2 is larger than new tree size 1
        (1,2) empty proof: proof is missing 1 hash
        (3,7) empty proof: proof is missing 4 hashes
        (3,7) short proof: proof is missing 3 hashes
        (max-1,max) empty: proof is missing 64 hashes
    "#]]
    .assert_eq(&table);
}

#[test]
fn inclusion_edge_cases() {
    let leaf = leaf_hash(b"data");
    let x = h(SOME_HASH);
    let cases: [InclusionCase; 10] = [
        ("(0 in 0)", leaf, 0, 0, vec![], leaf),
        ("(1 in 0)", leaf, 1, 0, vec![], leaf),
        ("(2 in 1)", leaf, 2, 1, vec![], leaf),
        ("(8 in 8)", leaf, 8, 8, vec![], leaf),
        ("(0 in 1)", leaf, 0, 1, vec![], leaf),
        ("(0 in 1) wrong root", leaf, 0, 1, vec![], x),
        ("(0 in 1) extra hashes", leaf, 0, 1, vec![x, x], leaf),
        ("(0 in 2) missing hash", leaf, 0, 2, vec![], leaf),
        ("(5 in 7) missing hashes", leaf, 5, 7, vec![x], leaf),
        (
            "(max-1 in max) empty",
            leaf,
            u64::MAX - 1,
            u64::MAX,
            vec![],
            leaf,
        ),
    ];
    let table: String = cases
        .into_iter()
        .map(|(name, leaf, index, size, proof, root)| {
            format!(
                "{name}: {}\n",
                outcome(verify_inclusion(&leaf, index, size, &proof, &root))
            )
        })
        .collect();
    expect![[r#"
        (0 in 0): index 0 is not below tree size 0
        (1 in 0): index 1 is not below tree size 0
        (2 in 1): index 2 is not below tree size 1
        (8 in 8): index 8 is not below tree size 8
        (0 in 1): ok
        (0 in 1) wrong root: computed root 0d3aed023148ffd2a259fbd0cdc7fb3cf975658760d3775b82af6f90aacc2dfc does not match expected root abacaba000000000000000000000000000000000000000000060061e00123456
        (0 in 1) extra hashes: proof has 2 extra hashes
        (0 in 2) missing hash: proof is missing 1 hash
        (5 in 7) missing hashes: proof is missing 2 hashes
        (max-1 in max) empty: proof is missing 63 hashes
    "#]]
    .assert_eq(&table);
}

#[test]
fn generation_errors() {
    let leaves = numbered_leaves(8);
    let table = [
        inclusion_proof(&leaves, 0, 9),
        inclusion_proof(&leaves, 8, 8),
        inclusion_proof(&leaves, u64::MAX, u64::MAX),
        consistency_proof(&leaves, 5, 3),
        consistency_proof(&leaves, 3, 9),
        consistency_proof(&leaves, 0, 0),
        consistency_proof(&leaves, 0, 8),
        consistency_proof(&leaves, 8, 8),
    ]
    .into_iter()
    .map(|result| match result {
        Ok(proof) => format!("ok, {} hashes\n", proof.len()),
        Err(err) => format!("{err}\n"),
    })
    .collect::<String>();
    expect![[r#"
        tree size 9 exceeds the 8 leaves given
        index 8 is not below tree size 8
        tree size 18446744073709551615 exceeds the 8 leaves given
        old tree size 5 is larger than new tree size 3
        tree size 9 exceeds the 8 leaves given
        ok, 0 hashes
        ok, 0 hashes
        ok, 0 hashes
    "#]]
    .assert_eq(&table);
}

#[test]
fn compact_tree_matches_reference_at_every_size() {
    let leaves = numbered_leaves(300);
    let mut tree = CompactTree::new();
    for n in 1..=leaves.len() {
        tree.push(leaves[n - 1]);
        assert_eq!(tree.root(), reference_mth(&leaves[..n]), "size {n}");
        assert_eq!(
            tree.stack.len(),
            usize::try_from(tree.size().count_ones()).unwrap()
        );
    }
}

/// A million pushes with roots taken along the way: the verifier's streaming
/// workload. Leaves are distinct counters rather than hashes to keep the
/// unoptimised test build quick; roots at sizes up to 2^16 + 1 are checked
/// against the recursive definition and the final root is pinned.
#[test]
fn compact_tree_streams_a_million_leaves() {
    const N: u64 = 1_000_000;
    let counter = |i: u64| {
        let mut leaf = [0; 32];
        leaf[..8].copy_from_slice(&i.to_be_bytes());
        leaf
    };
    let checked = [1, 2, 3, 1000, 65_535, 65_536, 65_537];
    let mut tree = CompactTree::new();
    let mut roots = Vec::new();
    for i in 0..N {
        tree.push(counter(i));
        // Taking the root is cheap enough to do every few hundred leaves.
        if checked.contains(&tree.size()) || tree.size().is_multiple_of(997) {
            roots.push((tree.size(), tree.root()));
        }
        assert!(tree.stack.len() <= 64);
    }
    assert_eq!(tree.size(), N);
    assert_eq!(
        roots.len(),
        checked.len() + usize::try_from(N / 997).unwrap()
    );
    let leaves: Vec<Hash> = (0..65_537).map(counter).collect();
    for (size, root) in roots.iter().filter(|(size, _)| checked.contains(size)) {
        let prefix = &leaves[..usize::try_from(*size).unwrap()];
        assert_eq!(*root, reference_mth(prefix), "size {size}");
    }
    expect!["6187bb727e2f7a19e268758c5a3232742cfe02c01272d238471a591150ebf2a1"]
        .assert_eq(&hex::encode(tree.root()));
}

#[test]
fn error_messages() {
    let zero = [0; 32];
    let one = [1; 32];
    let messages = [
        ProofError::ExtraHashes { extra: 1 },
        ProofError::ExtraHashes { extra: 2 },
        ProofError::MissingHashes { missing: 1 },
        ProofError::RootMismatch {
            computed: zero,
            expected: one,
        },
        ProofError::OldRootMismatch {
            computed: zero,
            expected: one,
        },
        ProofError::NewRootMismatch {
            computed: zero,
            expected: one,
        },
    ]
    .iter()
    .map(|err| format!("{err}\n"))
    .collect::<String>();
    expect![[r#"
        proof has 1 extra hash
        proof has 2 extra hashes
        proof is missing 1 hash
        computed root 0000000000000000000000000000000000000000000000000000000000000000 does not match expected root 0101010101010101010101010101010101010101010101010101010101010101
        computed old root 0000000000000000000000000000000000000000000000000000000000000000 does not match expected old root 0101010101010101010101010101010101010101010101010101010101010101
        computed new root 0000000000000000000000000000000000000000000000000000000000000000 does not match expected new root 0101010101010101010101010101010101010101010101010101010101010101
    "#]]
    .assert_eq(&messages);
}
