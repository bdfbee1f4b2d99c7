//! The written notice (书面通知) of a hand-off: R11 says the inflow region notifies the household
//! registration region "in writing". A numbered PDF in Chinese — issuing bureau, date, the child's
//! name and masked number, hukou region, reason, the rule, the contact officer — kept with its
//! SHA-256 on both sides; the number runs per issuing bureau and year (玄武区教育局移交〔2027〕3号).

use chrono::{Datelike, NaiveDate};
use nol_documents::{Align, Block, CjkFont, Document, DocumentError};
use nol_proto::v1::HandoffDossier;
use nol_region::RegionCode;
use sha2::{Digest, Sha256};

/// What a notice says.
pub struct NoticeFacts<'a> {
    pub number: &'a str,
    pub handoff_id: &'a str,
    pub case_id: &'a str,
    pub origin: RegionCode,
    pub destination: RegionCode,
    pub reason: &'a str,
    pub requested_by: &'a str,
    pub date: NaiveDate,
    pub dossier: &'a HandoffDossier,
}

/// The notice's number: the issuing county's bureau, the year and the running number.
pub fn number(bureau: &RegionCode, year: i32, running: i32) -> String {
    format!("{}教育局移交〔{year}〕{running}号", bureau.name())
}

/// The notice as a PDF and its SHA-256.
pub fn render(font: &CjkFont, facts: &NoticeFacts<'_>) -> Result<(Vec<u8>, Vec<u8>), DocumentError> {
    let child = facts.dossier.child.clone().unwrap_or_default();
    let hukou = RegionCode::parse(&child.hukou_region_code)
        .map(|region| format!("{}（{}）", region.full_name(), region))
        .unwrap_or_else(|_| child.hukou_region_code.clone());
    let contact = facts
        .dossier
        .officers
        .first()
        .map(|officer| format!("{}（电话 {}）", officer.full_name, officer.phone))
        .unwrap_or_else(|| facts.requested_by.to_owned());
    let date = format!("{}年{}月{}日", facts.date.year(), facts.date.month(), facts.date.day());
    let document = Document {
        blocks: vec![
            Block::Title("关于移交辍学学生劝返案件的通知".to_owned()),
            Block::Line { text: facts.number.to_owned(), align: Align::Center, size: 12.0 },
            Block::Space(12.0),
            Block::Line {
                text: format!("{}教育局：", facts.destination.full_name()), align: Align::Left, size: 12.0
            },
            Block::Paragraph(
                "根据《江苏省教育厅关于做好控辍保学工作的通知》（苏教基函〔2020〕24号）：辍学后流动的，原流入地应书面\
                 通知户籍所在地，由户籍所在地牵头，会同新的流入地共同做好劝返复学工作。现将下列学生的辍学劝返案件\
                 移交贵局，请在规定时限内作出接收或拒收决定，并通过系统答复。"
                    .to_owned(),
            ),
            Block::Space(6.0),
            Block::Fields(vec![
                ("学生姓名：".to_owned(), child.full_name.clone()),
                ("身份证号：".to_owned(), child.resident_id_masked.clone()),
                ("出生年份：".to_owned(), birth_year(&child)),
                ("户籍所在地：".to_owned(), hukou),
                ("移交原因：".to_owned(), facts.reason.to_owned()),
                ("依据：".to_owned(), "R11 辍学后流动：户籍所在地牵头劝返，新流入地配合".to_owned()),
                ("联系人：".to_owned(), contact),
                ("移交编号：".to_owned(), facts.handoff_id.to_owned()),
                ("原案件编号：".to_owned(), facts.case_id.to_owned()),
            ]),
            Block::Space(36.0),
            Block::Line { text: format!("{}教育局", facts.origin.full_name()), align: Align::Right, size: 12.0 },
            Block::Line { text: date, align: Align::Right, size: 12.0 },
        ],
        footer: facts.number.to_owned(),
    };
    let pdf = document.to_pdf(font)?;
    let sha256 = Sha256::digest(&pdf).to_vec();
    Ok((pdf, sha256))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The child's year of birth as the notice prints it (the notice is a document other bureaus
/// keep: it carries the masked number and the year, never the birth date).
fn birth_year(child: &nol_proto::v1::ChildSummary) -> String {
    let year = match child.birth_year {
        0 => chrono::NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d")
            .map(|date| chrono::Datelike::year(&date))
            .unwrap_or(0),
        year => year,
    };
    if year > 0 { format!("{year}年") } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_run_per_bureau_and_year() {
        let xuanwu = RegionCode::parse("320102").unwrap();
        assert_eq!(number(&xuanwu, 2027, 3), "玄武区教育局移交〔2027〕3号");
    }
}
