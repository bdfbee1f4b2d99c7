//! Every hop is TLS, and plaintext is refused: the services' gRPC ports, the dashboard, each
//! province's NATS server (which also knows every client by its certificate and lets a service
//! publish only its own events), and the leaf links to the national exchange's hub.

mod common;

use std::time::Duration;

use common::{TestStack, handoffs};
use nol_auth::Role;
use nol_proto::v1::{HandoffDirection, HandoffState};
use tokio::io::AsyncBufReadExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The INFO line a NATS server sends first on `port`, as JSON.
async fn nats_info(port: u16) -> serde_json::Value {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("the port answers");
    let mut line = String::new();
    tokio::io::BufReader::new(stream).read_line(&mut line).await.expect("an INFO line");
    let json = line.strip_prefix("INFO ").unwrap_or_else(|| panic!("not an INFO line: {line:?}"));
    serde_json::from_str(json.trim()).expect("INFO is JSON")
}

async fn health(channel: tonic::transport::Channel) -> anyhow::Result<i32> {
    let request = HealthCheckRequest { service: "nol.v1.RegistryService".into() };
    Ok(HealthClient::new(channel).check(request).await?.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hop_is_tls_and_plaintext_is_refused() {
    let test = TestStack::start().await;
    let jiangsu = test.stack().province("320000");
    let elsewhere = tempfile::tempdir().unwrap();
    let other_ca = nol_stack::nats::NatsTls::standalone(elsewhere.path()).unwrap();

    // gRPC: over TLS, checked against the deployment's CA, a call is served.
    let url = jiangsu.registry.url();
    assert!(url.starts_with("https://"), "{url}");
    let channel = jiangsu.client_tls.endpoint(&url).unwrap().connect().await.expect("a TLS connection");
    assert_eq!(health(channel).await.unwrap(), tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    // A plaintext caller (HTTP/2 without TLS) is not served at all.
    let plaintext = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", jiangsu.registry.addr))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await?;
        health(channel).await
    };
    assert!(plaintext.await.is_err(), "a plaintext gRPC call was answered");
    // Nor does a client that trusts another CA accept the service's certificate.
    let stranger = nol_tls::ClientTls::from_ca_file(&other_ca.server.ca).unwrap();
    let unverified = async { health(stranger.endpoint(&url)?.connect().await?).await };
    assert!(unverified.await.is_err(), "a certificate of another CA was trusted");
    // And the clients themselves refuse a plaintext URL.
    assert!(jiangsu.client_tls.channel(&format!("http://{}", jiangsu.registry.addr)).is_err());

    // The dashboard: HTTPS only.
    let web = common::web::web_url(&test, "320000");
    let page = web.client.get(format!("{web}/")).send().await.expect("the dashboard over HTTPS");
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let addr = jiangsu.reporting.web_addr.unwrap();
    let plain = reqwest::Client::new().get(format!("http://{addr}/")).timeout(Duration::from_secs(5)).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "the dashboard answered plaintext HTTP");

    // The province's NATS server requires TLS and a client certificate from the CA.
    let nats = &test.stack().nats[0];
    let info = nats_info(nats.client_port).await;
    assert_eq!(info["tls_required"], true, "{info}");
    assert_eq!(info["tls_verify"], true, "{info}");
    let nats_url = format!("tls://127.0.0.1:{}", nats.client_port);
    let ca = test.stack().keys.ca_path();
    let no_certificate = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca.clone())
        .connection_timeout(Duration::from_secs(5))
        .connect(&nats_url)
        .await;
    assert!(no_certificate.is_err(), "a NATS client without a certificate was let in");
    let foreign = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca.clone())
        .add_client_certificate(other_ca.client.cert.clone(), other_ca.client.key.clone())
        .connection_timeout(Duration::from_secs(5))
        .connect(&nats_url)
        .await;
    assert!(foreign.is_err(), "a NATS client with another CA's certificate was let in");

    // Each service is a user of its own: the case service's certificate may not publish the
    // registry's events, and nothing it tried is stored.
    let cases_identity = test.stack().keys.service_tls(&common::code("320000"), "cases").unwrap();
    let client = nol_backbone::connect_nats(&nats.client_url(), "impostor", &cases_identity).await.unwrap();
    let js = nol_backbone::jetstream_context(client.clone(), Duration::from_secs(2));
    let stream_name = format!("{}_320000", test.subject_prefix.to_ascii_uppercase());
    let stored = |js: async_nats::jetstream::Context| {
        let stream_name = stream_name.clone();
        async move { js.get_stream(&stream_name).await.unwrap().info().await.unwrap().state.messages }
    };
    let before = stored(js.clone()).await;
    let forged = format!("{}.320000.evt.registry.pupil_registered.320102", test.subject_prefix);
    let refused = match js.publish(forged, "forged".into()).await {
        Ok(ack) => ack.await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "the case service's certificate published a registry event");
    assert_eq!(stored(js).await, before, "the forged event was stored");

    // The leaf links to the exchange's hub: TLS both ways, a certificate required of each leaf.
    let leaf_port = test.stack().hub.leaf_port.expect("the hub's leaf port");
    let info = nats_info(leaf_port).await;
    assert_eq!(info["tls_required"], true, "{info}");
    // And across them, a hand-off still completes (signed, sealed, over TLS all the way).
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let case = handoffs::migrant_case(&xuanwu, "随迁子女", 41, "341221").await;
    let handoff = handoffs::request(&xuanwu, &case.case_id, "341221").await.expect("requested");
    handoffs::delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    handoffs::accept(&linquan, &handoff.handoff_id).await.expect("accepted");
    handoffs::until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;

    test.finish().await;
}
