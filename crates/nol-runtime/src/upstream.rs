//! Channels to the province's other services (cases → registry, transfer → cases, the dashboard →
//! all of them). A setting such as `NOL_CASES_URL` names one URL, or several separated by commas —
//! the replicas of that service — and calls are balanced over the replicas that answer, so one
//! replica dying costs the calls it had in flight, not the service.

use std::time::Duration;

use nol_tls::ClientTls;
use tonic::transport::{Channel, Endpoint};

/// A lazy channel to `urls` (one `https://` URL, or a comma-separated list of a service's
/// replicas), over TLS with the calling service's own certificate (mutual TLS).
pub fn channel(
    urls: &str,
    tls: &ClientTls,
    connect_timeout: Duration,
    timeout: Option<Duration>,
) -> anyhow::Result<Channel> {
    let endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            let endpoint = tls.endpoint(url)?.connect_timeout(connect_timeout).tcp_nodelay(true);
            Ok(match timeout {
                Some(timeout) => endpoint.timeout(timeout),
                None => endpoint,
            })
        })
        .collect::<anyhow::Result<Vec<Endpoint>>>()?;
    match endpoints.as_slice() {
        [] => anyhow::bail!("no service URL in {urls:?}"),
        [one] => Ok(one.connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_url_or_several() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
        let tls = ClientTls::from_ca_file(&ca).unwrap();
        let seconds = Duration::from_secs(1);
        assert!(channel("https://127.0.0.1:1", &tls, seconds, None).is_ok());
        assert!(channel("https://127.0.0.1:1, https://127.0.0.1:2", &tls, seconds, Some(seconds)).is_ok());
        assert!(channel("http://127.0.0.1:1", &tls, seconds, None).is_err(), "plaintext is refused");
        assert!(channel(" , ", &tls, seconds, None).is_err());
        assert!(channel("not a url", &tls, seconds, None).is_err());
    }
}
