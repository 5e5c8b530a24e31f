//! The content-addressed blob folder: `blobs/sha256/<hex>`.
//!
//! Invariants:
//! - A blob file exists only under the digest of its bytes: uploads stream into a temporary
//!   file, are hashed and size-limited on the way, fsynced, and renamed into place only when
//!   the digest matches.
//! - Reads re-hash: a blob whose bytes no longer match its name is an error, never served.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use steward_core::domain::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sealed::{DataKey, Opener, SEGMENT_BYTES, Sealer, TAG_BYTES};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const READ_CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("uploaded bytes have digest `{actual}`, not the `{expected}` they were sent as")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob `{0}` not found")]
    NotFound(String),
    #[error("blob `{digest}` is corrupt: its bytes now hash to `{actual}`")]
    Corrupt { digest: String, actual: String },
    #[error("upload was interrupted: {0}")]
    Upload(String),
    #[error("sealed blob `{digest}`: {source}")]
    Sealed {
        digest: String,
        source: crate::sealed::SealError,
    },
    #[error("blob folder `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A temporary upload file, removed when dropped (a no-op once it has been renamed).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

impl BlobStore {
    /// `root` is the `blobs` folder; it is created if missing.
    pub fn open(root: &Path) -> Result<BlobStore, BlobError> {
        for dir in [root.join("sha256"), root.join("sealed"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }

    /// Where a sealed (encrypted) blob lives: under the digest of its ciphertext, so sealed
    /// files are content-addressed too, and two sealings of one blob (each with its own data
    /// key) never overwrite each other; the database says which one is in use.
    pub fn sealed_path(&self, ciphertext_digest: &Digest) -> PathBuf {
        self.root.join("sealed").join(ciphertext_digest.hex())
    }

    fn temp_file(&self) -> TempFile {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        TempFile(
            self.root
                .join("tmp")
                .join(format!("upload-{}-{n}", std::process::id())),
        )
    }

    /// Streams `chunks` into the store. With `expected`, the bytes must hash to it.
    pub async fn put<S, B, E>(
        &self,
        mut chunks: S,
        expected: Option<&Digest>,
        size_max: u64,
    ) -> Result<(Digest, u64), BlobError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let temp = self.temp_file();
        // If this future is dropped (client gone, request timed out), `temp` still removes
        // the partial upload; after a successful rename there is nothing left to remove.
        self.put_into(&temp.0, &mut chunks, expected, size_max)
            .await
    }

    async fn put_into<S, B, E>(
        &self,
        temp_path: &Path,
        chunks: &mut S,
        expected: Option<&Digest>,
        size_max: u64,
    ) -> Result<(Digest, u64), BlobError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(temp_path)
            .await
            .map_err(io(temp_path))?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| BlobError::Upload(err.to_string()))?;
            let bytes = chunk.as_ref();
            size += bytes.len() as u64;
            if size > size_max {
                return Err(BlobError::TooLarge { limit: size_max });
            }
            hasher.update(bytes);
            file.write_all(bytes).await.map_err(io(temp_path))?;
        }
        file.sync_all().await.map_err(io(temp_path))?;
        drop(file);
        let digest = Digest::from_sha256(hasher.finalize().into());
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let final_path = self.path(&digest);
        tokio::fs::rename(temp_path, &final_path)
            .await
            .map_err(io(&final_path))?;
        Ok((digest, size))
    }

    /// Reads a whole blob and checks it still hashes to its name.
    pub async fn read_verified(
        &self,
        digest: &Digest,
        size_max: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let path = self.path(digest);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.to_string()));
            }
            Err(err) => return Err(BlobError::Io { path, source: err }),
        };
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            let n = file.read(&mut chunk).await.map_err(io(&path))?;
            if n == 0 {
                break;
            }
            if (bytes.len() + n) as u64 > size_max {
                return Err(BlobError::TooLarge { limit: size_max });
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(BlobError::Corrupt {
                digest: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Re-hashes a blob without holding it in memory; returns its size.
    pub async fn verify(&self, digest: &Digest) -> Result<u64, BlobError> {
        let (actual, size) = hash_file(&self.path(digest), digest).await?;
        if actual != *digest {
            return Err(BlobError::Corrupt {
                digest: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(size)
    }

    /// The blob's bytes as a stream of chunks, for sending; call `verify` first.
    pub async fn open_stream(
        &self,
        digest: &Digest,
    ) -> Result<impl Stream<Item = std::io::Result<Vec<u8>>> + Send + use<>, BlobError> {
        let path = self.path(digest);
        let file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
        Ok(futures_util::stream::try_unfold(
            file,
            |mut file| async move {
                let mut chunk = vec![0u8; READ_CHUNK_BYTES];
                let n = file.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                chunk.truncate(n);
                Ok(Some((chunk, file)))
            },
        ))
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Streams `chunks` into the store sealed under `key` (P5): only ciphertext reaches the
    /// disk. The plaintext must hash to `expected`, which the segments are bound to.
    pub async fn put_sealed<S, B, E>(
        &self,
        mut chunks: S,
        expected: &Digest,
        size_max: u64,
        key: &DataKey,
    ) -> Result<Sealed, BlobError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let temp = self.temp_file();
        let mut writer = SealingWriter::create(&temp.0, expected, key).await?;
        let mut size: u64 = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| BlobError::Upload(err.to_string()))?;
            size += chunk.as_ref().len() as u64;
            if size > size_max {
                return Err(BlobError::TooLarge { limit: size_max });
            }
            writer.write(chunk.as_ref()).await?;
        }
        let sealed = writer.finish(expected, size).await?;
        let final_path = self.sealed_path(&sealed.ciphertext_digest);
        tokio::fs::rename(&temp.0, &final_path)
            .await
            .map_err(io(&final_path))?;
        Ok(sealed)
    }

    /// Seals a blob already stored in plaintext (re-hashing it on the way). The plaintext
    /// file stays until `remove_plaintext`, which the caller runs once the key is recorded.
    pub async fn seal_stored(&self, digest: &Digest, key: &DataKey) -> Result<Sealed, BlobError> {
        let path = self.path(digest);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.to_string()));
            }
            Err(err) => return Err(BlobError::Io { path, source: err }),
        };
        let temp = self.temp_file();
        let mut writer = SealingWriter::create(&temp.0, digest, key).await?;
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut chunk).await.map_err(io(&path))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            writer.write(&chunk[..n]).await?;
        }
        let sealed = writer.finish(digest, size).await.map_err(|err| match err {
            BlobError::DigestMismatch { actual, .. } => BlobError::Corrupt {
                digest: digest.to_string(),
                actual,
            },
            other => other,
        })?;
        let final_path = self.sealed_path(&sealed.ciphertext_digest);
        tokio::fs::rename(&temp.0, &final_path)
            .await
            .map_err(io(&final_path))?;
        Ok(sealed)
    }

    /// Removes a blob's plaintext file (after it has been sealed); absent is fine.
    pub async fn remove_plaintext(&self, digest: &Digest) -> Result<(), BlobError> {
        let path = self.path(digest);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(BlobError::Io { path, source: err }),
        }
    }

    /// Re-hashes a sealed blob's ciphertext against the digest recorded when it was sealed;
    /// returns the ciphertext size. Run before sending a byte: a changed file is never served.
    pub async fn verify_sealed(
        &self,
        digest: &Digest,
        ciphertext_digest: &Digest,
    ) -> Result<u64, BlobError> {
        let path = self.sealed_path(ciphertext_digest);
        let (actual, size) = hash_file(&path, digest).await?;
        if actual != *ciphertext_digest {
            return Err(BlobError::Corrupt {
                digest: format!("{digest} (sealed)"),
                actual: actual.to_string(),
            });
        }
        Ok(size)
    }

    /// The plaintext of a sealed blob as a stream of chunks. Each segment is authenticated
    /// before it is yielded, and the plaintext is re-hashed: the stream ends in an error, not
    /// in wrong bytes, if either check fails.
    pub async fn open_sealed_stream(
        &self,
        digest: &Digest,
        ciphertext_digest: &Digest,
        key: DataKey,
    ) -> Result<impl Stream<Item = std::io::Result<Vec<u8>>> + Send + use<>, BlobError> {
        let path = self.sealed_path(ciphertext_digest);
        let file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
        let len = file.metadata().await.map_err(io(&path))?.len();
        let (segments, _) =
            crate::sealed::segment_sizes(len).map_err(|source| BlobError::Sealed {
                digest: digest.to_string(),
                source,
            })?;
        let state = OpenState {
            file,
            opener: Opener::new(&key, digest.as_str()),
            digest: digest.clone(),
            hasher: Sha256::new(),
            next: 0,
            segments,
        };
        Ok(futures_util::stream::try_unfold(
            state,
            |mut state| async move {
                if state.next == state.segments {
                    return Ok(None);
                }
                let last = state.next + 1 == state.segments;
                let mut segment = vec![0u8; SEGMENT_BYTES + TAG_BYTES];
                let mut filled = 0;
                while filled < segment.len() {
                    let n = state.file.read(&mut segment[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                segment.truncate(filled);
                state
                    .opener
                    .open(&mut segment, last)
                    .map_err(std::io::Error::other)?;
                state.hasher.update(&segment);
                state.next += 1;
                if last {
                    let actual = Digest::from_sha256(state.hasher.clone().finalize().into());
                    if actual != state.digest {
                        return Err(std::io::Error::other(format!(
                            "sealed blob `{}` opened to bytes with digest `{actual}`",
                            state.digest
                        )));
                    }
                }
                Ok(Some((segment, state)))
            },
        ))
    }

    /// Opens a whole sealed blob into memory (for loading a model to serve it).
    pub async fn read_sealed(
        &self,
        digest: &Digest,
        ciphertext_digest: &Digest,
        key: DataKey,
        size_max: u64,
    ) -> Result<Vec<u8>, BlobError> {
        self.verify_sealed(digest, ciphertext_digest).await?;
        let mut stream = Box::pin(
            self.open_sealed_stream(digest, ciphertext_digest, key)
                .await?,
        );
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| BlobError::Corrupt {
                digest: digest.to_string(),
                actual: err.to_string(),
            })?;
            if (bytes.len() + chunk.len()) as u64 > size_max {
                return Err(BlobError::TooLarge { limit: size_max });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// What sealing a blob produced: the plaintext size, and the ciphertext's digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub size: u64,
    pub ciphertext_digest: Digest,
    pub ciphertext_size: u64,
}

struct OpenState {
    file: tokio::fs::File,
    opener: Opener,
    digest: Digest,
    hasher: Sha256,
    next: u64,
    segments: u64,
}

async fn hash_file(path: &Path, digest: &Digest) -> Result<(Digest, u64), BlobError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(BlobError::NotFound(digest.to_string()));
        }
        Err(err) => {
            return Err(BlobError::Io {
                path: path.to_owned(),
                source: err,
            });
        }
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = file.read(&mut chunk).await.map_err(io(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&chunk[..n]);
    }
    Ok((Digest::from_sha256(hasher.finalize().into()), size))
}

/// Seals plaintext into a file segment by segment, hashing plaintext and ciphertext.
struct SealingWriter<'a> {
    file: tokio::fs::File,
    path: &'a Path,
    sealer: Sealer,
    pending: Vec<u8>,
    plain: Sha256,
    sealed: Sha256,
    sealed_size: u64,
}

