//! External OIP servers as upstreams: a version whose package holds `upstream.json`
//! instead of an ONNX file is served by forwarding inferences to that server (Triton,
//! MLServer, KServe, or another Steward), so routing, kill switches, logging and metrics
//! work as for in-process models. The file is part of the signed, content-addressed version,
//! so where requests go is changed only by registering and promoting a new version.
//!
//! Invariants:
//! - The upstream's metadata (inputs, outputs, platform) is read once, when the version is
//!   loaded; a server that does not describe the model is not served.
//! - Requests go as OIP JSON with the caller's trace (`traceparent`, this span as parent)
//!   and request id; answers are parsed and checked as strictly as callers' requests (the
//!   element limit applies), each call bounded by the upstream's timeout.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::runtime::TensorSpec;
use crate::tensor::{self, Datatype, Tensor};
use crate::trace::TraceContext;

/// The file in a version that makes it an upstream deployment.
pub const UPSTREAM_FILE: &str = "upstream.json";
/// Bound on one call to an upstream when the file names none, and the ceiling of any (the
/// gateway's inference timeout bounds the whole request as well).
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
pub const TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Bound on reading the upstream's metadata when the version is loaded (the table waits
/// for it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on an upstream's answer body.
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `upstream.json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The server's base address, `http://host:port[/prefix]` (the OIP paths follow).
    pub url: String,
    /// The model's name there.
    pub model: String,
    /// The model's version there; none: the server's default.
    #[serde(default)]
    pub version: Option<String>,
    /// Bound on one call, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl UpstreamConfig {
    pub fn parse(bytes: &[u8]) -> Result<UpstreamConfig, String> {
        let config: UpstreamConfig = serde_json::from_slice(bytes)
            .map_err(|err| format!("{UPSTREAM_FILE} does not parse: {err}"))?;
        let mut problems = Vec::new();
        let base = config.url.trim_end_matches('/');
        let plain = |text: &str| {
            !text.contains(['?', '#', ' ', '\\', '@', '%']) && !text.chars().any(char::is_control)
        };
        match base.strip_prefix("http://") {
            Some(rest) if !rest.is_empty() && plain(rest) => {
                let host = rest.split('/').next().unwrap_or_default();
                let host = host
                    .rsplit_once(':')
                    .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                    .map_or(host, |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                if host.parse::<std::net::IpAddr>().is_ok_and(|ip| is_link_local(&ip)) {
                    problems.push(format!(
                        "url `{}` is a link-local address (cloud metadata services live there)",
                        config.url
                    ));
                }
            }
            _ => problems.push(format!(
                "url `{}` must be an http:// address (host, port, optional path prefix; no credentials, query or escapes)",
                config.url
            )),
        }
        let segment_ok = |text: &str| {
            !text.is_empty()
                && text.len() <= 200
                && plain(text)
                && !text.contains('/')
                && text != "."
                && text != ".."
        };
        if !segment_ok(&config.model) {
            problems.push(format!(
                "model `{}` must be a model name (no `/`, `?`, `#`, `%`, spaces)",
                config.model
            ));
        }
        if let Some(version) = &config.version
            && !segment_ok(version)
        {
            problems.push(format!("version `{version}` must be a version label"));
        }
        if let Some(ms) = config.timeout_ms
            && (ms == 0 || Duration::from_millis(ms) > TIMEOUT_MAX)
        {
            problems.push(format!(
                "timeout_ms {ms} must be between 1 and {}",
                TIMEOUT_MAX.as_millis()
            ));
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(format!("{UPSTREAM_FILE}: {}", problems.join("; ")))
        }
    }

    /// The message callers see when this upstream fails: the version's upstream, not its
    /// address (internal addresses stay in the server's own log).
    fn public_name(&self) -> String {
        format!("the upstream serving `{}`", self.model)
    }

    /// `url/v2/models/model[/versions/version]`.
    fn model_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        match &self.version {
            Some(version) => format!("{base}/v2/models/{}/versions/{version}", self.model),
            None => format!("{base}/v2/models/{}", self.model),
        }
    }
}

/// A model served by another OIP server.
pub struct Upstream {
    pub config: UpstreamConfig,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// What the upstream says it runs (`platform` of its metadata).
    pub platform: String,
    client: reqwest::Client,
}

/// Why an upstream call failed: the caller's fault (the upstream answered 400 to the
/// input) or the upstream's (any other failure: 502).
#[derive(Debug)]
pub enum UpstreamError {
    Refused(String),
    Failed(String),
}

