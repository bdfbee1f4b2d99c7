//! The messages of transfer: the cross-region hand-off of a dropout case (R11).

use crate::{catalogue, words};

words! {
    #[derive(Copy)]
    /// Where a case stands when a refusal to hand it over names it ("the case is {standing}").
    pub enum CaseStanding {
        HandedOver => "handed over", "已移交";
        Returned => "returned to school", "已复学";
        Monitoring => "in monitoring", "处于复学后巩固监测期";
        HomeTeaching => "in home teaching", "正在接受送教上门";
        Deferred => "deferred", "已批准缓学";
        Suspended => "suspended", "已批准休学";
        Exempt => "exempt", "已免于入学";
        Closed => "closed", "已结案";
        Unknown => "in an unknown state", "状态不明";
    }
}

words! {
    #[derive(Copy)]
    /// Where a decided hand-off is, for a refusal that names it.
    pub enum HandoffStanding {
        Undecided => "not decided yet", "尚未决定";
        Accepted => "accepted", "已被接收";
        Rejected => "rejected", "已被拒收";
        Cancelled => "cancelled", "已被撤回";
        Completed => "completed", "已办结";
    }
}

words! {
    #[derive(Copy)]
    /// Why a destination refused a hand-off.
    pub enum RejectReasonWord {
        ChildNotFound => "the child cannot be found here", "本地查无此学生";
        HukouNotHere => "the child's household registration is not here", "该学生户籍不在本地";
        AlreadyHasCase => "the child already has a case here", "该学生在本地已有在办案件";
        DataWrong => "the data of the request is wrong", "移交信息有误";
        Other => "another reason (see the note)", "其他原因（见说明）";
    }
}

