//! A dashboard user over HTTPS: signs in with a token, keeps the session cookie and the CSRF
//! token, and reads the JSON API as the page does.

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct WebUser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

/// A province's dashboard: its `https://` address (what `{}` prints) and an HTTP client that
/// checks its certificate against the deployment's CA.
#[derive(Clone)]
pub struct Web {
    pub base: String,
    pub client: reqwest::Client,
}

impl std::fmt::Display for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

/// The dashboard of a province's stack.
pub fn web_url(test: &super::TestStack, province: &str) -> Web {
    let province = test.stack().province(province);
    let addr = province.reporting.web_addr.expect("the reporting service serves the dashboard");
    Web { base: format!("https://{addr}"), client: https_client(&province.client_tls) }
}

/// An HTTP client that speaks only HTTPS and trusts only the deployment's CA.
pub fn https_client(tls: &nol_tls::ClientTls) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.rustls_client().expect("a TLS client configuration"))
        .https_only(true)
        .build()
        .expect("an HTTPS client")
}

impl WebUser {
    /// Signs in with `token` (POST /api/session); panics unless it is accepted.
    pub async fn sign_in(web: &Web, token: &str) -> WebUser {
        let (base, client) = (web.base.as_str(), web.client.clone());
        let response = client
            .post(format!("{base}/api/session"))
            .json(&serde_json::json!({"token": token}))
            .send()
            .await
            .expect("sign-in answered");
        assert_eq!(response.status(), StatusCode::OK, "signed in");
        let set = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        let session: Value = response.json().await.unwrap();
        WebUser { base: base.to_owned(), client, cookie, csrf: session["csrf"].as_str().unwrap().to_owned() }
    }

    /// A request with the session cookie (and the CSRF token on anything but GET).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder =
            self.client.request(method.clone(), format!("{}{path}", self.base)).header("cookie", &self.cookie);
        if method == Method::GET { builder } else { builder.header("x-csrf-token", &self.csrf) }
    }

    /// GET a JSON answer: its status and body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.request(Method::GET, path).send().await.expect("answered");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON with the CSRF token: its status and body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.request(Method::POST, path).json(&body).send().await.expect("answered");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
