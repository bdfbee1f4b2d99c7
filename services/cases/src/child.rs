//! The child as the case service holds them: the resident ID number encrypted under the case
//! service's own data key, bound to its column and its row's blind index (so R2 finds the child's case without decrypting), masked
//! for every list, revealed only on an audited full read.

use chrono::NaiveDate;
use nol_pii::ResidentId;
use nol_proto::v1::{ChildSummary, Sex};
use nol_runtime::ServiceError;
use nol_runtime::keys::DataKeys;

/// Binds encrypted resident ID numbers of cases to their column, so a value copied elsewhere
/// won't decrypt.
pub const CASE_RESIDENT_ID_CONTEXT: &str = "cases.dropout_case.resident_id";

/// The same for the suspected-dropout ledger's column.
pub const SUSPECT_RESIDENT_ID_CONTEXT: &str = "cases.suspect.resident_id";

/// The child's record for a new case, the number encrypted.
#[derive(Debug, Clone)]
pub struct ChildRecord {
    pub full_name: String,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_index: Vec<u8>,
    pub resident_id_masked: String,
    /// 1 male, 2 female.
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
}

impl ChildRecord {
    /// A case's record of the child with this number, encrypted under `data_key`.
    pub fn new(data_key: &DataKeys, full_name: &str, resident_id: &ResidentId, hukou_region: &str) -> ChildRecord {
        let (resident_id_cipher, resident_id_index) = seal(data_key, resident_id, CASE_RESIDENT_ID_CONTEXT);
        ChildRecord {
            full_name: full_name.trim().to_owned(),
            resident_id_cipher,
            resident_id_index,
            resident_id_masked: resident_id.masked(),
            sex: sex_number(resident_id),
            birth_date: resident_id.birth_date(),
            hukou_region: hukou_region.to_owned(),
        }
    }
}

/// `Sex` as its number (1 male, 2 female), from the resident ID number.
pub fn sex_number(resident_id: &ResidentId) -> i16 {
    match resident_id.sex() {
        nol_pii::Sex::Male => 1,
        nol_pii::Sex::Female => 2,
    }
}

/// The child as lists and reads show it: the number masked and the year of birth; the number and
/// the birth date only when `revealed` (an audited full read) — the date with the last four
/// characters of the mask would rebuild the number.
pub fn summary(
    full_name: &str,
    masked: &str,
    sex: i16,
    birth_date: Option<NaiveDate>,
    hukou_region: &str,
    revealed: Option<&ResidentId>,
) -> ChildSummary {
    ChildSummary {
        full_name: full_name.to_owned(),
        resident_id_masked: masked.to_owned(),
        sex: match sex {
            1 => Sex::Male as i32,
            2 => Sex::Female as i32,
            _ => Sex::Unspecified as i32,
        },
        birth_date: revealed.and(birth_date).map(|date| date.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        birth_year: birth_date.map(|date| chrono::Datelike::year(&date)).unwrap_or_default(),
        hukou_region_code: hukou_region.to_owned(),
        resident_id: revealed.map(|id| id.expose().to_owned()).unwrap_or_default(),
    }
}

/// A case's child as lists and reads show it (see [`summary`]).
pub fn on_file(child: &crate::case::domain::ChildOnFile, revealed: Option<&ResidentId>) -> ChildSummary {
    summary(
        &child.full_name,
        &child.resident_id_masked,
        child.sex,
        Some(child.birth_date),
        &child.hukou_region,
        revealed,
    )
}

/// A resident ID number encrypted for the column `context`, bound to its row by the blind index
/// stored beside it, and that index.
pub fn seal(data_key: &DataKeys, resident_id: &ResidentId, context: &str) -> (Vec<u8>, Vec<u8>) {
    let index = data_key.blind_index(resident_id.expose());
    (data_key.encrypt(resident_id.expose().as_bytes(), context, &index), index)
}

/// Decrypts a stored resident ID number bound to `context` and its row's blind index `index`.
pub fn reveal(data_key: &DataKeys, cipher: &[u8], context: &str, index: &[u8]) -> Result<ResidentId, ServiceError> {
    let bytes = data_key.decrypt(cipher, context, index).map_err(|error| ServiceError::Internal(error.into()))?;
    let text = String::from_utf8(bytes).map_err(|error| ServiceError::Internal(error.into()))?;
    ResidentId::parse(&text).map_err(|error| ServiceError::Internal(error.into()))
}
