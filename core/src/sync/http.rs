//! The real transport: HTTP(S) to the Fieldbook server, blocking, meant for
//! the core's background sync thread. Built on `ureq` with rustls: no
//! async runtime on the phone and no system TLS library to link.

use super::client::{Transport, TransportError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Media type of sync messages.
pub const SYNC_CONTENT_TYPE: &str = "application/x-fieldbook-sync";

/// What `POST /v1/login` takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Stable id of this installation.
    pub device: String,
    /// This device's Automerge actor id, hex ([`crate::store::Store::actor_hex`]).
    pub actor: String,
}

/// What a successful login returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginResponse {
    pub token: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub user: String,
    pub role: String,
    pub areas: Vec<String>,
}

/// An HTTP client bound to one server.
pub struct HttpTransport {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl HttpTransport {
    /// `base` is the server's URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, token: Option<String>) -> HttpTransport {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build();
        HttpTransport {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent: config.into(),
        }
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Logs in and returns the device token.
    pub fn login(&mut self, req: &LoginRequest) -> Result<LoginResponse, TransportError> {
        let body = serde_json::to_vec(req).map_err(|e| TransportError::Refused {
            status: 0,
            message: e.to_string(),
        })?;
        let resp = self
            .agent
            .post(format!("{}/v1/login", self.base))
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let (status, bytes) = read(resp)?;
        check_status(status, &bytes)?;
        let login: LoginResponse =
            serde_json::from_slice(&bytes).map_err(|e| TransportError::Server {
                status,
                message: format!("malformed login reply: {e}"),
            })?;
        self.token = Some(login.token.clone());
        Ok(login)
    }

    pub(crate) fn auth_header(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }
}

/// A reply with its status and headers, for the photo upload calls.
pub(crate) struct RawResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HttpTransport {
    /// A bodiless call (`HEAD`, or `POST` with headers only).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, TransportError> {
        self.request_body(method, path, headers, &[])
    }

    /// A call with a body (`PATCH`).
    pub(crate) fn request_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<RawResponse, TransportError> {
        let url = format!("{}{path}", self.base);
        let auth = self.auth_header();
        let mut all: Vec<(&str, &str)> = vec![("tus-resumable", super::tus::TUS_VERSION)];
        if let Some(a) = &auth {
            all.push(("authorization", a));
        }
        all.extend_from_slice(headers);
        let unreachable = |e: ureq::Error| TransportError::Unreachable(e.to_string());
        let resp = match method {
            "HEAD" => {
                let mut r = self.agent.head(&url);
                for (k, v) in &all {
                    r = r.header(*k, *v);
                }
                r.call().map_err(unreachable)?
            }
            "GET" => {
                let mut r = self.agent.get(&url);
                for (k, v) in &all {
                    r = r.header(*k, *v);
                }
                r.call().map_err(unreachable)?
            }
            "POST" | "PATCH" => {
                let mut r = if method == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.patch(&url)
                };
                for (k, v) in &all {
                    r = r.header(*k, *v);
                }
                r.send(body).map_err(unreachable)?
            }
            other => {
                return Err(TransportError::Refused {
                    status: 0,
                    message: format!("method {other} not supported"),
                });
            }
        };
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let (status, body) = read(resp)?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Downloads a photo the user may read.
    pub fn get_photo(&self, hash: &str) -> Result<Vec<u8>, TransportError> {
        let resp = self.request("GET", &format!("/v1/photos/{hash}"), &[])?;
        check_status(resp.status, &resp.body)?;
        Ok(resp.body)
    }
}

/// Largest reply accepted, bytes (a sync message is bounded well below).
const REPLY_BYTES_MAX: u64 = 32 << 20;

fn read(resp: ureq::http::Response<ureq::Body>) -> Result<(u16, Vec<u8>), TransportError> {
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .with_config()
        .limit(REPLY_BYTES_MAX)
        .read_to_vec()
        .map_err(|e| TransportError::Unreachable(format!("reply cut off: {e}")))?;
    Ok((status, bytes))
}

pub(crate) fn check_status(status: u16, body: &[u8]) -> Result<(), TransportError> {
    let message = || String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
    match status {
        200..=299 => Ok(()),
        401 => Err(TransportError::Unauthorized),
        500..=599 => Err(TransportError::Server {
            status,
            message: message(),
        }),
        _ => Err(TransportError::Refused {
            status,
            message: message(),
        }),
    }
}

impl Transport for HttpTransport {
    fn sync(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut req = self
            .agent
            .post(format!("{}/v1/sync", self.base))
            .header("content-type", SYNC_CONTENT_TYPE);
        if let Some(h) = self.auth_header() {
            req = req.header("authorization", h);
        }
        let resp = req
            .send(request)
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let (status, bytes) = read(resp)?;
        check_status(status, &bytes)?;
        Ok(bytes)
    }
}