fn is_link_local(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => ip.is_link_local(),
        std::net::IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Reads a body up to `RESPONSE_BYTES_MAX`, whatever its headers say.
async fn bounded_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
        if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
            return Err(format!("its answer is over {RESPONSE_BYTES_MAX} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn specs(metadata: &Value, side: &str) -> Result<Vec<TensorSpec>, String> {
    metadata[side]
        .as_array()
        .ok_or_else(|| format!("its metadata has no `{side}`"))?
        .iter()
        .map(|tensor| {
            let name = tensor["name"]
                .as_str()
                .ok_or_else(|| format!("a tensor of `{side}` has no name"))?;
            let datatype = tensor["datatype"]
                .as_str()
                .and_then(Datatype::parse)
                .ok_or_else(|| format!("`{name}` has no OIP datatype"))?;
            let shape = tensor["shape"]
                .as_array()
                .and_then(|dims| dims.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
                .ok_or_else(|| format!("`{name}` has no shape"))?;
            Ok(TensorSpec {
                name: name.to_owned(),
                datatype,
                shape,
            })
        })
        .collect()
}

impl Upstream {
    /// Reads the model's metadata from the upstream; an upstream that does not answer, or
    /// does not describe the model, is an error (the version is not served).
    pub async fn connect(config: UpstreamConfig) -> Result<Upstream, String> {
        let timeout = config
            .timeout_ms
            .map_or(TIMEOUT_DEFAULT, Duration::from_millis);
        // No redirects (a body with personal data must not follow one elsewhere), no proxy
        // from the environment.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| format!("no HTTP client: {err}"))?;
        let url = config.model_url();
        let response = client
            .get(&url)
            .timeout(CONNECT_TIMEOUT.min(timeout))
            .send()
            .await
            .map_err(|err| format!("upstream {url}: {err}"))?;
        let status = response.status();
        let body = bounded_body(response)
            .await
            .map_err(|err| format!("upstream {url}: {err}"))?;
        let metadata: Value = serde_json::from_slice(&body)
            .map_err(|err| format!("upstream {url}: metadata is not JSON: {err}"))?;
        if !status.is_success() {
            return Err(format!(
                "upstream {url} answered {status}: {}",
                metadata["error"].as_str().unwrap_or("no message")
            ));
        }
        let inputs = specs(&metadata, "inputs").map_err(|err| format!("upstream {url}: {err}"))?;
        let outputs =
            specs(&metadata, "outputs").map_err(|err| format!("upstream {url}: {err}"))?;
        Ok(Upstream {
            platform: metadata["platform"]
                .as_str()
                .unwrap_or("upstream")
                .to_owned(),
            config,
            inputs,
            outputs,
            client,
        })
    }

    /// One inference upstream, as OIP JSON, with the caller's trace and request id.
    pub async fn infer(
        &self,
        inputs: &[Tensor],
        outputs: Option<&[String]>,
        request_id: Option<&str>,
        trace: &TraceContext,
        element_limit: u64,
    ) -> Result<Vec<Tensor>, UpstreamError> {
        let mut body = json!({
            "inputs": inputs.iter().map(|input| json!({
                "name": input.name, "datatype": input.datatype.as_str(), "shape": input.shape,
                "data": tensor::to_json(&input.elements),
            })).collect::<Vec<_>>(),
        });
        if let Some(id) = request_id {
            body["id"] = json!(id);
        }
        if let Some(outputs) = outputs {
            body["outputs"] = outputs.iter().map(|name| json!({"name": name})).collect();
        }
        let url = format!("{}/infer", self.config.model_url());
        let name = self.config.public_name();
        let failed = |err: String| {
            tracing::warn!(upstream = %url, error = %err, "An upstream inference failed.");
            UpstreamError::Failed(format!("{name} failed"))
        };
        let response = self
            .client
            .post(&url)
            .header("traceparent", trace.header())
            .json(&body)
            .send()
            .await
            .map_err(|err| failed(err.to_string()))?;
        let status = response.status();
        let bytes = bounded_body(response).await.map_err(failed)?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|err| failed(format!("the answer is not JSON: {err}")))?;
        // Only a 400 is about the caller's input; any other refusal (401, 404, …) is the
        // deployment's misconfiguration, not the caller's fault.
        if status == reqwest::StatusCode::BAD_REQUEST {
            // Its message is not passed on: servers echo input values in them.
            tracing::info!(upstream = %url, error = answer["error"].as_str().unwrap_or(""), "An upstream refused an input.");
            return Err(UpstreamError::Refused(format!(
                "{name} refused the request as invalid (400); see the model's metadata for its inputs"
            )));
        }
        if !status.is_success() {
            return Err(failed(format!(
                "answered {status}: {}",
                answer["error"].as_str().unwrap_or("no message")
            )));
        }
        answer["outputs"]
            .as_array()
            .ok_or_else(|| failed("the answer has no `outputs`".into()))?
            .iter()
            .map(|output| {
                let name = output["name"].as_str().unwrap_or_default();
                let datatype = output["datatype"]
                    .as_str()
                    .and_then(Datatype::parse)
                    .ok_or_else(|| failed(format!("output `{name}` has no OIP datatype")))?;
                let shape: Vec<u64> = output["shape"]
                    .as_array()
                    .and_then(|dims| dims.iter().map(Value::as_u64).collect())
                    .ok_or_else(|| failed(format!("output `{name}` has no shape")))?;
                tensor::from_json(name, datatype, &shape, &output["data"], element_limit)
                    .map_err(failed)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_checked_and_every_problem_named() {
        let good = UpstreamConfig::parse(
            br#"{"url": "http://127.0.0.1:8080/", "model": "credit", "version": "1", "timeout_ms": 2000}"#,
        )
        .unwrap();
        assert_eq!(
            good.model_url(),
            "http://127.0.0.1:8080/v2/models/credit/versions/1"
        );
        let err = UpstreamConfig::parse(
            br#"{"url": "https://x", "model": "a/b", "version": "..", "timeout_ms": 0}"#,
        )
        .unwrap_err();
        for part in [
            "url `https://x`",
            "model `a/b`",
            "version `..`",
            "timeout_ms 0",
        ] {
            assert!(err.contains(part), "{err}");
        }
        assert!(
            UpstreamConfig::parse(br#"{"url": "http://x", "model": "m", "extra": 1}"#).is_err()
        );
    }
}
