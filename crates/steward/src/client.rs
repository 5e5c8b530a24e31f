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
