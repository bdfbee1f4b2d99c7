//! Access control in one place: a tower layer on every service's gRPC server that, before any
//! handler runs, verifies the caller's token and refuses a role the RPC × role table
//! ([`nol_auth::policy::TABLE`]) does not allow for the called method (`PERMISSION_DENIED`, in
//! Chinese, naming the role and the call). A method the table does not name is refused to
//! everyone; health and reflection need no token. Handlers read the [`Caller`] it leaves in the
//! request's extensions (`nol_auth::caller`) and check what depends on the data: region, school,
//! ownership.
//!
//! The same layer bounds what one call may take: a caller's calls in flight ([`CallerLimits`]) and
//! each call's time ([`Timeouts`]): a call still running after its limit is stopped — its future
//! dropped, so an open transaction rolls back and nothing it had not committed is kept — and
//! answered `DEADLINE_EXCEEDED` in Chinese. A caller's own shorter `grpc-timeout` is honoured by
//! tonic as well.
//!
//! A tonic interceptor sees the metadata but not the method, hence a layer over the routes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use nol_auth::{Caller, TokenVerifier, policy};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Authenticates and authorizes every call to the services it wraps, and holds each caller to a
/// number of calls in flight.
#[derive(Clone)]
pub struct AccessLayer {
    verifier: TokenVerifier,
    limits: CallerLimits,
    timeouts: Timeouts,
}

impl AccessLayer {
    pub fn new(verifier: TokenVerifier) -> AccessLayer {
        AccessLayer { verifier, limits: CallerLimits::new(DEFAULT_CALLS_IN_FLIGHT), timeouts: Timeouts::default() }
    }

    /// At most `calls` calls of one caller in flight at once (`NOL_CALLER_CONCURRENCY`).
    pub fn with_calls_in_flight(mut self, calls: usize) -> AccessLayer {
        self.limits = CallerLimits::new(calls);
        self
    }

    /// How long a call may run (`NOL_REQUEST_TIMEOUT_SECS`, `NOL_LONG_REQUEST_TIMEOUT_SECS`).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> AccessLayer {
        self.timeouts = timeouts;
        self
    }
}

/// The longest a call may run until its answer starts (a streamed answer's body is sent after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Any call but the long ones.
    pub call: Duration,
    /// Imports, exports, files, cross-checks and sweeps ([`is_long`]).
    pub long_call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { call: Duration::from_secs(30), long_call: Duration::from_secs(900) }
    }
}

impl Timeouts {
    /// The limit of a call to `method` (`/nol.v1.Service/Method`).
    pub fn of(&self, method: &str) -> Duration {
        if is_long(method) { self.long_call } else { self.call }
    }
}

/// Calls that move whole files or work through a region: uploads and imports, exports and
/// downloads, cross-checks, the semester check's checklist, sweeps.
pub fn is_long(method: &str) -> bool {
    let name = method.rsplit('/').next().unwrap_or_default();
    [
        "Import",
        "Export",
        "Download",
        "Sweep",
        "RunCrossCheck",
        "StartSemesterCheck",
        "AddEvidence",
        "GetEvidenceFile",
        "GetReportPdf",
        "GetHandoffNotice",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Calls one caller may have in flight unless configured otherwise.
pub const DEFAULT_CALLS_IN_FLIGHT: usize = 32;

/// Calls in flight per caller (a token's subject in its region): one caller — a runaway script,
/// a stolen token — cannot take every connection of the pool and every worker from the others.
/// A call over the limit is refused at once (`RESOURCE_EXHAUSTED`), not queued. The permit is
/// held until the handler answers; a streamed answer's body is not counted.
#[derive(Clone)]
struct CallerLimits {
    per_caller: usize,
    callers: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl CallerLimits {
    fn new(per_caller: usize) -> CallerLimits {
        CallerLimits { per_caller: per_caller.max(1), callers: Arc::default() }
    }

    fn admit(&self, caller: &Caller) -> Result<OwnedSemaphorePermit, tonic::Status> {
        let semaphore = {
            let mut callers = self.callers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if callers.len() > 4096 {
                // Forget the callers with nothing in flight.
                callers.retain(|_, semaphore| semaphore.available_permits() < self.per_caller);
            }
            let key = format!("{}@{}", caller.subject, caller.region);
            callers.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.per_caller))).clone()
        };
        semaphore.try_acquire_owned().map_err(|_| {
            tracing::warn!(subject = %caller.subject, region = %caller.region, limit = self.per_caller, "caller over its calls in flight");
            tonic::Status::resource_exhausted(format!(
                "同时进行的请求过多（每个调用方最多 {} 个），请稍后再试 (too many calls in flight for this caller)",
                self.per_caller
            ))
        })
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access { inner, verifier: self.verifier.clone(), limits: self.limits.clone(), timeouts: self.timeouts }
    }
}

