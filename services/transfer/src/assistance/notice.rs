//! R10: when a case opens for a migrant child (household registration in another county), the
//! hukou region is told: who, where the case is, why, whom to contact. Its system's receipt comes
//! back at once (delivered), and a case worker there acknowledges it (回执, acknowledged); the
//! owner sees both. A notice without a receipt is re-sent by the sweeper.

use chrono::{DateTime, Utc};
use nol_events::{EventHeader, EventType, HUKOU_NOTICE, HUKOU_NOTICE_ANSWERED};
use nol_proto::v1::{ChildSummary, HukouNoticeAnswered, HukouNoticeDue, HukouNoticeSent, HukouNoticeState};
use nol_region::RegionCode;
use prost::Message;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::Direction;
use crate::handoffs::{StepError, Steps};
use crate::store::{Undecodable, direction_as_stored, direction_from_stored};

/// The owner's message to the hukou region, in the bureaus' words.
fn message(owner: &RegionCode) -> String {
    format!(
        "贵地户籍学生在{}辍学，已由该地建立控辍保学案件（一人一案）并负责劝返；特此书面告知，请予配合，如需协同劝返请与联系人联系。",
        owner.full_name()
    )
}

/// One side's notice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: Uuid,
    pub direction: Direction,
    pub state: HukouNoticeState,
    pub case_id: Uuid,
    pub owner_region: RegionCode,
    pub hukou_region: RegionCode,
    pub child: ChildSummary,
    pub causes: Vec<i32>,
    pub message: String,
    pub contact: String,
    pub sent_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledge_note: Option<String>,
}

fn state_as_stored(state: HukouNoticeState) -> &'static str {
    match state {
        HukouNoticeState::Unspecified | HukouNoticeState::Sent => "sent",
        HukouNoticeState::Delivered => "delivered",
        HukouNoticeState::Acknowledged => "acknowledged",
        HukouNoticeState::Undeliverable => "undeliverable",
    }
}

fn state_from_stored(text: &str) -> Option<HukouNoticeState> {
    [
        HukouNoticeState::Sent,
        HukouNoticeState::Delivered,
        HukouNoticeState::Acknowledged,
        HukouNoticeState::Undeliverable,
    ]
    .into_iter()
    .find(|state| state_as_stored(*state) == text)
}

struct Row {
    id: Uuid,
    direction: String,
    state: String,
    case_id: Uuid,
    owner_region: String,
    hukou_region: String,
    child: Vec<u8>,
    causes: Vec<i32>,
    message: String,
    contact: String,
    sent_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledge_note: Option<String>,
    #[allow(dead_code)]
    last_sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Notice {
    type Error = Undecodable;

    fn try_from(row: Row) -> Result<Notice, Undecodable> {
        let undecodable =
            |column: &'static str, value: &str| Undecodable::new("hukou_notice", row.id, &row.direction, column, value);
        let region = |column: &'static str, text: &str| RegionCode::parse(text).map_err(|_| undecodable(column, text));
        Ok(Notice {
            direction: direction_from_stored(&row.direction).ok_or_else(|| undecodable("direction", &row.direction))?,
            state: state_from_stored(&row.state).ok_or_else(|| undecodable("state", &row.state))?,
            owner_region: region("owner_region", &row.owner_region)?,
            hukou_region: region("hukou_region", &row.hukou_region)?,
            child: ChildSummary::decode(row.child.as_slice()).map_err(|_| undecodable("child", "(bytes)"))?,
            id: row.id,
            case_id: row.case_id,
            causes: row.causes,
            message: row.message,
            contact: row.contact,
            sent_at: row.sent_at,
            delivered_at: row.delivered_at,
            acknowledged_by: row.acknowledged_by,
            acknowledged_at: row.acknowledged_at,
            acknowledge_note: row.acknowledge_note,
        })
    }
}

fn one(row: Option<Row>) -> sqlx::Result<Option<Notice>> {
    Ok(row.map(Notice::try_from).transpose()?)
}

fn header<'a>(event_type: EventType, source: RegionCode, id: &'a str, actor: &'a str) -> EventHeader<'a> {
    EventHeader {
        event_type,
        source_region: source,
        aggregate_type: "hukou_notice",
        aggregate_id: id,
        aggregate_sequence: 1,
        actor,
    }
}

struct NewNotice<'a> {
    id: Uuid,
    direction: Direction,
    state: HukouNoticeState,
    case_id: Uuid,
    owner_region: &'a RegionCode,
    hukou_region: &'a RegionCode,
    child: &'a ChildSummary,
    causes: &'a [i32],
    message: &'a str,
    contact: &'a str,
}

