//! The messages of the suspected-dropout ledger (R14).

use crate::vocab::{suspect_outcome_zh, suspect_state_zh};
use crate::{Case, Msg, catalogue};

catalogue! {
    pub enum Suspect {
        AlreadyResolved { state: &'static str, outcome: String, by: String } =>
            "R14: this item was already {state} ({outcome}) by {by}; a resolved item cannot be resolved again",
            { format!("R14：该记录已由 {by} 处理为“{}”（{}），不能再次处理", suspect_state_zh(state), suspect_outcome_zh(outcome)) };
        PendingItem { suspect_id: String, recorded_by: String } =>
            "R14: this child already has a pending suspected-dropout item ({suspect_id}, recorded by {recorded_by})",
            "R14：该学生已有待核实的疑似辍学记录（{suspect_id}，由 {recorded_by} 登记）";
        PendingItemElsewhere =>
            "R14: this child already has a pending suspected-dropout item in the province",
            "R14：该学生在本省已有待核实的疑似辍学记录";
        ProvisionalIdentity =>
            "R2: the pupil's resident ID number is not known (a provisional identity); correct it in the registry first, or close the item as a data error",
            "R2：该学生的身份证号未知（临时身份）；请先在学籍系统中更正，或以数据错误销号";
        /// A case could not be opened, so the item stays in the ledger.
        StaysPending { because: Case } =>
            { format!("{}; the item stays pending", because.en()) },
            { format!("{}；该记录仍为待核实", because.zh()) };
        NoSuspect { suspect_id: String } => "no suspect {suspect_id}", "没有编号为 {suspect_id} 的疑似辍学记录";
        ProofRequired =>
            "is required: enrolled_elsewhere, deceased, emigrated, exempt or data_error",
            "为必填项：已在他处就读、死亡、出境、免学或数据错误";
        WhichSchool =>
            "which school: its code, or at least its region_code, is required",
            "请写明哪所学校：学校代码，或至少其所在地区代码";
        DaysMissed { max: i32 } => "must be between 1 and {max}", "应在 1 至 {max} 之间";
        ChildRequired => "a pupil_id or an unregistered child is required", "须提供学生编号或未登记学生的信息";
        VerifyingCounty { reason: Box<Msg> } =>
            { format!("the verifying county: {}", reason.en()) }, { format!("核实县（区）：{}", reason.zh()) };
        UnknownState => "is not a known suspect state", "不是有效的疑似辍学记录状态";
        UnknownOrigin => "is not a known suspect origin", "不是有效的疑似辍学记录来源";
        /// The reason a school's absence report records.
        SchoolReport { days: i32, since: String } =>
            "the school reports {days} school days missed since {since}", "学校报告自 {since} 起缺勤 {days} 个教学日";
    }
}