/// The service [`AccessLayer`] makes.
#[derive(Clone)]
pub struct Access<S> {
    inner: S,
    verifier: TokenVerifier,
    limits: CallerLimits,
    timeouts: Timeouts,
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
        let method = request.uri().path().to_owned();
        let mut permit = None;
        if !policy::is_public(&method) {
            let admitted = admit(&self.verifier, &method, request.headers())
                .and_then(|caller| Ok((self.limits.admit(&caller)?, caller)));
            match admitted {
                Ok((held, caller)) => {
                    permit = Some(held);
                    request.extensions_mut().insert(caller);
                }
                Err(status) => return Box::pin(std::future::ready(Ok(status.into_http()))),
            }
        }
        let limit = self.timeouts.of(&method);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answered = match tokio::time::timeout(limit, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::warn!(%method, limit_secs = limit.as_secs(), "call stopped at its time limit");
                    Ok(timed_out(limit).into_http())
                }
            };
            drop(permit);
            answered
        })
    }
}

/// The answer to a call stopped at `limit`.
fn timed_out(limit: Duration) -> tonic::Status {
    let secs = nol_messages::Count(limit.as_secs().max(1));
    nol_messages::grpc::status(tonic::Code::DeadlineExceeded, &nol_messages::Common::TimedOut { secs }.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nol_auth::Role;
    use nol_region::RegionCode;
    use tonic_types::StatusExt;

    fn caller(subject: &str) -> Caller {
        let (private_pem, public_pem) = nol_auth::generate_signing_key_pem().unwrap();
        let issuer = nol_auth::TokenIssuer::from_pem(private_pem.as_bytes()).unwrap();
        let token = issuer
            .issue(subject, RegionCode::parse("320102").unwrap(), Role::Caseworker, std::time::Duration::from_secs(60))
            .unwrap();
        TokenVerifier::from_pem(public_pem.as_bytes())
            .unwrap()
            .verify_authorization(&format!("Bearer {token}"))
            .unwrap()
    }

    #[test]
    fn long_calls_are_the_ones_that_move_files_or_sweep() {
        let timeouts = Timeouts { call: Duration::from_secs(30), long_call: Duration::from_secs(900) };
        assert_eq!(timeouts.of("/nol.v1.RegistryService/ImportPupils"), Duration::from_secs(900));
        assert_eq!(timeouts.of("/nol.v1.CaseService/ExportCases"), Duration::from_secs(900));
        assert_eq!(timeouts.of("/nol.v1.SupervisionService/SweepOverdueWork"), Duration::from_secs(900));
        assert_eq!(timeouts.of("/nol.v1.CaseService/ListCases"), Duration::from_secs(30));
        assert_eq!(timeouts.of("/nol.v1.RegistryService/CreatePupil"), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_limit_is_stopped_and_answered_deadline_exceeded() {
        let (private_pem, public_pem) = nol_auth::generate_signing_key_pem().unwrap();
        let issuer = nol_auth::TokenIssuer::from_pem(private_pem.as_bytes()).unwrap();
        let token = issuer
            .issue("slow", RegionCode::parse("320102").unwrap(), Role::Caseworker, std::time::Duration::from_secs(600))
            .unwrap();
        let verifier = TokenVerifier::from_pem(public_pem.as_bytes()).unwrap();
        let layer = AccessLayer::new(verifier)
            .with_timeouts(Timeouts { call: Duration::from_secs(5), long_call: Duration::from_secs(60) });
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let witness = dropped.clone();
        let slow = tower::service_fn(move |_request: http::Request<()>| {
            let guard = SetOnDrop(witness.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(guard);
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        });
        let mut service = tower::Layer::layer(&layer, slow);
        let request = http::Request::builder()
            .uri("/nol.v1.CaseService/ListCases")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .unwrap();
        let response = tower::Service::call(&mut service, request).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).expect("a status in the headers");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst), "the handler's future was dropped");
        let zh =
            status.get_error_details().localized_message().map(|message| message.message.clone()).unwrap_or_default();
        assert!(zh.contains("请求处理超过 5 秒"), "{zh}");
    }

    #[test]
    fn a_caller_over_its_calls_in_flight_is_refused_and_others_are_not() {
        let limits = CallerLimits::new(2);
        let (busy, other) = (caller("busy"), caller("other"));
        let first = limits.admit(&busy).unwrap();
        let _second = limits.admit(&busy).unwrap();
        let refused = limits.admit(&busy).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("同时进行的请求过多"), "{}", refused.message());
        assert!(limits.admit(&other).is_ok(), "another caller is not held back");
        drop(first);
        assert!(limits.admit(&busy).is_ok(), "a finished call frees its place");
    }
}
