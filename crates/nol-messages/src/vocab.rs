//! The words messages are made of: what a role may do, the names of roles. Shared by every
//! area's messages so the same thing is always called the same.

use crate::words;

words! {
    #[derive(Copy)]
    /// What a caller tried to do, for a refusal by role ("the school role may not open dropout cases").
    pub enum Action {
        AcceptHandoffs => "accept hand-offs", "接收移交";
        AnswerSupervisionItems => "answer supervision items", "答复督办事项";
        ApproveReports => "approve, return, accept or re-open reports", "审核、退回、接收或重新打开报告";
        ChangeCaseFiles => "change case files", "修改案卷";
        ChangeEnrollmentStatus => "change enrollment status", "变更学籍状态";
        ChangeDeadlinePolicy => "change the deadline policy", "修改办理时限";
        CloseCrossCheckItems => "close cross-check items", "销号比对疑点";
        CloseSupervisionItems => "close supervision items", "办结督办事项";
        CloseSuspects => "close suspected dropouts", "销号疑似辍学";
        ConfirmSuspects => "confirm suspected dropouts", "确认疑似辍学";
        DecideDeferrals => "decide deferral requests (R6: the county poverty-alleviation group)",
            "审批缓学休学申请（R6：县级扶贫工作领导小组）";
        DraftReports => "draft and submit reports", "起草和上报报告";
        FollowUpAbsentChildren => "follow up absent children", "核查缺勤学生";
        HandCasesOver => "hand cases over", "移交案件";
        ImportCohortFiles => "import grade-1 entrants files", "导入一年级入学人数文件";
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
        WorkAssistance => "ask for and give help on cases between regions", "办理协查协办";
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

/// A service's name in Chinese, from its full gRPC name (`nol.v1.CaseService` → 案件服务).
pub fn service_zh(service: &str) -> &'static str {
    match service.rsplit('.').next().unwrap_or_default() {
        "AdminService" => "运维服务",
        "RegistryService" => "学籍服务",
        "CaseService" => "案件服务",
        "CaseHandoffService" => "案件移交服务",
        "SuspectService" => "疑似辍学服务",
        "SupervisionService" => "督办服务",
        "TransferService" => "移交服务",
        "AssistanceService" => "协查服务",
        "ReportingService" => "统计报告服务",
        _ => "未知服务",
    }
}

/// A call in Chinese, from its gRPC path (`/nol.v1.CaseService/ListCases` →
/// 案件服务的 ListCases（/nol.v1.CaseService/ListCases）).
pub fn call_zh(method: &str) -> String {
    let (service, rpc) = method.trim_start_matches('/').split_once('/').unwrap_or(("", method));
    format!("{}的 {rpc}（{method}）", service_zh(service))
}

/// A case status's name in Chinese, from its stored name (`open` → 劝返中).
pub fn case_status_zh(status: &str) -> &'static str {
    match status {
        "open" => "劝返中",
        "handoff_pending" => "移交中",
        "handed_over" => "已移交",
        "returned" => "已复学",
        "monitoring" => "巩固跟踪",
        "home_teaching" => "送教上门",
        "deferred" => "缓学",
        "suspended" => "休学",
        "exempt" => "免学",
        "closed" => "已结案",
        _ => "未知状态",
    }
}

/// A suspected-dropout item's state in Chinese (`pending` → 待核实).
pub fn suspect_state_zh(state: &str) -> &'static str {
    match state {
        "pending" => "待核实",
        "confirmed" => "已确认辍学",
        "closed" => "已销号",
        _ => "未知状态",
    }
}

/// How a suspected-dropout item was resolved, in Chinese (`enrolled_elsewhere` → 已在他处就读).
pub fn suspect_outcome_zh(outcome: &str) -> &'static str {
    match outcome {
        "confirmed" => "确认辍学",
        "enrolled_elsewhere" => "已在他处就读",
        "deceased" => "死亡",
        "emigrated" => "出境",
        "exempt" => "免学",
        "data_error" => "数据错误",
        _ => "未知结果",
    }
}

words! {
    /// A step in a case's life, for a refusal that names it.
    #[derive(Copy)]
    pub enum CaseStep {
        ReturnToSchool => "a return to school", "复学";
        StartMonitoring => "monitoring", "巩固跟踪";
        CloseCompleted => "closing as completed", "以完成劝返结案";
        CloseAgedOut => "closing as aged out", "以超出义务教育年龄结案";
        StartHomeTeaching => "home teaching", "送教上门";
        RequestDeferral => "a deferral request", "提出缓学休学申请";
        ApproveDeferral => "an approved deferral", "批准缓学休学";
        Exempt => "an exemption", "免学";
        Relapse => "a relapse", "记录反弹（重新辍学）";
        HomeTeachingVisit => "a home-teaching visit", "登记送教上门";
    }
}

words! {
    /// What R6 (a)–(c) still lacks for a deferral or suspension.
    pub enum DeferralGap {
        /// Fewer than the required joint attempts, and no judicial ruling.
        JointAttempts { required: u32, has: u32 } =>
            "needs {required} joint persuasion attempts or a judicial ruling, this case has {has} and no ruling",
            "需有 {required} 次以上联合劝返或司法裁决，此案件联合劝返 {has} 次且无司法裁决";
        GuardianDuty => "guardian's duty not recorded (evidence of type guardian_duty)",
            "未登记监护人已履行法定义务（证明材料类型：监护人履职）";
        Refusal => "the child's refusal not recorded (a persuasion attempt with outcome refused)",
            "未登记学生仍拒绝返校（劝返结果为“拒绝”的劝返记录）";
    }
}
