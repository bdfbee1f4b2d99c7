//! Access control in one place: a tower layer on every service's gRPC server that, before any
//! handler runs, verifies the caller's token and refuses a role the RPC × role table
//! ([`nol_auth::policy::TABLE`]) does not allow for the called method (`PERMISSION_DENIED`, in
//! Chinese, naming the role and the call). A method the table does not name is refused to
//! everyone; health and reflection need no token. Handlers read the [`Caller`] it leaves in the
//! request's extensions (`nol_auth::caller`) and check what depends on the data: region, school,
//! ownership.
//!
//! A tonic interceptor sees the metadata but not the method, hence a layer over the routes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use nol_auth::{Caller, TokenVerifier, policy};

/// Authenticates and authorizes every call to the services it wraps.
#[derive(Clone)]
pub struct AccessLayer {
    verifier: TokenVerifier,
}

impl AccessLayer {
    pub fn new(verifier: TokenVerifier) -> AccessLayer {
        AccessLayer { verifier }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access { inner, verifier: self.verifier.clone() }
    }
}

/// The service [`AccessLayer`] makes.
#[derive(Clone)]
pub struct Access<S> {
    inner: S,
    verifier: TokenVerifier,
}

/// The caller of a call to `method` with these headers, or the status that refuses it.
fn admit(verifier: &TokenVerifier, method: &str, headers: &http::HeaderMap) -> Result<Caller, tonic::Status> {
    let caller = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(nol_auth::TokenError::Missing)
        .and_then(|value| value.to_str().map_err(|_| nol_auth::TokenError::Malformed))
        .and_then(|value| verifier.verify_authorization(value))
        .map_err(|error| nol_messages::grpc::status(tonic::Code::Unauthenticated, &error.message()))?;
    policy::authorize(&caller, method).map_err(|denied| {
        tracing::info!(role = %caller.role, subject = %caller.subject, method, "call refused by the RPC × role table");
        tonic::Status::from(denied)
    })?;
    Ok(caller)
}

impl<S, B, R> tower::Service<http::Request<B>> for Access<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path();
        if !policy::is_public(method) {
            match admit(&self.verifier, method, request.headers()) {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                }
                Err(status) => return Box::pin(std::future::ready(Ok(status.into_http()))),
            }
        }
        Box::pin(self.inner.call(request))
    }
}