async fn insert(conn: &mut PgConnection, new: &NewNotice<'_>) -> sqlx::Result<Option<Notice>> {
    one(sqlx::query_as!(
        Row,
        "INSERT INTO hukou_notice (id, direction, state, case_id, owner_region, hukou_region, child, causes, message,
                                   contact, delivered_at, last_sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                 CASE WHEN $2 = 'incoming' THEN clock_timestamp() END,
                 CASE WHEN $2 = 'outgoing' THEN clock_timestamp() END)
         ON CONFLICT DO NOTHING
         RETURNING *",
        new.id,
        direction_as_stored(new.direction),
        state_as_stored(new.state),
        new.case_id,
        new.owner_region.as_str(),
        new.hukou_region.as_str(),
        new.child.encode_to_vec(),
        new.causes,
        new.message,
        new.contact,
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid, direction: Direction) -> sqlx::Result<Option<Notice>> {
    one(sqlx::query_as!(
        Row,
        "SELECT * FROM hukou_notice WHERE id = $1 AND direction = $2",
        id,
        direction_as_stored(direction)
    )
    .fetch_optional(executor)
    .await?)
}

/// Records a receipt or an acknowledgment on one side; a state only moves forward.
async fn answered(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: HukouNoticeState,
    by: Option<&str>,
    note: Option<&str>,
) -> sqlx::Result<Option<Notice>> {
    one(sqlx::query_as!(
        Row,
        "UPDATE hukou_notice
            SET state = CASE WHEN $3 = 'acknowledged' OR state = 'sent' THEN $3 ELSE state END,
                delivered_at = coalesce(delivered_at, clock_timestamp()),
                acknowledged_by = coalesce(acknowledged_by, $4),
                acknowledged_at = CASE WHEN $3 = 'acknowledged' THEN coalesce(acknowledged_at, clock_timestamp())
                                       ELSE acknowledged_at END,
                acknowledge_note = coalesce(acknowledge_note, $5)
          WHERE id = $1 AND direction = $2 AND state <> 'acknowledged'
          RETURNING *",
        id,
        direction_as_stored(direction),
        state_as_stored(state),
        by,
        note,
    )
    .fetch_optional(conn)
    .await?)
}

/// Outgoing notices not delivered for `after_secs`, locked for the sweeper.
pub async fn due_for_resend(conn: &mut PgConnection, after_secs: f64, limit: i64) -> sqlx::Result<Vec<Notice>> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT * FROM hukou_notice
          WHERE direction = 'outgoing' AND state = 'sent'
            AND last_sent_at < clock_timestamp() - make_interval(secs => $1)
          ORDER BY last_sent_at LIMIT $2
          FOR UPDATE SKIP LOCKED",
        after_secs,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Notice::try_from).collect::<Result<_, _>>()?)
}

/// Notices of a region subtree on either side, newest first, a page at a time.
pub async fn list(
    executor: impl PgExecutor<'_>,
    prefix: &str,
    direction: Option<Direction>,
    after: Option<nol_runtime::paging::Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Notice>> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT * FROM hukou_notice
          WHERE ((direction = 'outgoing' AND owner_region LIKE $1 || '%')
                 OR (direction = 'incoming' AND hukou_region LIKE $1 || '%'))
            AND ($2::text IS NULL OR direction = $2)
            AND ($3::timestamptz IS NULL OR (sent_at, id) < ($3, $4))
          ORDER BY sent_at DESC, id DESC
          LIMIT $5",
        prefix,
        direction.map(direction_as_stored),
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(Notice::try_from).collect::<Result<_, _>>()?)
}

impl Steps {
    /// The case service opened a migrant child's case: record the notice and send it (once per
    /// case: the notice's id is the event's).
    pub async fn send_hukou_notice(
        &self,
        conn: &mut PgConnection,
        event_id: Uuid,
        due: &HukouNoticeDue,
    ) -> Result<(), StepError> {
        let permanent = |what: &str| StepError::Permanent(format!("hukou notice of case {}: {what}", due.case_id));
        let case_id = Uuid::parse_str(&due.case_id).map_err(|_| permanent("case id"))?;
        let owner = RegionCode::parse(&due.region_code).map_err(|_| permanent("region"))?;
        let hukou = RegionCode::parse(&due.hukou_region_code).map_err(|_| permanent("hukou region"))?;
        let child = due.child.clone().unwrap_or_default();
        let seal = self.seal_key(&hukou);
        let new = NewNotice {
            id: event_id,
            direction: Direction::Outgoing,
            state: if seal.is_some() { HukouNoticeState::Sent } else { HukouNoticeState::Undeliverable },
            case_id,
            owner_region: &owner,
            hukou_region: &hukou,
            child: &child,
            causes: &due.causes,
            message: &message(&owner),
            contact: &due.opened_by,
        };
        let Some(notice) = insert(conn, &new).await? else { return Ok(()) };
        match seal {
            Some(_) => self.send_notice(conn, &notice).await?,
            None => {
                tracing::warn!(case_id = %case_id, hukou = %hukou, "R10: no link to the hukou province; notice not sent")
            }
        }
        Ok(())
    }

