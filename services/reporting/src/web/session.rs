//! Sign-in with the same region-scoped tokens as the gRPC API. The session is the token itself,
//! kept in a cookie that is HttpOnly and SameSite=Strict and ends when the token does; every
//! request verifies it again. Every action (POST) carries `X-CSRF-Token`, derived from the token
//! (SHA-256), which a page of another origin cannot read or compute, and an `Origin`, when sent,
//! must be this host.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nol_auth::Caller;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::WebState;
use super::error::WebError;

const COOKIE: &str = "nol_session";

/// A signed-in user: the verified caller and when the session ends (Unix seconds).
pub struct Session {
    pub caller: Caller,
    pub expires_at: u64,
    token: String,
}

/// The anti-CSRF token of a session token.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("nol-csrf\0{token}").as_bytes()))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
    })
}

/// An `Origin` header, when present, is `https://` and names this host (a cross-site form or
/// fetch is refused). Over HTTP/2 the host is the request's authority (there is no `Host`).
fn same_origin(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) else { return true };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
        .unwrap_or_default();
    origin.strip_prefix("https://") == Some(host)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Session {
    fn verify(state: &WebState, token: &str) -> Result<Session, WebError> {
        let (caller, expires_at) = state.verifier.verify_until(token).map_err(|_| WebError::unauthenticated())?;
        caller
            .require_province(&state.province)
            .map_err(|denied| WebError::from(nol_runtime::ServiceError::from(denied)))?;
        Ok(Session { caller, expires_at, token: token.to_owned() })
    }

    fn json(&self) -> serde_json::Value {
        let region = self.caller.region;
        serde_json::json!({
            "subject": self.caller.subject,
            "role": self.caller.role.as_str(),
            "role_zh": nol_messages::vocab::role_zh(self.caller.role.as_str()),
            "region_code": region.as_str(),
            "region_name": region.full_name(),
            "level": super::api::level_name(&region),
            "csrf": csrf_of(&self.token),
            "expires_at": chrono::DateTime::from_timestamp(self.expires_at as i64, 0).map(|time| time.to_rfc3339()),
        })
    }
}

impl FromRequestParts<WebState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Session, WebError> {
        let token = cookie_token(&parts.headers).ok_or_else(WebError::unauthenticated)?;
        let session = Session::verify(state, &token)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts.headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).unwrap_or_default();
            if !same_origin(&parts.headers, &parts.uri) || sent != csrf_of(&token) {
                return Err(WebError::csrf());
            }
        }
        Ok(session)
    }
}

fn cookie(token: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("nol_session=; Max-Age=0"))
}

/// GET /api/session: who is signed in (401 when nobody).
pub async fn current(session: Session) -> Json<serde_json::Value> {
    Json(session.json())
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

/// POST /api/session `{"token": …}`: verifies the token and sets the session cookie.
pub async fn sign_in(
    State(state): State<WebState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Json<SignIn>,
) -> Result<Response, WebError> {
    if !same_origin(&headers, &uri) {
        return Err(WebError::csrf());
    }
    let token = body.token.trim();
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(WebError::new(StatusCode::UNAUTHORIZED, "令牌无效，请检查后重新输入"));
    }
    let session = Session::verify(&state, token)?;
    let max_age = session.expires_at.saturating_sub(now());
    let mut response = Json(session.json()).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(token, max_age));
    Ok(response)
}

/// POST /api/logout (or DELETE /api/session): ends the session.
pub async fn sign_out(_session: Session) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie("", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_read_and_origins_are_compared() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; nol_session=abc.def; b=2"));
        assert_eq!(cookie_token(&headers).as_deref(), Some("abc.def"));
        let path = axum::http::Uri::from_static("/api/session");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:18080"));
        assert!(same_origin(&headers, &path), "no Origin: a same-origin GET or an older browser");
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://127.0.0.1:18080"));
        assert!(same_origin(&headers, &path));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:18080"));
        assert!(!same_origin(&headers, &path), "the dashboard is served over HTTPS only");
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers, &path));
        // HTTP/2: no Host header, the authority is in the request's URI.
        headers.remove(header::HOST);
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://127.0.0.1:18080"));
        assert!(same_origin(&headers, &axum::http::Uri::from_static("https://127.0.0.1:18080/api/session")));
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 64);
        let set = cookie("t", 60);
        assert_eq!(set.to_str().unwrap(), "nol_session=t; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=60");
    }
}
