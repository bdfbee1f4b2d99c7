//! The words messages are made of: what a role may do, the names of roles. Shared by every
//! area's messages so the same thing is always called the same.

use crate::words;

words! {
    #[derive(Copy)]
    /// What a caller tried to do, for a refusal by role ("the school role may not open dropout cases").
    pub enum Action {
        AcceptHandoffs => "accept hand-offs", "接收移交";
        AnswerSupervisionItems => "answer supervision items", "答复督办事项";
        ChangeCaseFiles => "change case files", "修改案卷";
        ChangeEnrollmentStatus => "change enrollment status", "变更学籍状态";
        ChangeDeadlinePolicy => "change the deadline policy", "修改办理时限";
        CloseCrossCheckItems => "close cross-check items", "销号比对疑点";
        CloseSupervisionItems => "close supervision items", "办结督办事项";
        CloseSuspects => "close suspected dropouts", "销号疑似辍学";
        ConfirmSuspects => "confirm suspected dropouts", "确认疑似辍学";
        DecideDeferrals => "decide deferral requests (R6: the county poverty-alleviation group)",
            "审批缓学休学申请（R6：县级扶贫工作领导小组）";
        FollowUpAbsentChildren => "follow up absent children", "核查缺勤学生";
        HandCasesOver => "hand cases over", "移交案件";
        ImportThisList => "import this list", "导入此名单";
        LogHomeTeachingVisits => "log home-teaching visits", "登记送教上门";
        MarkSemesterAttendance => "mark semester attendance", "登记开学到校情况";
        MoveCaseStatus => "move cases between statuses", "变更案件状态";
        OpenCases => "open dropout cases", "建立辍学案件";
        ReadBackbone => "read the backbone's state", "查看消息骨干状态";
        RecordPersuasion => "record persuasion attempts", "登记劝返工作";
        RecordSuspects => "record suspected dropouts", "登记疑似辍学";
        RegisterPupils => "register pupils", "登记学生学籍";
        RegisterSchools => "register schools", "登记学校";
        ReportAbsentPupils => "report absent pupils", "报告缺勤学生";
        RequestDeferrals => "request deferrals", "申请缓学休学";
        RunCrossChecks => "run cross-checks", "开展数据比对";
        RunSupervisionSweep => "run the supervision sweep", "执行督办扫描";
        SeeFullResidentIds => "see full resident ID numbers", "查看完整身份证号";
        SetResidentIds => "set resident ID numbers", "补录身份证号";
        StartSemesterChecks => "start semester checks", "发起开学核查";
        TransferPupils => "transfer pupils", "办理转学";
    }
}

/// A role's name in Chinese (`caseworker` → 县级经办人员).
pub fn role_zh(role: &str) -> &'static str {
    match role {
        "caseworker" => "县级经办人员",
        "school" => "学校",
        "supervisor" => "督导人员",
        "approver" => "审批人员",
        "operator" => "运维人员",
        "system" => "系统",
        _ => "未知角色",
    }
}