    /// Sends (or re-sends) an outgoing notice to the hukou region.
    pub async fn send_notice(&self, conn: &mut PgConnection, notice: &Notice) -> sqlx::Result<()> {
        let Some(seal) = self.seal_key(&notice.hukou_region) else { return Ok(()) };
        let message = HukouNoticeSent {
            notice_id: notice.id.to_string(),
            case_id: notice.case_id.to_string(),
            owner_region_code: notice.owner_region.to_string(),
            hukou_region_code: notice.hukou_region.to_string(),
            sealed_child: seal.seal_from(&notice.child.encode_to_vec(), self.province.as_str()),
            causes: notice.causes.clone(),
            message: notice.message.clone(),
            contact: notice.contact.clone(),
        };
        let id = notice.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(HUKOU_NOTICE, &notice.owner_region, &notice.hukou_region),
            header(HUKOU_NOTICE, notice.owner_region, &id, &notice.contact),
            &message,
        )
        .await?;
        sqlx::query!(
            "UPDATE hukou_notice SET last_sent_at = clock_timestamp() WHERE id = $1 AND direction = 'outgoing'",
            notice.id
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The hukou region receives a notice: recorded once, and its receipt sent back (again for a
    /// notice seen before, with where it stands).
    pub async fn receive_hukou_notice(&self, conn: &mut PgConnection, sent: &HukouNoticeSent) -> Result<(), StepError> {
        let permanent = |what: String| StepError::Permanent(format!("hukou notice {}: {what}", sent.notice_id));
        let id = Uuid::parse_str(&sent.notice_id).map_err(|_| permanent("id".into()))?;
        let owner = RegionCode::parse(&sent.owner_region_code).map_err(|_| permanent("owner region".into()))?;
        let hukou = RegionCode::parse(&sent.hukou_region_code).map_err(|_| permanent("hukou region".into()))?;
        if hukou.province() != self.province {
            return Err(permanent("addressed outside this province".into()));
        }
        let notice = match get(&mut *conn, id, Direction::Incoming).await? {
            Some(seen) => seen,
            None => {
                let opened = self
                    .seal
                    .open_from(&sent.sealed_child, owner.province().as_str())
                    .map_err(|error| permanent(error.to_string()))?;
                let child = ChildSummary::decode(opened.as_slice()).map_err(|error| permanent(error.to_string()))?;
                let case_id = Uuid::parse_str(&sent.case_id).map_err(|_| permanent("case id".into()))?;
                let new = NewNotice {
                    id,
                    direction: Direction::Incoming,
                    state: HukouNoticeState::Delivered,
                    case_id,
                    owner_region: &owner,
                    hukou_region: &hukou,
                    child: &child,
                    causes: &sent.causes,
                    message: &sent.message,
                    contact: &sent.contact,
                };
                tracing::info!(notice_id = %id, owner = %owner, hukou = %hukou, "R10: notice received");
                insert(conn, &new).await?.ok_or_else(|| permanent("not recorded".into()))?
            }
        };
        Ok(self.answer_notice(conn, &notice).await?)
    }

    /// Tells the owner where the hukou side's notice stands.
    pub async fn answer_notice(&self, conn: &mut PgConnection, notice: &Notice) -> sqlx::Result<()> {
        let message = HukouNoticeAnswered {
            notice_id: notice.id.to_string(),
            owner_region_code: notice.owner_region.to_string(),
            hukou_region_code: notice.hukou_region.to_string(),
            state: notice.state as i32,
            acknowledged_by: notice.acknowledged_by.clone().unwrap_or_default(),
            note: notice.acknowledge_note.clone().unwrap_or_default(),
        };
        let id = notice.id.to_string();
        let actor = notice.acknowledged_by.clone().unwrap_or_else(|| "system".to_owned());
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(HUKOU_NOTICE_ANSWERED, &notice.hukou_region, &notice.owner_region),
            header(HUKOU_NOTICE_ANSWERED, notice.hukou_region, &id, &actor),
            &message,
        )
        .await?;
        Ok(())
    }

    /// The owner learns of the receipt or the acknowledgment.
    pub async fn record_notice_answer(
        &self,
        conn: &mut PgConnection,
        answer: &HukouNoticeAnswered,
    ) -> Result<(), StepError> {
        let id = Uuid::parse_str(&answer.notice_id)
            .map_err(|_| StepError::Permanent(format!("hukou notice answer: id {:?}", answer.notice_id)))?;
        let state = HukouNoticeState::try_from(answer.state)
            .ok()
            .filter(|state| matches!(state, HukouNoticeState::Delivered | HukouNoticeState::Acknowledged))
            .ok_or_else(|| StepError::Permanent(format!("hukou notice {id}: not an answer")))?;
        if get(&mut *conn, id, Direction::Outgoing).await?.is_none() {
            return Err(StepError::Permanent(format!("hukou notice {id}: no such notice here")));
        }
        let by = Some(answer.acknowledged_by.as_str()).filter(|by| !by.is_empty());
        let note = Some(answer.note.as_str()).filter(|note| !note.is_empty());
        answered(conn, id, Direction::Outgoing, state, by, note).await?;
        Ok(())
    }

    /// A case worker of the hukou region acknowledges a notice; `None` when it was acknowledged
    /// already.
    pub async fn acknowledge_notice(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        by: &str,
        note: Option<&str>,
    ) -> sqlx::Result<Option<Notice>> {
        let Some(notice) =
            answered(conn, id, Direction::Incoming, HukouNoticeState::Acknowledged, Some(by), note).await?
        else {
            return Ok(None);
        };
        self.answer_notice(conn, &notice).await?;
        Ok(Some(notice))
    }
}
