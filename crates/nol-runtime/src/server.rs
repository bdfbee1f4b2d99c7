//! The gRPC server every service runs: its own services behind the token check and the RPC × role
//! table ([`crate::access`]), plus `grpc.health.v1` and `grpc.reflection.v1` without a token, a span
//! per call joined to the caller's trace, and graceful shutdown.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;

/// A bound listener; `port()` is known before serving, so tests and the stack can use port 0.
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok(Bound { listener, addr })
}

/// Health reporting for the services a process serves.
pub fn health()
-> (HealthReporter, tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>) {
    tonic_health::server::health_reporter()
}

/// Serves `routes` (the business services named `service_names`) behind `access` with health and
/// reflection over TLS until `shutdown`; in-flight calls finish first. Reflection lists only the
/// services this process serves.
pub async fn serve(
    bound: Bound,
    tls: tonic::transport::ServerTlsConfig,
    routes: Routes,
    access: crate::access::AccessLayer,
    service_names: &[&str],
    health_service: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(nol_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for name in service_names {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection.build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);
    // A refusal of bad input is the caller's problem, not a server failure: log it quietly.
    let classifier = GrpcErrorsAsFailures::new()
        .with_success(GrpcCode::InvalidArgument)
        .with_success(GrpcCode::NotFound)
        .with_success(GrpcCode::AlreadyExists)
        .with_success(GrpcCode::PermissionDenied)
        .with_success(GrpcCode::Unauthenticated)
        .with_success(GrpcCode::FailedPrecondition);
    let trace = TraceLayer::new(SharedClassifier::new(classifier)).make_span_with(|request: &http::Request<_>| {
        let span = tracing::info_span!("grpc", rpc = %request.uri().path(), otel.kind = "server");
        nol_telemetry::set_parent_from_headers(&span, request.headers());
        span
    });
    // The builder's `tcp_nodelay` applies only to listeners it binds itself: set it on each
    // accepted connection, or Nagle's algorithm holds a response's last segment back until the
    // caller's delayed ACK (about 40 ms on every call).
    let incoming = TcpListenerStream::new(bound.listener).map(|connection| {
        if let Ok(stream) = &connection
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::warn!(%error, "TCP_NODELAY could not be set on a connection");
        }
        connection
    });
    // TLS only: a plaintext caller fails the handshake and is never served.
    tonic::transport::Server::builder()
        .tls_config(tls)?
        .layer(trace)
        .layer(access)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}
