//! The bureaus' dashboard (看板), served by the reporting service over HTTP: the page and its
//! packages from `NOL_WEB_DIR` (installed from npm by `npm ci`, never from a CDN), and a JSON API
//! scoped exactly like the gRPC API. The reporting service's own figures and reports are read in
//! process with the same checks as its RPCs; the lists of other services (overdue work,
//! supervision items, hand-offs, suspects, backbone status) are read through their gRPC APIs with
//! the signed-in user's token, so their own scope and role rules answer. Updates are pushed as
//! server-sent events after the reporting consumer commits (PostgreSQL NOTIFY).

mod api;
mod error;
mod lists;
pub mod live;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use nol_auth::TokenVerifier;
use nol_region::RegionCode;
use nol_runtime::clock::Clock;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tower_http::services::{ServeDir, ServeFile};

use crate::workflow::Reports;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct WebState {
    pub(crate) verifier: TokenVerifier,
    pub(crate) reports: Arc<Reports>,
    pub(crate) pool: PgPool,
    pub(crate) province: RegionCode,
    pub(crate) clock: Clock,
    pub(crate) upstream: Upstream,
    pub(crate) live: broadcast::Sender<live::Update>,
}

/// Lazily connected channels to the province's services.
#[derive(Clone)]
pub struct Upstream {
    pub registry: Option<Channel>,
    pub cases: Option<Channel>,
    pub transfer: Option<Channel>,
    /// The reporting service itself (its `AdminService`).
    pub reporting: Channel,
}

impl Upstream {
    pub fn connect(
        tls: &nol_tls::ClientTls,
        registry: Option<&str>,
        cases: Option<&str>,
        transfer: Option<&str>,
        reporting: SocketAddr,
    ) -> anyhow::Result<Upstream> {
        let channel = |url: &str| -> anyhow::Result<Channel> {
            nol_runtime::upstream::channel(
                url,
                tls,
                std::time::Duration::from_secs(5),
                Some(std::time::Duration::from_secs(30)),
            )
        };
        // The service's own port, by loopback when it listens on every interface (its
        // certificate names 127.0.0.1).
        let reporting = match reporting.ip().is_unspecified() {
            true => SocketAddr::from(([127, 0, 0, 1], reporting.port())),
            false => reporting,
        };
        Ok(Upstream {
            registry: registry.map(channel).transpose()?,
            cases: cases.map(channel).transpose()?,
            transfer: transfer.map(channel).transpose()?,
            reporting: channel(&format!("https://{reporting}"))?,
        })
    }
}

/// The headers every answer carries: no framing, no sniffing, no referrer, scripts and styles
/// only from this origin, and no caching of the API's answers.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // HTTPS only, and browsers are told to keep it so.
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    response
}

async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The dashboard's routes over `web_dir`.
pub fn router(state: WebState, web_dir: PathBuf) -> Router {
    if !web_dir.join("node_modules").is_dir() {
        tracing::warn!(
            web_dir = %web_dir.display(),
            "the dashboard's packages are not installed: run `npm ci --prefix {}` (nol up does)",
            web_dir.display()
        );
    }
    let api = Router::new()
        .route("/session", get(session::current).post(session::sign_in).delete(session::sign_out))
        .route("/logout", post(session::sign_out))
        .route("/periods", get(api::periods))
        .route("/overview", get(api::overview))
        .route("/report", get(api::report))
        .route("/report/{action}", post(api::report_step))
        .route("/report.pdf", get(api::report_pdf))
        .route("/export/figures.xlsx", get(api::export_figures))
        .route("/lists/{name}", get(lists::list))
        .route("/ops", get(api::ops))
        .route("/events", get(live::events))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state);
    Router::new()
        .route_service("/", ServeFile::new(web_dir.join("index.html")))
        .nest_service("/static", ServeDir::new(web_dir.join("static")))
        .nest_service("/vendor/echarts", ServeDir::new(web_dir.join("node_modules/echarts/dist")))
        .nest_service("/vendor/noto-sans-sc", ServeDir::new(web_dir.join("node_modules/@fontsource/noto-sans-sc")))
        .nest("/api", api)
        .layer(axum::middleware::map_response(secure))
}

/// Serves the dashboard over HTTPS (`tls`: the service's certificate) on `listener` until
/// `shutdown`; connections in flight get ten seconds to finish.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))?
        .handle(handle)
        .serve(router.into_make_service())
        .await?;
    Ok(())
}
