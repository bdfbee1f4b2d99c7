//! The messages of deadlines, supervision (督办, R12) and the semester-start check (R13).

use crate::catalogue;

catalogue! {
    pub enum Supervision {
        NotAnswered =>
            "R12: the supervision item has not been answered by the lower bureau yet", "R12：下级尚未答复该督办事项";
        ClosedTakesNoAnswers =>
            "R12: the supervision item is closed; it takes no more answers", "R12：该督办事项已办结，不再接受答复";
        AlreadyClosed => "R12: the supervision item is already closed", "R12：该督办事项已办结";
        MarkAfterRelapse =>
            "R13: the absence was confirmed and the case reopened as a relapse; work the case instead",
            "R13：缺勤已确认，案件已作为反弹重新打开，请在案件中继续办理";
        NotMarkedAbsent => "R13: the school has not marked the child absent", "R13：学校尚未登记该学生缺勤";
        MarkedPresent =>
            "R13: the school marked the child present; nothing to follow up", "R13：学校已登记该学生到校，无需核查";
        AlreadyRelapsed =>
            "R13: the absence was already confirmed and the case reopened", "R13：缺勤已确认，案件已重新打开";
        Semester => "must be YYYY-spring or YYYY-autumn", "格式应为 YYYY-spring（春季）或 YYYY-autumn（秋季）";
        SemesterYear => "the year must be between 2000 and 2100", "年份应在 2000 至 2100 之间";
        DeadlinePast { today: String } => "is in the past (today is {today})", "早于今天（今天是 {today}）";
        MustBeDate => "must be a date YYYY-MM-DD", "应为日期，格式 YYYY-MM-DD";
        CheckOverlaps { semester: String, check_id: String, region: String } =>
            "R13: the {semester} check {check_id} over {region} already covers this region",
            "R13：{semester} 学期对 {region} 的开学核查 {check_id} 已覆盖该地区";
        NoCheck { check_id: String } => "no semester check {check_id}", "没有编号为 {check_id} 的开学核查";
        NoCheckItem { item_id: String } => "no semester check item {item_id}", "没有编号为 {item_id} 的开学核查记录";
        NoItem { item_id: String } => "no supervision item {item_id}", "没有编号为 {item_id} 的督办事项";
        UnknownKind => "is not a known kind of overdue work", "不是有效的逾期工作类型";
        UnknownState => "is not a known supervision state", "不是有效的督办状态";
        UnknownCheckItemState => "is not a known check item state", "不是有效的核查记录状态";
        FollowUpOutcome => "must be CONFIRMED_ABSENT or IN_CLASS", "应为 CONFIRMED_ABSENT（确认缺勤）或 IN_CLASS（已在校）";
        FollowUpNote =>
            "is required: who was contacted and what they said", "为必填项：联系了谁、对方怎么说";
        AnswerRequired => "is required: what the county did", "为必填项：县（区）采取了哪些措施";
        PolicyDays { least: i32 } => "must be between {least} and 366 days", "应在 {least} 至 366 天之间";
        /// Why a supervision item was raised (stored with the item, read by the supervising bureau).
        Overdue { what: OverdueWhat, due_on: String } =>
            { format!("R12: {} was due on {due_on} and is overdue past the supervision threshold", what.en()) },
            { format!("R12：{}应于 {due_on} 前完成，逾期已超过督办时限", what.zh()) };
        /// A county's report not submitted by its due date.
        ReportLate { period: String, due_on: String } =>
            "R12, R16: the bi-monthly report for {period} was due on {due_on} and has not been submitted",
            "R12、R16：{period}双月报应于 {due_on} 前报送，至今未报";
        /// A city's semester report not submitted by its due date.
        SemesterReportLate { period: String, due_on: String } =>
            "R12, R16: the semester report for {period} was due on {due_on} and has not been submitted",
            "R12、R16：{period}工作报告应于 {due_on} 前报送，至今未报";
        /// A hand-off the destination left unanswered past its deadline.
        HandoffOverdue { handoff_id: String, destination: String, origin: String } =>
            "R12: hand-off {handoff_id} to {destination} not accepted by its deadline; the case stays with {origin}",
            "R12：移交 {handoff_id} 未在时限内被 {destination} 接收，案件仍由 {origin} 负责";
    }
}

crate::words! {
    /// Which work is overdue.
    #[derive(Copy)]
    pub enum OverdueWhat {
        FirstContact => "first contact after confirmation", "确认辍学后的首次联系";
        NextAttempt => "the next persuasion attempt", "下一次劝返";
        FollowUp => "the follow-up of a deferred or suspended case", "缓学休学案件的跟踪回访";
        SemesterCheck => "confirming the child at the semester-start check", "开学核查中的到校确认";
        HandoffDecision => "the decision on a hand-off", "移交案件的接收决定";
        Report => "the bi-monthly report", "双月报的报送";
        Assistance => "the work on a request for help between regions", "跨地区协查请求的办理";
    }
}