catalogue! {
    pub enum Transfer {
        /// The destination is the region that owns the case already.
        SameRegion { name: String, code: String } =>
            "R11: the case is already owned by {name} ({code}); hand it to another region",
            "R11：该案件已由{name}（{code}）负责，请移交给其他地区";
        CaseNotOpen { standing: CaseStanding } =>
            { format!("R11: the case is {}; only an open case can be handed over", standing.en()) },
            { format!("R11：该案件{}，只有在办案件才能移交", standing.zh()) };
        AlreadyUnderWay =>
            "R11: a hand-off of this case is already under way", "R11：该案件已有一项移交正在办理中";
        /// No sealing key of the destination's province is configured.
        NoLink { name: String, code: String } =>
            "R11: no hand-off link to {name} ({code}) is configured", "R11：尚未配置与{name}（{code}）之间的移交通道";
        /// Accepted before, by whom and when (RFC 3339); "?" and "" when the record lacks them.
        AlreadyAccepted { by: String, at: String } =>
            "R11: this hand-off was already accepted by {by} at {at}", "R11：该移交已于 {at} 由 {by} 接收";
        NotIncoming =>
            "R11: only an incoming hand-off can be accepted here", "R11：只能接收转入本地的移交";
        /// The reason of a hand-off request is missing.
        ReasonRequired =>
            "is required: tell the destination's case worker why", "为必填项：请向接收地的经办人员说明移交原因";
        NotADirection => "is not a known direction", "不是可识别的移交方向";
        NotAState => "is not a known state", "不是可识别的移交状态";
        NoIncomingHandoff { id: String } => "no incoming hand-off {id}", "没有编号为 {id} 的转入移交";
        NoHandoff { id: String } => "no hand-off {id}", "没有编号为 {id} 的移交";
        NotOutgoing =>
            "R11: only an outgoing hand-off can be withdrawn here", "R11：只能撤回本地发出的移交";
        AlreadyDecided { state: HandoffStanding } =>
            { format!("R11: this hand-off was already {}", state.en()) },
            { format!("R11：该移交{}", state.zh()) };
        /// The accept found the child's active case here: the hand-off is rejected instead.
        AcceptRefusedByR2 { case_id: String } =>
            "R2: the child already has an active case here ({case_id}); the hand-off is rejected as 'already has a case here' and stays with the origin",
            "R2：该学生在本地已有在办案件（{case_id}）；本次移交已按“本地已有在办案件”拒收，案件仍由移出地负责";
        RejectReasonRequired =>
            "is required: child not found, hukou not here, already has a case, data wrong, or other",
            "为必填项：查无此人、户籍不在本地、本地已有案件、信息有误或其他";
        NoteRequiredForOther => "is required when the reason is other", "原因为“其他”时须填写说明";
        CancelReasonRequired =>
            "is required: tell the destination's case worker why it is withdrawn", "为必填项：请向接收地说明撤回原因";
        NoNotice { id: String } => "hand-off {id} has no written notice", "移交 {id} 没有书面通知";
        NoTransferIn { id: String } => "no transfer-in request {id}", "没有编号为 {id} 的转入请求";
        TransferInNotMatched =>
            "R11: the request has not been matched to a case here yet", "R11：该请求尚未匹配到本地案件";
        TransferInDecided =>
            "R11: this transfer-in request was already decided", "R11：该转入请求已处理";
        DeclineReasonRequired => "is required: tell the asking region why", "为必填项：请向请求方说明原因";
        OwnerNotElsewhere =>
            "is the asking region itself; ask the region that owns the case", "为请求方自身，请填写案件所在地区";
        /// Declined automatically: no active case of the child in the owner's region.
        NoCaseThere => "no active case of this child in the region asked", "所请求地区没有该学生的在办案件";
        /// The written notice's hash does not match what the origin announced.
        NoticeMismatch =>
            "the written notice does not match its announced SHA-256", "书面通知与其声明的 SHA-256 校验值不符";
        RejectionNote { reason: RejectReasonWord, note: String } =>
            { if note.is_empty() { reason.en() } else { format!("{}: {note}", reason.en()) } },
            { if note.is_empty() { reason.zh() } else { format!("{}：{note}", reason.zh()) } };
        /// A request for help that states no need.
        NeedRequired =>
            "is required: say what the helping county should do", "为必填项：请说明需要对方协助办理的事项";
        NotAReason => "is not a known reason", "不是可识别的协查原因";
        /// Help asked of the case's own county.
        AssistanceToOwnCounty { name: String, code: String } =>
            "is the case's own county {name} ({code}); ask another county",
            "是本案所属县区{name}（{code}），请选择其他县区";
        DueDateNotAfterToday { today: String } =>
            "must be after today ({today})", "应晚于今天（{today}）";
        DueDateTooFar { latest: String } =>
            "is too far ahead; at the latest {latest}", "过晚，最迟为 {latest}";
        NoAssistance { id: String } => "no request for help {id}", "没有编号为 {id} 的协查请求";
        /// A request for help with this case to that county is still open.
        AssistanceOpenAlready { name: String, code: String } =>
            "a request for help with this case to {name} ({code}) is still open",
            "已向{name}（{code}）发出本案协查请求，尚未办结";
        AssistanceCaseEnded { standing: CaseStanding } =>
            { format!("the case is {}; only an active case can ask for help", standing.en()) },
            { format!("该案件{}，只有在办案件才能发起协查", standing.zh()) };
        AssistanceNotIncoming =>
            "only a request for help addressed to this region can be answered here",
            "只能办理发给本地区的协查请求";
        AssistanceNotOutgoing =>
            "only the county that asked for help can close the request", "只有发起协查的县区才能办结该请求";
        AssistanceAlready { state: AssistanceStanding } =>
            { format!("this request for help was already {}", state.en()) },
            { format!("该协查请求{}", state.zh()) };
        AssistanceNotAccepted { state: AssistanceStanding } =>
            { format!("only an accepted request for help takes reports; this one is {}", state.en()) },
            { format!("只有已接受的协查请求才能反馈办理情况，该请求{}", state.zh()) };
        ReportEmpty =>
            "is empty: report at least one persuasion attempt, finding or piece of evidence",
            "为空：请至少反馈一次劝返工作、一项核查结果或一份证明材料";
        FindingPlaceRequired =>
            "is required for this finding: where the child was found, or the school",
            "为必填项：请填写找到学生的地点或复学学校";
        NoHukouNotice { id: String } =>
            "no notice {id} received by this region", "本地区没有收到编号为 {id} 的户籍地告知";
        HukouNoticeAcknowledged => "this notice was already acknowledged", "该告知已签收";
        NewInflowIsDestination =>
            "is the destination itself; name the county the child moved to, or leave it empty",
            "与接收地相同；请填写学生新的流入地，或留空";
        CloseNoteRequired =>
            "is required: say why the request is closed, or what came of it", "为必填项：请说明办结原因或协查结果";
        /// R8, when the helping province has no link configured.
        NoLinkForAssistance { name: String, code: String } =>
            "no link to {name} ({code}) is configured; the request for help could not be sent",
            "尚未配置与{name}（{code}）之间的协查通道，协查请求无法发出";
    }
}

words! {
    #[derive(Copy)]
    /// Where a request for help is, for a refusal that names it.
    pub enum AssistanceStanding {
        Requested => "sent, not yet received", "已发出、对方尚未签收";
        Delivered => "received, not yet answered", "对方已签收、尚未答复";
        Accepted => "accepted", "已被接受";
        Declined => "declined", "已被拒绝";
        Closed => "closed", "已办结";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_what_the_service_answered_before_the_catalogue() {
        let same = Transfer::SameRegion { name: "江苏省南京市玄武区".into(), code: "320102".into() };
        assert_eq!(
            same.en(),
            "R11: the case is already owned by 江苏省南京市玄武区 (320102); hand it to another region"
        );
        assert_eq!(
            Transfer::CaseNotOpen { standing: CaseStanding::HandedOver }.en(),
            "R11: the case is handed over; only an open case can be handed over"
        );
        let again =
            Transfer::AlreadyAccepted { by: "caseworker@341221".into(), at: "2026-09-01T08:00:00+00:00".into() };
        assert_eq!(
            again.en(),
            "R11: this hand-off was already accepted by caseworker@341221 at 2026-09-01T08:00:00+00:00"
        );
        assert_eq!(crate::Msg::from(again).reason(), "ALREADY_ACCEPTED");
    }
}