impl<'a> SealingWriter<'a> {
    async fn create(
        path: &'a Path,
        digest: &Digest,
        key: &DataKey,
    ) -> Result<SealingWriter<'a>, BlobError> {
        let file = tokio::fs::File::create(path).await.map_err(io(path))?;
        Ok(SealingWriter {
            file,
            path,
            sealer: Sealer::new(key, digest.as_str()),
            pending: Vec::with_capacity(2 * SEGMENT_BYTES),
            plain: Sha256::new(),
            sealed: Sha256::new(),
            sealed_size: 0,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.plain.update(bytes);
        self.pending.extend_from_slice(bytes);
        // A full segment is sealed only once more bytes follow it: until then it may be the last.
        while self.pending.len() > SEGMENT_BYTES {
            let rest = self.pending.split_off(SEGMENT_BYTES);
            let segment = std::mem::replace(&mut self.pending, rest);
            self.emit(segment, false).await?;
        }
        Ok(())
    }

    async fn emit(&mut self, mut segment: Vec<u8>, last: bool) -> Result<(), BlobError> {
        self.sealer.seal(&mut segment, last);
        self.sealed.update(&segment);
        self.sealed_size += segment.len() as u64;
        self.file.write_all(&segment).await.map_err(io(self.path))
    }

    async fn finish(mut self, expected: &Digest, size: u64) -> Result<Sealed, BlobError> {
        let segment = std::mem::take(&mut self.pending);
        self.emit(segment, true).await?;
        self.file.sync_all().await.map_err(io(self.path))?;
        let actual = Digest::from_sha256(self.plain.finalize().into());
        if actual != *expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(Sealed {
            size,
            ciphertext_digest: Digest::from_sha256(self.sealed.finalize().into()),
            ciphertext_size: self.sealed_size,
        })
    }
}
