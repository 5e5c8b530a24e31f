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
        for dir in [root.join("sha256"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
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
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = TempFile(
            self.root
                .join("tmp")
                .join(format!("upload-{}-{n}", std::process::id())),
        );
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
        let path = self.path(digest);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.to_string()));
            }
            Err(err) => return Err(BlobError::Io { path, source: err }),
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            let n = file.read(&mut chunk).await.map_err(io(&path))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&chunk[..n]);
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
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
}
