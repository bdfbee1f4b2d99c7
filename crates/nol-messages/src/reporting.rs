//! The messages of reports (双月报, R16): periods and the workflow up the tree.

use crate::catalogue;

catalogue! {
    pub enum Reporting {
        Period => "must be a bi-month YYYY-Bn, n from 1 (January–February) to 6 (November–December), or a semester YYYY-S1 (spring) or YYYY-S2 (autumn)",
            "应为双月期间 YYYY-Bn（n 为 1 即1—2月至 6 即11—12月），或学期 YYYY-S1（春季）、YYYY-S2（秋季）";
        PeriodYear => "the year must be between 2000 and 2100", "年份应在 2000 至 2100 之间";
        PeriodNotOver { period: String, end: String } =>
            "the period {period} ends on {end}; its report can be drafted from the day after",
            "{period} 期间至 {end} 结束，次日起方可起草报告";
        NotACounty { region: String } =>
            "{region} is not a county: counties draft and submit reports, cities and the province sum them",
            "{region} 不是县（市、区）级单位：报告由县级起草上报，市、省级为汇总";
        NoReport { region: String, period: String } =>
            "{region} has no report for {period} yet", "{region} 尚未起草 {period} 的报告";
        NotEditable { state: String } =>
            "the report is {state}; only a draft or a returned report can be changed",
            "报告当前为“{state}”，只有草稿或被退回的报告可以修改";
        NotSubmittable { state: String } =>
            "the report is {state}; only a draft or a returned report can be submitted",
            "报告当前为“{state}”，只有草稿或被退回的报告可以上报";
        NotSubmitted { state: String } =>
            "the report is {state}; only a submitted report can be approved or returned",
            "报告当前为“{state}”，只有已上报的报告可以审核或退回";
        NotApproved { state: String } =>
            "the report is {state}; only a report approved by the city can be accepted",
            "报告当前为“{state}”，只有经市级审核通过的报告可以接收";
        NotReopenable { state: String } =>
            "the report is {state}; only an approved or accepted report can be re-opened",
            "报告当前为“{state}”，只有已审核或已接收的报告可以重新打开";
        NotACity { region: String } =>
            "{region} is not a city: semester reports are drafted by cities and accepted by the province",
            "{region} 不是设区市：学期报告由市级起草上报、省级接收";
        SemesterNoApproval =>
            "a semester report goes straight to the province, which returns or accepts it",
            "学期报告直接报送省级，由省级退回或接收";
        OwnCityOnly => "a city submits its own semester report only", "只能上报本市的学期报告";
        OwnCountyOnly => "a county submits its own report only", "只能上报本县（市、区）的报告";
        ApproverOnly { approver: String } =>
            "only the bureau above the county ({approver}) approves or returns its report",
            "只有上一级教育行政部门（{approver}）可以审核或退回该报告";
        ProvinceOnly => "only the provincial bureau accepts reports", "只有省级教育行政部门可以接收报告";
        ReopenNotYours =>
            "an accepted report is re-opened by the province only; an approved one by the city or the province",
            "已接收的报告只能由省级重新打开；已审核的报告由市级或省级重新打开";
        CommentRequired => "is required: say what the county should fix", "为必填项：请说明需要县级修改的内容";
        ReasonRequired => "is required: say why the report is re-opened", "为必填项：请说明重新打开的原因";
        NotesRequired => "is required: the work done in the period", "为必填项：本期主要工作";
        NotApprovedPdf { state: String } =>
            "the report is {state}; only an approved or accepted report is filed as a PDF",
            "报告当前为“{state}”，只有已审核或已接收的报告可以生成 PDF";
        CohortFormat => "must end in .csv or .xlsx", "文件名应以 .csv 或 .xlsx 结尾";
        CohortTooLarge => "the file is larger than 5 MiB", "文件超过 5 MiB";
        CohortEmpty => "the file has no rows", "文件没有数据行";
        CohortRegion { value: String } =>
            "{value:?} is not a county-level region code in your region",
            "“{value}”不是您管辖范围内的县级行政区划代码";
        CohortYear { value: String } =>
            "{value:?} is not an entry year between 2000 and this year",
            "“{value}”不是 2000 年至今年之间的入学年份";
        CohortEntrants { value: String } =>
            "{value:?} is not a number of entrants (a whole number from 1 to 10,000,000)",
            "“{value}”不是有效的入学人数（1 至 10,000,000 的整数）";
        CohortDuplicate { region: String, year: String } =>
            "{region} {year} is listed twice", "{region} {year} 年重复出现";
        /// A reconciliation warning on a frozen report or a period's figures.
        BalanceMismatch { region: String, balance: i64, ledger: i64 } =>
            "{region}: the dropout balance by status ({balance}) differs from the cases opened, taken in, handed out and ended ({ledger})",
            "{region}：按状态统计的辍学存量（{balance}）与立案、接收、移出、结案推算数（{ledger}）不一致，请核查";
    }
}

crate::words! {
    #[derive(Copy)]
    /// A report's state, as people read it.
    pub enum ReportStateWord {
        NotDrafted => "not drafted", "未起草";
        Draft => "a draft", "草稿";
        Submitted => "submitted", "已上报";
        Returned => "returned", "已退回";
        Approved => "approved", "已审核";
        Accepted => "accepted", "已接收";
    }
}
