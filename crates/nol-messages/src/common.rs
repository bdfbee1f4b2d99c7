//! Messages every service shares: field checks, identifiers, paging, region codes, resident ID
//! numbers, identity and scope, availability.

use crate::vocab::{Action, call_zh, role_zh};
use crate::{Count, catalogue};

catalogue! {
    pub enum Common {
        Required => "is required", "为必填项";
        RequiredDate => "is required (YYYY-MM-DD)", "为必填项（格式 YYYY-MM-DD）";
        TooLong { max: Count } => { format!("is longer than {} characters", max.en()) }, { format!("超过 {} 个字符", max.0) };
        /// A list or map of a request with more entries than any request may carry.
        TooManyItems { max: Count } => { format!("has more than {} entries", max.en()) }, { format!("超过 {} 项", max.0) };
        /// A call that ran past the server's time limit and was stopped (nothing it had not yet
        /// committed is kept).
        TimedOut { secs: Count } =>
            { format!("the call took longer than {} seconds and was stopped; try again or narrow it", secs.en()) },
            { format!("请求处理超过 {} 秒，已中止；请稍后重试或缩小查询范围", secs.0) };
        /// A change whose event would be over the backbone's limit (the texts of the request,
        /// together, are too long).
        ChangeTooLarge { kib: Count } =>
            { format!("makes a record of more than {} KiB; shorten the texts", kib.en()) },
            { format!("内容过长（超过 {} KiB），请缩短文字后重试", kib.0) };
        NotADate => "is not a date (YYYY-MM-DD)", "不是有效日期（格式 YYYY-MM-DD）";
        /// A date that lies after the rule clock's today.
        InFuture { today: String } => "is in the future (today is {today})", "晚于今天（今天是 {today}）";
        /// The same, naming the date.
        DateInFuture { day: String, today: String } =>
            "{day} is in the future (today is {today})", "{day} 晚于今天（今天是 {today}）";
        NotAUuid => "is not a valid identifier (UUID)", "不是有效的编号（UUID）";
        NotAPageToken => "is not a token this service issued", "不是本服务签发的翻页标记";
        NegativePageSize => "must not be negative", "不能为负数";
        UnknownValues { values: String } => "has unknown values {values}", "含有无法识别的取值 {values}";
        NotAName => "is a name, not a path", "应为文件名，而不是路径";
        ControlCharacters => "contains control characters", "含有控制字符";
        /// A phone number that is neither a mobile number nor a landline with its area code.
        NotAPhone =>
            "is not a mobile number (11 digits, 1[3-9]...) or a landline with area code (e.g. 025-83331234)",
            "不是手机号码（11 位，以 13–19 开头）或带区号的固定电话（如 025-83331234）";

        // Region codes (GB/T 2260).
        RegionMalformed { text: String } =>
            "a region code has 6 digits (GB/T 2260), got {text:?}", "行政区划代码应为 6 位数字（GB/T 2260），收到“{text}”";
        RegionUnknown { code: String } =>
            "{code} is not a code of the GB/T 2260 administrative tree", "{code} 不是 GB/T 2260 行政区划代码";
        RegionNotCounty { code: String, name: String } =>
            "{code} ({name}) is not a county-level region", "{code}（{name}）不是县级行政区";

        // Resident ID numbers (居民身份证号).
        ResidentIdLength { length: usize } =>
            "a resident ID number has 18 characters, this one has {length}", "居民身份证号应为 18 位，此号码为 {length} 位";
        ResidentIdNotDigits =>
            "a resident ID number is 17 digits followed by a digit or X", "居民身份证号应为 17 位数字加 1 位数字或 X";
        ResidentIdUnknownProvince =>
            "the region part of the resident ID number names no province", "身份证号的地区码不属于任何省份";
        ResidentIdBadBirthDate =>
            "the birth date in the resident ID number is not a real date", "身份证号中的出生日期不是有效日期";
        ResidentIdFutureBirthDate =>
            "the birth date in the resident ID number is in the future", "身份证号中的出生日期晚于今天";
        ResidentIdCheckDigit =>
            "the check digit of the resident ID number is wrong (ISO 7064 MOD 11-2)",
            "身份证号校验码错误（ISO 7064 MOD 11-2）";

        // Identity and scope.
        OutOfScope { own: String, requested: String } =>
            "region {requested} is outside your region {own}", "{requested} 不在您的管辖范围 {own} 之内";
        OtherProvince { own: String, own_name: String, deployment: String, deployment_name: String } =>
            "this deployment serves {deployment_name} ({deployment}); your token is for {own_name} ({own})",
            "本系统服务于{deployment_name}（{deployment}），您的令牌属于{own_name}（{own}）";
        RoleMayNot { role: String, action: Action } =>
            { format!("the {role} role may not {}", action.en()) },
            { format!("{}角色无权{}", role_zh(role), action.zh()) };
        /// Refused by the RPC × role table (`nol_auth::policy`).
        RoleMayNotCall { role: String, method: String } =>
            { format!("the {role} role may not call {method}") },
            { format!("{}角色无权调用{}", role_zh(role), call_zh(method)) };
        /// A method the RPC × role table does not name: refused to everyone.
        CallNotListed { method: String } =>
            "{method} is not in the access table: no role may call it",
            "{method} 不在访问控制表中，任何角色都不能调用";
        /// A school token from before tokens carried the school.
        SchoolClaimMissing =>
            "this school token names no school (claim 'school'); ask for a token with your school's code",
            "学校令牌未注明学校代码（school），请重新申领带有本校代码的令牌";
        /// A school reaching for a pupil, or a school, not its own.
        OtherSchool { own: String, requested: String } =>
            "school {requested} is not your school {own}: a school sees and changes its own pupils only",
            "学校 {requested} 不是本校（{own}）：学校只能查看和变更本校学生";
        TokenMissing =>
            "missing authorization: send 'authorization: Bearer <token>'", "缺少身份凭证：请发送 authorization: Bearer <令牌>";
        TokenMalformed => "the authorization header is not 'Bearer <token>'", "authorization 请求头格式应为 Bearer <令牌>";
        TokenInvalid => "the token is invalid or expired", "令牌无效或已过期";
        TokenRevoked => "the token was revoked; sign in again", "令牌已被吊销，请重新登录";
        TokenTooLong { hours: u64 } =>
            "the token is valid for longer than this deployment allows ({hours} hours at most)",
            "令牌有效期超过本系统允许的上限（最长 {hours} 小时）";
        TokenBadClaims { detail: String } =>
            "the token names an unknown region or role: {detail}", "令牌中的地区或角色无法识别：{detail}";

        // Availability and failures.
        DatabaseUnavailable =>
            "the database is unavailable; try again shortly", "数据库暂时不可用，请稍后再试";
        ServiceUnavailable { service: String } =>
            "the {service} service is unavailable; try again shortly", "{service} 服务暂时不可用，请稍后再试";
        Internal { trace_id: String } =>
            "internal error; quote trace {trace_id} to the operators", "系统内部错误，请将追踪号 {trace_id} 告知运维人员";
        /// The summary of a request with invalid fields.
        InvalidRequest { fields_en: String, fields_zh: String } =>
            "invalid request: {fields_en}", "请求有误：{fields_zh}";
    }
}
