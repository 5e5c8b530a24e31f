//! The audit log's Merkle tree: RFC 9162 §2.1 (as restated by C2SP merkle-tree,
//! and hash-compatible with RFC 6962) over SHA-256.
//!
//! This module hashes leaves and interior nodes, keeps an incremental
//! [`CompactTree`] for streaming roots, generates inclusion and consistency
//! proofs from the full list of leaf hashes, and verifies such proofs.
//!
//! Invariants:
//! - leaf and interior hashes are domain-separated (`0x00` and `0x01`
//!   prefixes), so an interior node can never be presented as a leaf;
//! - a [`CompactTree`] of size `n` holds exactly one subtree root per set bit
//!   of `n`, largest subtree first, hence at most 64 of them;
//! - verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step: every
//!   proof hash must be consumed and none may be missing, so a proof verifies
//!   for exactly one `(index, size)` or `(old size, new size)` shape;
//! - nothing here panics on caller input: sizes and indices are checked and
//!   reported through [`ProofError`].

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix of leaf hashes (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// An append-only tree that keeps only the roots of its maximal perfect
/// subtrees (a "compact range" starting at leaf 0).
///
/// Pushing a leaf costs one leaf-sized move plus, amortised, one node hash;
/// [`CompactTree::root`] costs at most 63 node hashes. This is what lets a
/// verifier stream a million entries and check roots at any size along the
/// way without keeping the leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    /// Roots of the perfect subtrees covering leaves `0..size`, left to right;
    /// subtree `i` has `2^h` leaves where `h` is the `i`-th highest set bit of
    /// `size`, so `stack.len() == size.count_ones()`.
    stack: Vec<Hash>,
}

impl CompactTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    ///
    /// # Panics
    ///
    /// Panics if the tree already holds `u64::MAX` leaves, which would take
    /// centuries of pushes to reach.
    pub fn push(&mut self, leaf: Hash) {
        // Appending a leaf is binary increment: each trailing one bit of the
        // size is a perfect subtree as tall as the one being carried, and the
        // two merge into the next level up.
        let mut carried = leaf;
        for _ in 0..self.size.trailing_ones() {
            if let Some(left) = self.stack.pop() {
                carried = node_hash(&left, &carried);
            }
        }
        self.stack.push(carried);
        self.size += 1;
    }

    /// The number of leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree of all leaves pushed so far.
    pub fn root(&self) -> Hash {
        // MTH splits off the largest power of two first, so the root is the
        // subtree roots folded from the right: r0 ‖ (r1 ‖ (… ‖ rk)).
        let mut subtrees = self.stack.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// The root of the tree whose leaf hashes are `leaves`.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut tree = CompactTree::new();
    for leaf in leaves {
        tree.push(*leaf);
    }
    tree.root()
}

/// Why a proof could not be generated or did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index lies outside the tree.
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// Proof generation was asked about more leaves than it was given.
    #[error("tree size {size} exceeds the {available} leaves given")]
    SizeExceedsLeaves { size: u64, available: usize },
    /// A consistency proof was asked to go back in time.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeLarger { old_size: u64, new_size: u64 },
    /// The proof has hashes left over once the path reached the root.
    #[error("proof has {extra} extra {}", hashes(.extra))]
    ExtraHashes { extra: usize },
    /// The proof ran out of hashes before the path reached the root.
    #[error("proof is missing {missing} {}", hashes(.missing))]
    MissingHashes { missing: usize },
    /// An inclusion proof leads to a different root.
    #[error(
        "computed root {} does not match expected root {}",
        hex::encode(.computed),
        hex::encode(.expected)
    )]
    RootMismatch { computed: Hash, expected: Hash },
    /// A consistency proof does not lead back to the old root.
    #[error(
        "computed old root {} does not match expected old root {}",
        hex::encode(.computed),
        hex::encode(.expected)
    )]
    OldRootMismatch { computed: Hash, expected: Hash },
    /// A consistency proof does not lead to the new root.
    #[error(
        "computed new root {} does not match expected new root {}",
        hex::encode(.computed),
        hex::encode(.expected)
    )]
    NewRootMismatch { computed: Hash, expected: Hash },
    /// Two trees of the same size must be the same tree.
    #[error(
        "old root {} and new root {} differ at the same tree size {size}",
        hex::encode(.old_root),
        hex::encode(.new_root)
    )]
    RootsDiffer {
        size: u64,
        old_root: Hash,
        new_root: Hash,
    },
    /// A tree of size 0 can only have the empty root.
    #[error(
        "root {} of a tree of size 0 is not the empty root {}",
        hex::encode(.root),
        hex::encode(empty_root())
    )]
    NotEmptyRoot { root: Hash },
}

/// "hash" or "hashes", so that messages read naturally for a count of one.
fn hashes(count: &usize) -> &'static str {
    if *count == 1 { "hash" } else { "hashes" }
}

/// The inclusion proof (RFC 9162 §2.1.3.1 `PATH`) of leaf `index` in the tree
/// made of the first `size` hashes of `leaves`.
///
/// Hashes O(size) nodes; the proof lists siblings from the leaf up to the
/// root's child.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    let tree = prefix(leaves, size)?;
    // `index < size <= leaves.len()`, so the conversion cannot fail.
    let position = match usize::try_from(index) {
        Ok(position) if index < size => position,
        _ => return Err(ProofError::IndexOutOfRange { index, size }),
    };
    let mut proof = Vec::new();
    path(position, tree, &mut proof);
    Ok(proof)
}

