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
