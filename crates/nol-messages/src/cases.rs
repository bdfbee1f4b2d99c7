//! The messages of the case file and its life (R1–R11).

use crate::vocab::{CaseStep, DeferralGap, case_status_zh};
use crate::{Count, Msg, catalogue, join_en, join_zh};

fn statuses_en(statuses: &[&'static str]) -> String {
    statuses.join(" or ")
}

fn statuses_zh(statuses: &[&'static str]) -> String {
    statuses.iter().map(|status| case_status_zh(status)).collect::<Vec<_>>().join("或")
}

/// "deferral" or "suspension", from the stored kind.
fn deferral_word(kind: &str) -> (&'static str, &'static str) {
    if kind == "suspended" { ("suspension", "休学") } else { ("deferral", "缓学") }
}

catalogue! {
    pub enum Case {
        /// A school logging a home-teaching visit on a case whose child has no student record.
        NotYourPupil =>
            "this case's child has no student record; a school logs visits to its own pupils only",
            "此案件的学生没有学籍，学校只能为本校学生登记送教上门";
        // R11: the hand-off as the case sees it.
        HandoffNotOpen { status: &'static str } =>
            "R11: the case is {status}; only an open case can be handed over",
            { format!("R11：案件当前为{}，只有劝返中的案件可以移交", case_status_zh(status)) };
        HandoffUnderWay { pending: String } =>
            "R11: hand-off {pending} of this case is already under way", "R11：此案件的移交 {pending} 正在进行中";
        HandedOverByAnother { by: String, requested: String } =>
            "R11: the case was handed over by hand-off {by}, not {requested}",
            "R11：此案件已通过移交 {by} 移交，而不是 {requested}";
        /// A take-in asked by anyone but this province's transfer service.
        TakeInByTransferOnly =>
            "R11: only this province's transfer service opens the case of an accepted hand-off",
            "R11：接收移交后的案件只能由本省的移交服务开立";
        /// A take-in whose dossier cannot be opened or read.
        DossierUnreadable { why: String } =>
            "R11: the hand-off's dossier cannot be read ({why})", "R11：移交案卷无法读取（{why}）";

        // R2: one child, one case.
        NoCause => "R2: at least one cause is required", "R2：至少填写一项辍学原因";
        /// The child's active case, which the caller may see.
        ActiveCase { case_id: String, status: &'static str } =>
            "R2: this child already has an active case ({case_id}, {status})",
            { format!("R2：该学生已有在办案件（{case_id}，{}）", case_status_zh(status)) };
        /// The child's active case lies in a region the caller may not see.
        ActiveCaseElsewhere =>
            "R2: this child already has an active case in another region of the province",
            "R2：该学生已在本省其他地区有在办案件";
        /// A concurrent open won; its case is not readable (yet).
        ActiveCaseUnknown => "R2: this child already has an active case", "R2：该学生已有在办案件";
        /// The rule itself, over the statuses of the child's cases.
        ActiveCaseIn { status: &'static str } =>
            "R2: this child already has an active case ({status})",
            { format!("R2：该学生已有在办案件（{}）", case_status_zh(status)) };
        FileOfEndedCase { status: &'static str } =>
            "R2: the file of an ended case is kept as it is; this case is {status}",
            { format!("R2：已办结案件的案卷保持原样，不再修改；此案件为{}", case_status_zh(status)) };

        // Transitions (R1, R4, R5, R6, R13).
        WrongStatus { rule: &'static str, step: CaseStep, allowed: Vec<&'static str>, status: &'static str } =>
            { format!("{rule}: {} needs a case that is {}; this case is {status}", step.en(), statuses_en(allowed)) },
            { format!("{rule}：{}要求案件处于{}状态；此案件为{}", step.zh(), statuses_zh(allowed), case_status_zh(status)) };
        TooYoungToAgeOut { at: u32, age: u32 } =>
            "R1: closing as aged out needs a child of {at} or older; this child is {age}",
            "R1：以超出义务教育年龄结案需年满 {at} 周岁；该学生现年 {age} 周岁";
        CloseHowUnknown => "R1: a case closes as completed or as aged out", "R1：案件只能以完成劝返或超出义务教育年龄结案";
        NoSevereDisability =>
            "R4: home teaching needs a severe disability (grade 1 or 2) on record; this child has none",
            "R4：送教上门需登记有重度残疾（一级或二级），该学生没有";
        NoMedicalEvidence =>
            "R1: an exemption needs medical evidence on the case (evidence of type medical)",
            "R1：免学需在案卷中有医疗证明（证明材料类型：医疗）";
        DeferralAlreadyPending { kind: &'static str } =>
            "R6: a {kind} request is already pending on this case",
            { format!("R6：此案件已有待审批的{}申请", deferral_word(kind).1) };
        NoPendingDeferral =>
            "R6: no deferral request is pending; the county group approves a request",
            "R6：没有待审批的缓学休学申请；县级领导小组只审批已提出的申请";
        /// R6 (a)–(c): everything a deferral or suspension of `kind` still lacks.
        DeferralConditions { kind: &'static str, missing: Vec<DeferralGap> } =>
            {
                let word = deferral_word(kind).0;
                let text = join_en(missing.iter().map(DeferralGap::en));
                if matches!(missing.first(), Some(DeferralGap::JointAttempts { .. })) {
                    format!("R6: {word} {text}")
                } else {
                    format!("R6: {word} refused: {text}")
                }
            },
            { format!("R6：不符合{}条件：{}", deferral_word(kind).1, join_zh(missing.iter().map(DeferralGap::zh))) };
        AttemptOnEndedCase { status: &'static str } =>
            "R5: persuasion attempts are recorded on an active case; this case is {status}",
            { format!("R5：劝返记录只能登记在在办案件上；此案件为{}", case_status_zh(status)) };
        /// Only an approver of the owning county decides its deferral requests.
        DeferralDecidedByCounty { county: String, caller: String } =>
            "R6: deferral requests of {county} are decided by an approver of that county, not of {caller}",
            "R6：{county} 的缓学休学申请由该县（区）审批人员决定，{caller} 无权审批";
        DeferralAlreadyDecided { state: String, by: String } =>
            "R6: the request was already {state} by {by}",
            { format!("R6：该申请已由 {by} {}", if state == "approved" { "批准" } else { "驳回" }) };
        DeferralNoLongerPending => "R6: the request is no longer pending", "R6：该申请已不在待审批状态";
        MeasureAlreadyDone { done_on: String, by: String } =>
            "the measure was already marked done on {done_on} by {by}", "该措施已于 {done_on} 由 {by} 标记为完成";

        // Field checks of the case file.
        FundRequired => "R3: financial aid names the fund paying it", "R3：资助措施须写明资金来源";
        FundOnlyForAid => "is only for financial aid", "仅适用于资助措施";
        LearningSupportRequired => "R7: learning support names at least one form", "R7：学习帮扶须至少选择一种形式";
        LearningSupportOnlyForSupport => "is only for learning support", "仅适用于学习帮扶措施";
        DepartmentRequired => "R5: at least one department took part", "R5：至少有一个部门参与";
        MeansRequired =>
            "R5: at least one means (emotional, economic, administrative, legal)",
            "R5：至少采用一种劝返手段（感情、经济、行政、法律）";
        WorkPlaceRegionRequired =>
            "R8: a work place names its county-level region", "R8：务工地点须写明所在县级行政区";
        PlaceRegionOnlyForWorkPlace => "is only for a work place", "仅适用于务工地点";
        VisitMinutes => "is 1 to 600 minutes", "应为 1 至 600 分钟";
        EvidenceTooLarge { size: Count, max: Count } =>
            { format!("is {} bytes; at most 10 MiB ({} bytes)", size.en(), max.0) },
            { format!("文件大小为 {} 字节，最大 10 MiB（{} 字节）", size.0, max.0) };
        FileAndNameTogether =>
            "a file needs its name, and a name needs its file", "上传文件须填写文件名，填写文件名须上传文件";
        CloseReasonRequired => "is required: completed or aged out", "为必填项：完成劝返或超出义务教育年龄";
        RelapseNoteRequired => "is required: what happened", "为必填项：请说明发生了什么";
        DeferralKindRequired => "is required: deferred or suspended", "为必填项：缓学或休学";
        ReasonRequiredUpTo { max: Count } =>
            { format!("is required, at most {} characters", max.en()) }, { format!("为必填项，最多 {} 个字符", max.0) };
        UnknownStatus { value: i32 } => "{value} is not a known case status", "{value} 不是有效的案件状态";
        UnknownCause { value: i32 } => "{value} is not a known cause", "{value} 不是有效的辍学原因";
        TooManyToExport { limit: Count } =>
            { format!("more than {} cases match; narrow the region or the filters", limit.en()) },
            { format!("符合条件的案件超过 {} 件，请缩小地区或筛选条件", limit.0) };

        // Not found.
        NoCase { case_id: String } => "no case {case_id}", "没有编号为 {case_id} 的案件";
        NoMeasure { measure_id: String, case_id: String } =>
            "no measure {measure_id} on case {case_id}", "案件 {case_id} 没有编号为 {measure_id} 的措施";
        NoEvidence { evidence_id: String, case_id: String } =>
            "no evidence {evidence_id} on case {case_id}", "案件 {case_id} 没有编号为 {evidence_id} 的证明材料";
        EvidenceWithoutFile { evidence_id: String } =>
            "evidence {evidence_id} has no file", "证明材料 {evidence_id} 没有附件";
        NoDeferralRequest { request_id: String } =>
            "no deferral request {request_id}", "没有编号为 {request_id} 的缓学休学申请";

        // Texts the case service writes for others to read.
        /// R8: the request to the work place's bureau, in the assistance event.
        WorkPlaceAssistance { place: String, date: String, home: String } =>
            "R8: the child was found working in {place} on {date}; please persuade together with {home}",
            "R8：该学生于 {date} 被发现在{place}务工，请与{home}共同劝返";
    }
}

impl Case {
    /// R2 refusals are ALREADY_EXISTS (the child's one case exists); the rest are refusals of a
    /// state the case is in.
    pub fn is_active_case_conflict(&self) -> bool {
        matches!(
            self,
            Case::ActiveCase { .. } | Case::ActiveCaseElsewhere | Case::ActiveCaseUnknown | Case::ActiveCaseIn { .. }
        )
    }
}

impl From<Case> for Box<Msg> {
    fn from(message: Case) -> Box<Msg> {
        Box::new(message.into())
    }
}
