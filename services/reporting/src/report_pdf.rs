//! The PDF of an approved bi-monthly report, as it is filed: the county, the period, the frozen
//! figures, the notes and the workflow's history, in Chinese with the font embedded (subset).

use nol_documents::{Align, Block, CjkFont, Document, DocumentError};
use nol_proto::v1::{PeriodFigures, Report};

fn figure_rows(figures: &PeriodFigures) -> Vec<Vec<String>> {
    let rows: [(&str, i64); 29] = [
        ("在读学生（期末）", figures.pupils_enrolled),
        ("其中随迁子女", figures.pupils_enrolled_migrant),
        ("其中建档立卡", figures.pupils_enrolled_registered_poor),
        ("其中残疾学生", figures.pupils_enrolled_disability),
        ("新增学籍", figures.pupils_registered),
        ("新增疑似辍学", figures.suspects_new),
        ("疑似确认辍学", figures.suspects_confirmed),
        ("疑似销号", figures.suspects_closed),
        ("疑似待核实（期末）", figures.suspects_pending),
        ("新增辍学", figures.dropouts_new),
        ("接收移交", figures.cases_taken_in),
        ("移出", figures.cases_handed_out),
        ("劝返复学", figures.returned),
        ("复学后再次辍学（反弹）", figures.relapsed),
        ("缓学", figures.deferred),
        ("休学", figures.suspended),
        ("送教上门", figures.home_teaching),
        ("免学", figures.exempt),
        ("结案", figures.closed),
        ("劝返次数", figures.persuasion_attempts),
        ("其中联合劝返", figures.joint_persuasion_attempts),
        ("督办新增", figures.supervision_raised),
        ("督办办结", figures.supervision_closed),
        ("督办未结（期末）", figures.supervision_open),
        ("辍学存量（期末）", figures.dropout_balance),
        ("开学核查列入", figures.check_listed),
        ("核查确认到校", figures.check_present),
        ("核查确认反弹", figures.check_relapsed),
        ("核查未标记（期末）", figures.check_pending),
    ];
    rows.iter().map(|(name, value)| vec![(*name).to_owned(), value.to_string()]).collect()
}

fn or_blank(text: &str) -> String {
    if text.trim().is_empty() { "（未填写）".to_owned() } else { text.to_owned() }
}

/// The report's PDF. `state` and the steps' names are in Chinese already.
pub fn render(
    font: &CjkFont,
    report: &Report,
    state_zh: &str,
    steps: &[(String, String, String, String)],
) -> Result<Vec<u8>, DocumentError> {
    let figures = report.figures.clone().unwrap_or_default();
    let notes = report.notes.clone().unwrap_or_default();
    let mut blocks = vec![
        Block::Title(format!("{}控辍保学工作双月报", report.region_name)),
        Block::Line { text: format!("统计期：{}", report.period_name), align: Align::Center, size: 12.0 },
        Block::Space(12.0),
        Block::Fields(vec![
            ("报告单位".into(), report.region_name.clone()),
            ("统计期".into(), report.period_name.clone()),
            ("报告状态".into(), state_zh.to_owned()),
            ("报送截止".into(), report.due_on.clone()),
        ]),
        Block::Space(8.0),
        Block::Line { text: "一、主要数据".into(), align: Align::Left, size: 13.0 },
        Block::Table {
            header: vec!["指标".into(), "数值".into()],
            rows: figure_rows(&figures),
            widths: vec![3.0, 1.0],
        },
        Block::Space(8.0),
        Block::Line { text: "二、主要工作".into(), align: Align::Left, size: 13.0 },
        Block::Paragraph(or_blank(&notes.work_done)),
        Block::Line { text: "三、存在问题".into(), align: Align::Left, size: 13.0 },
        Block::Paragraph(or_blank(&notes.problems)),
        Block::Line { text: "四、下一步打算".into(), align: Align::Left, size: 13.0 },
        Block::Paragraph(or_blank(&notes.next_steps)),
        Block::Space(8.0),
        Block::Line { text: "五、办理记录".into(), align: Align::Left, size: 13.0 },
        Block::Table {
            header: vec!["时间（北京时间）".into(), "操作".into(), "单位".into(), "意见".into()],
            rows: steps
                .iter()
                .map(|(time, action, region, comment)| {
                    vec![time.clone(), action.clone(), region.clone(), comment.clone()]
                })
                .collect(),
            widths: vec![1.6, 1.0, 1.8, 2.0],
        },
    ];
    if !report.warnings.is_empty() {
        blocks.push(Block::Space(8.0));
        blocks.push(Block::Line { text: "数据核对提示".into(), align: Align::Left, size: 13.0 });
        blocks.extend(report.warnings.iter().map(|warning| Block::Paragraph(warning.clone())));
    }
    let document =
        Document { blocks, footer: format!("一个都不能少 · {} · {}", report.region_name, report.period_name) };
    document.to_pdf(font)
}
