//! A small HTTP client for the `/api/v1` API, kubectl-style: server URL and token from flags
//! or `STEWARD_URL` / `STEWARD_TOKEN`. Errors carry the server's code and message.

use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("downloaded bytes hash to `{actual}`, not `{digest}`; nothing was kept")]
    Corrupt { digest: String, actual: String },
    #[error(
        "the server sent more than the {size} bytes `{digest}` is declared to hold; nothing was kept"
    )]
    Oversized { digest: String, size: u64 },
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let builder = match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        };
        let response = builder
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_owned(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        Err(ClientError::Api {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"].as_str().unwrap_or("no message").to_owned(),
            details: error["details"].clone(),
        })
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut builder = self.http.request(method, &url);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = self.send(builder, &url).await?;
        response
            .json()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let builder = self
            .http
            .put(&url)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        let response = self.send(builder, &url).await?;
        response
            .json()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// Uploads a file as a blob, streamed from disk.
    pub async fn put_file(
        &self,
        path: &str,
        file: &std::path::Path,
        progress: &crate::progress::Progress,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let handle = tokio::fs::File::open(file)
            .await
            .map_err(|err| ClientError::File {
                path: file.display().to_string(),
                source: err,
            })?;
        let size = handle
            .metadata()
            .await
            .map_err(|err| ClientError::File {
                path: file.display().to_string(),
                source: err,
            })?
            .len();
        let progress = progress.clone();
        let chunks = futures_util::stream::try_unfold(handle, move |mut handle| {
            let progress = progress.clone();
            async move {
                use tokio::io::AsyncReadExt;
                let mut chunk = vec![0u8; 1 << 20];
                let n = handle.read(&mut chunk).await?;
                chunk.truncate(n);
                progress.add(n as u64);
                Ok::<_, std::io::Error>((n > 0).then_some((chunk, handle)))
            }
        });
        let builder = self
            .http
            .put(&url)
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(reqwest::Body::wrap_stream(chunks));
        let response = self.send(builder, &url).await?;
        response
            .json()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// Downloads a blob into `file`, checking on the way that it hashes to `digest` and
    /// stopping as soon as the server sends more than the `size` the manifest declares.
    pub async fn download(
        &self,
        path: &str,
        file: &std::path::Path,
        digest: &str,
        size: u64,
        progress: &crate::progress::Progress,
    ) -> Result<(), ClientError> {
        use sha2::Digest as _;
        use tokio::io::AsyncWriteExt;
        let url = format!("{}{path}", self.base);
        let mut response = self.send(self.http.get(&url), &url).await?;
        let file_error = |err: std::io::Error| ClientError::File {
            path: file.display().to_string(),
            source: err,
        };
        let mut out = tokio::fs::File::create(file).await.map_err(file_error)?;
        let mut hasher = sha2::Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?
        {
            received += chunk.len() as u64;
            if received > size {
                drop(out);
                let _ = tokio::fs::remove_file(file).await;
                return Err(ClientError::Oversized {
                    digest: digest.to_owned(),
                    size,
                });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(file_error)?;
            progress.add(chunk.len() as u64);
        }
        out.sync_all().await.map_err(file_error)?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            let _ = tokio::fs::remove_file(file).await;
            return Err(ClientError::Corrupt {
                digest: digest.to_owned(),
                actual,
            });
        }
        Ok(())
    }

    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url).await?;
        response
            .text()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `body` once, whatever is asked.
    async fn serve_once(body: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_download_longer_than_its_declared_size_is_cut_off_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("blob");
        let client = Client::new(&serve_once(b"0123456789").await, None);
        let err = client
            .download(
                "/blob",
                &file,
                "sha256:00",
                4,
                &crate::progress::Progress::hidden(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server sent more than the 4 bytes `sha256:00` is declared to hold; nothing was kept"
        );
        assert!(!file.exists());

        // The declared size exactly: read to the end, then judged by its hash.
        let client = Client::new(&serve_once(b"abc").await, None);
        let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        client
            .download(
                "/blob",
                &file,
                digest,
                3,
                &crate::progress::Progress::hidden(),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"abc");
    }
}
