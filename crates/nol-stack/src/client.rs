//! gRPC clients of one province's services, calling with a bearer token.

pub use nol_import::Bearer;
use nol_import::RegistryClient;
use nol_proto::v1::admin_service_client::AdminServiceClient;
use nol_proto::v1::assistance_service_client::AssistanceServiceClient;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::reporting_service_client::ReportingServiceClient;
use nol_proto::v1::supervision_service_client::SupervisionServiceClient;
use nol_proto::v1::suspect_service_client::SuspectServiceClient;
use nol_proto::v1::transfer_service_client::TransferServiceClient;
use nol_tls::ClientTls;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::ProvinceStack;

type Authed = InterceptedService<Channel, Bearer>;

/// The four services of a province (and the ledger the case service also serves), as one caller.
#[derive(Clone)]
pub struct Clients {
    pub registry: RegistryClient,
    pub cases: CaseServiceClient<Authed>,
    /// The suspected-dropout ledger, served by the case service.
    pub suspects: SuspectServiceClient<Authed>,
    pub transfer: TransferServiceClient<Authed>,
    /// Regions working a case together (协查), served by the transfer service.
    pub assistance: AssistanceServiceClient<Authed>,
    pub reporting: ReportingServiceClient<Authed>,
    /// Deadlines, supervision and semester checks, served by the case service.
    pub supervision: SupervisionServiceClient<Authed>,
}

impl Clients {
    /// Clients of a running province stack.
    pub fn for_province(province: &ProvinceStack, token: &str) -> anyhow::Result<Clients> {
        Clients::at(
            &province.registry.url(),
            &province.cases.url(),
            &province.transfer.url(),
            &province.reporting.url(),
            &province.client_tls,
            token,
        )
    }

    /// Clients of services at these (`https://`) URLs.
    pub fn at(
        registry: &str,
        cases: &str,
        transfer: &str,
        reporting: &str,
        tls: &ClientTls,
        token: &str,
    ) -> anyhow::Result<Clients> {
        let bearer = Bearer::new(token)?;
        let channel = |url: &str| -> anyhow::Result<Channel> { tls.channel(url) };
        Ok(Clients {
            registry: RegistryServiceClient::with_interceptor(channel(registry)?, bearer.clone()),
            cases: CaseServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            supervision: SupervisionServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            suspects: SuspectServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            transfer: TransferServiceClient::with_interceptor(channel(transfer)?, bearer.clone()),
            assistance: AssistanceServiceClient::with_interceptor(channel(transfer)?, bearer.clone()),
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

impl Clients {
    /// Registers `count` sixth-graders at `school_code` whose hukou is `hukou` (a county code),
    /// born from 2013-05-02 on, and opens a case for each, `in_flight` at a time (benchmarks'
    /// setup); returns the case ids.
    pub async fn open_cases(
        &self,
        count: usize,
        school_code: &str,
        hukou: &str,
        in_flight: usize,
    ) -> anyhow::Result<Vec<String>> {
        use futures::StreamExt;
        use nol_proto::v1::{CreatePupilRequest, DropoutCause, OpenCaseRequest, Pupil};
        let birth = chrono::NaiveDate::from_ymd_opt(2013, 5, 2).unwrap_or_default();
        futures::stream::iter((0..count).map(|index| {
            let (mut registry, mut cases) = (self.registry.clone(), self.cases.clone());
            async move {
                let born = birth + chrono::Days::new((index / 1000) as u64);
                let resident_id = nol_pii::ResidentId::from_parts(hukou, born, (index % 1000) as u16)?;
                let pupil = registry
                    .create_pupil(CreatePupilRequest {
                        pupil: Some(Pupil {
                            full_name: format!("随迁子女{index}"),
                            resident_id: resident_id.expose().to_owned(),
                            hukou_region_code: hukou.into(),
                            school_code: school_code.into(),
                            grade: 6,
                            ..Default::default()
                        }),
                    })
                    .await?
                    .into_inner()
                    .pupil
                    .unwrap_or_default();
                let request = OpenCaseRequest {
                    pupil_id: pupil.pupil_id,
                    causes: vec![DropoutCause::FamilyPoverty as i32],
                    notes: String::new(),
                };
                let case = cases.open_case(request).await?.into_inner().dropout_case.unwrap_or_default();
                Ok::<_, anyhow::Error>(case.case_id)
            }
        }))
        .buffer_unordered(in_flight.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
    }
}

/// The registry client of a province's clients, for the import client (`nol_import::import_file`).
impl From<&Clients> for RegistryClient {
    fn from(clients: &Clients) -> RegistryClient {
        clients.registry.clone()
    }
}

/// The admin service of one service process, as `token`'s caller.
pub fn admin(url: &str, tls: &ClientTls, token: &str) -> anyhow::Result<AdminServiceClient<Authed>> {
    let channel = tls.channel(url)?;
    Ok(AdminServiceClient::with_interceptor(channel, Bearer::new(token)?))
}
