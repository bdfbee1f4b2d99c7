//! gRPC clients of one province's services, calling with a bearer token.

use nol_proto::v1::admin_service_client::AdminServiceClient;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::reporting_service_client::ReportingServiceClient;
use nol_proto::v1::transfer_service_client::TransferServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::ProvinceStack;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Bearer> {
        Ok(Bearer(format!("Bearer {token}").parse()?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The four services of a province, as one caller.
#[derive(Clone)]
pub struct Clients {
    pub registry: RegistryServiceClient<Authed>,
    pub cases: CaseServiceClient<Authed>,
    pub transfer: TransferServiceClient<Authed>,
    pub reporting: ReportingServiceClient<Authed>,
}

impl Clients {
    /// Clients of a running province stack.
    pub fn for_province(province: &ProvinceStack, token: &str) -> anyhow::Result<Clients> {
        Clients::at(
            &province.registry.url(),
            &province.cases.url(),
            &province.transfer.url(),
            &province.reporting.url(),
            token,
        )
    }

    /// Clients of services at these URLs.
    pub fn at(registry: &str, cases: &str, transfer: &str, reporting: &str, token: &str) -> anyhow::Result<Clients> {
        let bearer = Bearer::new(token)?;
        let channel =
            |url: &str| -> anyhow::Result<Channel> { Ok(Endpoint::from_shared(url.to_owned())?.connect_lazy()) };
        Ok(Clients {
            registry: RegistryServiceClient::with_interceptor(channel(registry)?, bearer.clone()),
            cases: CaseServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            transfer: TransferServiceClient::with_interceptor(channel(transfer)?, bearer.clone()),
            reporting: ReportingServiceClient::with_interceptor(channel(reporting)?, bearer),
        })
    }
}

impl Clients {
    /// Registers a primary school unless its code is already registered.
    pub async fn ensure_school(&self, school_code: &str, name: &str, region_code: &str) -> anyhow::Result<()> {
        let school = nol_proto::v1::School {
            school_code: school_code.into(),
            name: name.into(),
            region_code: region_code.into(),
            level: nol_proto::v1::SchoolLevel::Primary as i32,
            ownership: nol_proto::v1::SchoolOwnership::Public as i32,
            ..Default::default()
        };
        match self.registry.clone().create_school(nol_proto::v1::CreateSchoolRequest { school: Some(school) }).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(status.into()),
        }
    }
}

/// The admin service of one service process, as `token`'s caller.
pub fn admin(url: &str, token: &str) -> anyhow::Result<AdminServiceClient<Authed>> {
    let channel = Endpoint::from_shared(url.to_owned())?.connect_lazy();
    Ok(AdminServiceClient::with_interceptor(channel, Bearer::new(token)?))
}
