//! The agent's side of the job channel: JSON over HTTP(S) to the server,
//! authenticated with the agent's own credential.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Clone)]
pub struct Channel {
    base: String,
    token: String,
    http: ureq::Agent,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("base", &self.base).finish()
    }
}

/// A request that did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}: {1}")]
    Transport(String, String),
    #[error("the server answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the server's answer is not what was expected: {0}")]
    Decode(String),
}

impl ChannelError {
    /// The server said this job is not ours (any more): stop working on it.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            ChannelError::Status {
                status: 409 | 410,
                ..
            }
        )
    }
}

impl Channel {
    /// A channel that trusts `ca_file`'s certificates for an https server.
    pub fn trusting(
        base: &str,
        token: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Channel, String> {
        Ok(Channel {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: crate::client::http_agent(ca_file, Some(Duration::from_secs(120)))?,
        })
    }

    pub fn with_token(&self, token: &str) -> Channel {
        Channel {
            token: token.to_string(),
            ..self.clone()
        }
    }

    fn finish(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>), ChannelError> {
        let mut res = res.map_err(|e| ChannelError::Transport(self.base.clone(), e.to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| ChannelError::Transport(self.base.clone(), e.to_string()))?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return Err(ChannelError::Status { status, message });
        }
        Ok((status, body))
    }

    /// POSTs JSON; `None` on 204 No Content.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, ChannelError> {
        let text = serde_json::to_string(body).map_err(|e| ChannelError::Decode(e.to_string()))?;
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(text);
        let (status, body) = self.finish(res)?;
        if status == 204 || body.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ChannelError::Decode(e.to_string()))
    }

    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ChannelError> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        Ok(self.finish(res)?.1)
    }

    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ChannelError> {
        let body = self.get_bytes(path)?;
        serde_json::from_slice(&body).map_err(|e| ChannelError::Decode(e.to_string()))
    }

    /// PUTs raw bytes (`json`: as application/json).
    pub fn put_bytes(&self, path: &str, body: &[u8], json: bool) -> Result<(), ChannelError> {
        let res = self
            .http
            .put(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header(
                "Content-Type",
                if json {
                    "application/json"
                } else {
                    "application/octet-stream"
                },
            )
            .send(body);
        self.finish(res).map(|_| ())
    }

    /// POSTs raw bytes; the JSON answer.
    pub fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<T, ChannelError> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/octet-stream")
            .send(body);
        let (_, body) = self.finish(res)?;
        serde_json::from_slice(&body).map_err(|e| ChannelError::Decode(e.to_string()))
    }
}

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    crate::client::encode(s)
}