/// The consistency proof (RFC 9162 §2.1.4.1 `PROOF`) that the tree of the
/// first `old_size` hashes of `leaves` is a prefix of the tree of the first
/// `new_size`.
///
/// Equal sizes and an empty old tree need no proof, so those give an empty
/// list. Hashes O(new_size) nodes.
pub fn consistency_proof(
    leaves: &[Hash],
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeLarger { old_size, new_size });
    }
    let tree = prefix(leaves, new_size)?;
    let mut proof = Vec::new();
    // `old_size <= new_size <= leaves.len()`, so the conversion cannot fail.
    if let Ok(old) = usize::try_from(old_size)
        && old > 0
        && old < tree.len()
    {
        subproof(old, tree, true, &mut proof);
    }
    Ok(proof)
}

/// The first `size` leaves, or an error if there are fewer.
fn prefix(leaves: &[Hash], size: u64) -> Result<&[Hash], ProofError> {
    usize::try_from(size)
        .ok()
        .and_then(|size| leaves.get(..size))
        .ok_or(ProofError::SizeExceedsLeaves {
            size,
            available: leaves.len(),
        })
}

/// The largest power of two strictly below `n`, for `n >= 2`: where MTH
/// splits a tree of `n` leaves.
fn split_point(n: usize) -> usize {
    let below = n.saturating_sub(1).max(1);
    1 << (usize::BITS - 1 - below.leading_zeros())
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[n])`, appended to `out`.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let (left, right) = leaves.split_at(split_point(leaves.len()));
    if m < left.len() {
        path(m, left, out);
        out.push(root_of(right));
    } else {
        path(m - left.len(), right, out);
        out.push(root_of(left));
    }
}

/// RFC 9162 §2.1.4.1 `SUBPROOF(m, D[n], b)`, appended to `out`; requires
/// `0 < m <= n`.
fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    if m == leaves.len() {
        // The old tree's root is known to the verifier only when this subtree
        // is the whole old tree (`complete`); otherwise it must be sent.
        if !complete {
            out.push(root_of(leaves));
        }
        return;
    }
    let (left, right) = leaves.split_at(split_point(leaves.len()));
    if m <= left.len() {
        subproof(m, left, complete, out);
        out.push(root_of(right));
    } else {
        subproof(m - left.len(), right, false, out);
        out.push(root_of(left));
    }
}

/// Checks that `proof` proves `leaf` is at `index` in the tree of `size`
/// leaves with root `root`, exactly as RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // `fn` walks the leaf's path and `sn` the last leaf's path; they meet at
    // the root, where `sn` reaches 0.
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for (used, p) in proof.iter().enumerate() {
        if s_n == 0 {
            return Err(ProofError::ExtraHashes {
                extra: proof.len() - used,
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // On the right border, levels without a sibling are skipped.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::MissingHashes {
            missing: steps_to_root(f_n, s_n),
        });
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            computed: r,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that `proof` proves the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root
/// `new_root`, as RFC 9162 §2.1.4.2.
///
/// RFC 9162 only defines the algorithm for `0 < old_size < new_size`; the
/// edges follow C2SP merkle-tree: equal sizes need an empty proof and equal
/// roots, and the empty tree is a prefix of every tree with an empty proof.
/// Unlike C2SP, a size-0 root must also be [`empty_root`], because it is the
/// only root a tree of size 0 can have. (transparency-dev/merkle instead
/// rejects every `old_size == 0` as meaningless; callers that start from an
/// empty log would then have to special-case their first checkpoint.)
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeLarger { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::ExtraHashes { extra: proof.len() });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::NotEmptyRoot { root: *old_root });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootsDiffer {
                size: old_size,
                old_root: *old_root,
                new_root: *new_root,
            });
        }
        return Ok(());
    }

    // From here on 0 < old_size < new_size.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // Step 4: skip the levels where the old tree's last leaf is a right child;
    // its path starts at the first level where it is a left child.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 2: when the old tree is perfect, its root is the starting node and
    // the proof omits it.
    let old_is_perfect = old_size.is_power_of_two();
    // Step 1: an empty proof always fails.
    let (first, rest) = match (old_is_perfect, proof.split_first()) {
        (_, None) => {
            return Err(ProofError::MissingHashes {
                missing: usize::from(!old_is_perfect) + steps_to_root(f_n, s_n),
            });
        }
        (true, Some(_)) => (old_root, proof),
        (false, Some((first, rest))) => (first, rest),
    };
    let mut f_r = *first;
    let mut s_r = *first;
    for (used, c) in rest.iter().enumerate() {
        if s_n == 0 {
            return Err(ProofError::ExtraHashes {
                extra: rest.len() - used,
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::MissingHashes {
            missing: steps_to_root(f_n, s_n),
        });
    }
    if f_r != *old_root {
        return Err(ProofError::OldRootMismatch {
            computed: f_r,
            expected: *old_root,
        });
    }
    if s_r != *new_root {
        return Err(ProofError::NewRootMismatch {
            computed: s_r,
            expected: *new_root,
        });
    }
    Ok(())
}

/// How many more proof hashes the RFC 9162 verification loops would consume
/// from state `(fn, sn)` before `sn` reaches 0. The loops' control flow
/// depends only on `fn` and `sn`, never on hash values, so this is exact.
fn steps_to_root(mut f_n: u64, mut s_n: u64) -> usize {
    let mut steps = 0;
    while s_n != 0 {
        if f_n & 1 == 1 || f_n == s_n {
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        }
        f_n >>= 1;
        s_n >>= 1;
        steps += 1;
    }
    steps
}

#[cfg(test)]
mod tests;
