//! The demo seed: the walking skeleton's scenario on the local stack. A migrant child enrolled in
//! 南京市玄武区 (320102) with hukou in 安徽省阜阳市临泉县 (341221) drops out; the family has
//! moved back; the case is handed to 341221 (R11) and accepted there.

use std::time::Duration;

use chrono::NaiveDate;
use nol_auth::Role;
use nol_pii::ResidentId;
use nol_proto::v1::{
    AcceptHandoffRequest, CaseStatus, CreatePupilRequest, DropoutCause, HandoffDirection, HandoffState,
    ListCasesRequest, ListHandoffsRequest, OpenCaseRequest, Pupil, RequestHandoffRequest,
};
use nol_region::RegionCode;
use nol_stack::{Clients, Stack, eventually};

/// Waits until `destination` lists the hand-off as delivered to it.
pub async fn arrived(destination: &Clients, handoff_id: &str, what: &str) -> anyhow::Result<()> {
    eventually(what, Duration::from_secs(30), || {
        let mut transfer = destination.transfer.clone();
        let handoff_id = handoff_id.to_owned();
        async move {
            let incoming = transfer
                .list_handoffs(ListHandoffsRequest {
                    direction: HandoffDirection::Incoming as i32,
                    state: HandoffState::Delivered as i32,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok(incoming.handoffs.iter().any(|handoff| handoff.handoff_id == handoff_id).then_some(()))
        }
    })
    .await
}

pub async fn seed(stack: &Stack) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let jiangsu = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("demo.xuanwu", RegionCode::parse("320102")?, Role::Caseworker, hour)?,
    )?;
    let anhui = Clients::for_province(
        stack.province("340000"),
        &stack.keys.token("demo.linquan", RegionCode::parse("341221")?, Role::Caseworker, hour)?,
    )?;
    jiangsu.ensure_school("3201020001", "南京市玄武区示范小学", "320102").await?;
    let resident_id = ResidentId::from_parts("341221", NaiveDate::from_ymd_opt(2013, 5, 2).unwrap_or_default(), 31)?;

    let created = jiangsu
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "李小明".into(),
                resident_id: resident_id.expose().to_owned(),
                hukou_region_code: "341221".into(),
                school_code: "3201020001".into(),
                grade: 5,
                ..Default::default()
            }),
        })
        .await;
    let pupil = match created {
        Ok(response) => response.into_inner().pupil.unwrap_or_default(),
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            eprintln!("demo: data already present ({})", status.message());
            return Ok(());
        }
        Err(status) => anyhow::bail!("registering the demo pupil: {status}"),
    };
    eprintln!("demo: registered pupil {} ({}) in 320102", pupil.pupil_id, pupil.resident_id_masked);

    let case = jiangsu
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: pupil.pupil_id.clone(),
            causes: vec![DropoutCause::FamilyPoverty as i32, DropoutCause::Other as i32],
            notes: "连续两周未到校，家长电话称全家已返回户籍地。".into(),
        })
        .await?
        .into_inner()
        .dropout_case
        .unwrap_or_default();
    eprintln!("demo: opened case {} in 320102", case.case_id);

    let handoff = jiangsu
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest {
            case_id: case.case_id.clone(),
            destination_region_code: "341221".into(),
            reason: "家庭已返回户籍所在地安徽省阜阳市临泉县，依R11书面告知户籍地牵头劝返。".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .handoff
        .unwrap_or_default();
    eprintln!("demo: requested hand-off {} to 341221", handoff.handoff_id);

    let handoff_id = handoff.handoff_id.clone();
    arrived(&anhui, &handoff_id, "Anhui to receive the hand-off").await?;
    anhui.transfer.clone().accept_handoff(AcceptHandoffRequest { handoff_id: handoff_id.clone() }).await?;
    eprintln!("demo: 341221 accepted hand-off {handoff_id}");

    eventually("Jiangsu's case to be marked handed over", Duration::from_secs(30), || {
        let mut cases = jiangsu.cases.clone();
        async move {
            let handed_over = cases
                .list_cases(ListCasesRequest { status: CaseStatus::HandedOver as i32, ..Default::default() })
                .await?
                .into_inner();
            Ok((!handed_over.dropout_cases.is_empty()).then_some(()))
        }
    })
    .await?;
    eprintln!("demo: done — 320102 shows the case handed over, 341221 owns it");
    crate::demo_slice::seed(stack).await
}
