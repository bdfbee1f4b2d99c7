//! The messages of the student registry (学籍): pupils, schools, status changes and transfers,
//! imports of the files bureaus send (and the reasons written into their error files), and the
//! cross-check's items.

use crate::{Count, catalogue};

catalogue! {
    pub enum Registry {
        // A pupil's fields, from a request or a row of a bureau's file.
        /// Neither a resident ID number nor what a provisional identity needs.
        ProvisionalIdentityIncomplete =>
            "is missing: give the number, or the birth date and sex for a provisional identity",
            "缺失：请填写身份证号，或填写出生日期和性别以登记临时身份";
        BirthDateDisagreesWithId =>
            "disagrees with the birth date in the resident ID number", "与身份证号中的出生日期不一致";
        SexDisagreesWithId => "disagrees with the sex in the resident ID number", "与身份证号中的性别不一致";
        /// An 18-digit number Excel kept as a number cell has lost its last digits.
        StoredByExcelAsNumber =>
            "was stored by Excel as a number and lost its last digits; format the column as text",
            "被 Excel 存成了数字，末几位已丢失；请将该列设为文本格式后重新填写";
        NotAnEnrollmentStatus => "is not a known enrollment status", "不是可识别的学籍状态";
        HouseholdIdRequired => "is required for a registered-poor pupil", "建档立卡学生必须填写此项";
        NotASchoolCode =>
            "is not a school code (letters and digits, at most 20)", "不是有效的学校代码（字母和数字，最多 20 位）";
        NotASex => "is not 男 or 女", "应为“男”或“女”";
        NotAGrade => "is not a grade of compulsory education (1 to 9)", "不是义务教育阶段的年级（1 至 9 年级）";
        NotADisabilityGrade =>
            "is not a disability grade (一级 to 四级, or 无)", "不是有效的残疾等级（一级至四级，或“无”）";
        NotYesOrNo => "is not 是 or 否", "应为“是”或“否”";

        // A school's fields.
        NotASchoolLevel => "is not 小学, 初中 or 九年一贯制", "应为“小学”“初中”或“九年一贯制”";
        NotAnOwnership => "is not 公办 or 民办", "应为“公办”或“民办”";
        /// A region outside the province the registry serves.
        NotInProvince { province: String } => "is not in {province}", "不属于{province}";
        SchoolUnknown { code: String } => "no school {code}", "没有代码为 {code} 的学校";
        SchoolExists { code: String, name: String, region: String } =>
            "school {code} is already registered as {name} in {region}",
            "学校代码 {code} 已登记为“{name}”（{region}）";

        // Pupils: registration, reads, status changes, transfers.
        NotARegisteredSchool => "is not a registered school of the province", "不是本省已登记的学校";
        PupilUnknown { id: String } => "no pupil {id}", "没有编号为 {id} 的学生";
        ProvisionalPupilExists =>
            "a pupil of this name and birth date without a resident ID number is already registered at this school",
            "本校已登记一名同姓名、同出生日期且无身份证号的学生";
        /// The number is registered where the caller may see it: which pupil, at which school. (The
        /// codes are boxed: a message, and so every service's error, stays small.)
        ResidentIdRegisteredAt { pupil: String, school_name: String, school_code: Box<str>, region_name: String, region: Box<str> } =>
            "this resident ID number is already registered: pupil {pupil} at {school_name} ({school_code}) in {region_name} ({region})",
            "该身份证号已登记学籍：{region_name}（{region}）{school_name}（{school_code}）的学生 {pupil}";
        /// The number is registered in a region the caller may not see.
        ResidentIdRegisteredElsewhere { region_name: String } =>
            "this resident ID number is already registered in another region of the province; ask {region_name} to resolve it",
            "该身份证号已在本省其他地区登记学籍，请联系{region_name}处理";
        ResidentIdRegistered => "this resident ID number is already registered", "该身份证号已登记学籍";
        ResidentIdAlreadySet => "the pupil already has a resident ID number", "该学生已有身份证号";
        NotAStatus => "is not a known status", "不是可识别的状态";
        /// R-status: a change to the status the pupil already has.
        StatusUnchanged { status: String } => "the pupil is already {status}", "该学生的学籍状态已是“{status}”";
        StatusChangeNotAllowed { from: String, to: String } =>
            "a pupil who is {from} cannot become {to}", "学籍状态为“{from}”的学生不能变更为“{to}”";
        EffectiveDateInFuture => "the effective date is in the future", "生效日期晚于今天";
        EffectiveDateBeforeBirth => "the effective date is before the pupil's birth", "生效日期早于学生的出生日期";
        AlreadyAtSchool { school: String } => "the pupil is already at {school}", "该学生已在{school}就读";
        CannotMoveSchool { status: String } =>
            "a pupil who is {status} cannot move school; change the status first",
            "学籍状态为“{status}”的学生不能转学，请先变更学籍状态";
        TransferDateOutOfRange =>
            "must be between the pupil's birth and today", "应在学生出生日期与今天之间";

        // Imports: the upload.
        HeaderFirst => "the first message must be the header", "第一条消息必须是文件头信息";
        HeaderOnlyFirst => "only the first message may be a header", "只有第一条消息可以是文件头信息";
        StreamEmpty => "the stream is empty", "没有收到任何内容";
        UploadBrokeOff { detail: String } => "the upload broke off: {detail}", "上传中断：{detail}";
        FormatUnknown =>
            "give the format, or a file name ending in .csv or .xlsx",
            "请指明文件格式，或使用以 .csv 或 .xlsx 结尾的文件名";
        FileTooLarge => "the file is larger than 1 GiB; split it", "文件超过 1 GiB，请拆分后再导入";
        JobOfAnotherCaller { job: String } =>
            "job {job} belongs to another caller", "导入任务 {job} 属于其他用户";
        JobKindMismatch { job: String, kind: String, requested: String } =>
            "job {job} imports {kind}, not {requested}", "导入任务 {job} 导入的是 {kind}，不是 {requested}";
        ImportJobUnknown { id: String } => "no import job {id}", "没有编号为 {id} 的导入任务";
        RejectedRowsExpired { days: u64 } =>
            "the rejected rows of this job were deleted after {days} days; import the file again to see them",
            "该任务的错误行已保存满 {days} 天并被删除，请重新导入文件查看";

        // Imports: what a job says of itself (ImportJob.message).
        JobUploadBrokeOff =>
            "the upload broke off; send the file again with the same job id",
            "上传中断，请使用同一任务编号重新发送文件";
        JobFileTooLarge => "the file is larger than 1 GiB", "文件超过 1 GiB";
        JobStopped =>
            "the import stopped; resume it with the same job id", "导入中断，请使用同一任务编号继续导入";
        JobHeaderOnly => "the file has a header and no rows", "文件只有表头，没有数据行";
        JobSummary { read: i64, imported: i64, unchanged: i64, rejected: i64 } =>
            "{read} rows: {imported} imported, {unchanged} unchanged, {rejected} rejected",
            "共 {read} 行：导入 {imported} 行，无变化 {unchanged} 行，退回 {rejected} 行";

        // Imports: a file that cannot be read as a whole.
        FileEmpty => "the file is empty", "文件为空";
        FileNoHeader => "the file has no header row", "文件没有表头行";
        FileNotUtf8 { byte_offset: u64, looks_like_gbk: bool } =>
            {
                format!(
                    "the file is not valid UTF-8 (at byte {byte_offset}){}",
                    if *looks_like_gbk {
                        "; it looks like GBK (as Excel saves CSV on Chinese Windows): send it as GBK, or let the encoding be detected"
                    } else {
                        ""
                    }
                )
            },
            {
                format!(
                    "文件不是有效的 UTF-8 编码（第 {byte_offset} 字节处）{}",
                    if *looks_like_gbk {
                        "；看起来是 GBK 编码（中文 Windows 下 Excel 保存的 CSV）：请按 GBK 发送，或由系统自动识别编码"
                    } else {
                        ""
                    }
                )
            };
        FileNotGbk { byte_offset: u64 } =>
            "the file is not valid GBK (at byte {byte_offset})", "文件不是有效的 GBK 编码（第 {byte_offset} 字节处）";
        FileUnknownEncoding =>
            "the file is neither UTF-8 nor GBK text", "文件既不是 UTF-8 也不是 GBK 编码的文本";
        FileBadXlsx { detail: String } => "the .xlsx file cannot be read: {detail}", "无法读取该 .xlsx 文件：{detail}";
        FileMissingColumns { columns: Vec<String> } =>
            { format!("the header lacks required columns: {}", columns.join(", ")) },
            { format!("表头缺少必需的列：{}", columns.join("、")) };
        FileDuplicateColumn { column: String } =>
            "the header has column {column} twice", "表头中“{column}”列出现了两次";
        FileMalformedCsv { detail: String } => "the CSV is malformed: {detail}", "CSV 文件格式有误：{detail}";

        // Imports: a row's problems, written into the error file.
        RowTooLong { kib: usize } => "the row is longer than {kib} KiB and was not read", "该行超过 {kib} KiB，未读取";
        DuplicateOfRow { row: i64 } => "duplicate of row {row}", "与第 {row} 行重复";
        /// A school row whose code is registered with another name or county.
        SchoolRegisteredAs { name: String, region: String } =>
            "is already registered as {name} in {region}", "已登记为“{name}”（{region}）";
        /// 人籍分离: the child is registered at another school the caller may see.
        EnrolledAtSchool { school_name: String, school_code: String, region_name: String } =>
            "already registered at {school_name} ({school_code}, {region_name}) (人籍分离?)",
            "已在{region_name}{school_name}（{school_code}）登记学籍（疑似人籍分离）";
        /// 人籍分离: the child is registered at a school of a region the caller may not see.
        EnrolledInOtherRegion =>
            "already registered at a school in another region of the province (人籍分离?)",
            "已在本省其他地区的学校登记学籍（疑似人籍分离）";
        RegionNotInProvince { region_name: String, province: String } =>
            "{region_name} is not in {province}", "{region_name}不属于{province}";
        RegionOutsideCaller { region_name: String, own: String } =>
            "{region_name} is outside your region {own}", "{region_name}不在您的管辖范围 {own} 之内";

        // Cross-checks (R15) and closing their items (销号).
        NotAFindingKind => "is not a known kind of finding", "不是可识别的疑点类型";
        CheckItemUnknown { id: String } => "no cross-check item {id}", "没有编号为 {id} 的比对疑点";
        /// An export of more cross-check items than one file holds.
        TooManyItemsToExport { limit: Count } =>
            { format!("more than {} cross-check items match; narrow the region or the kind", limit.en()) },
            { format!("符合条件的比对疑点超过 {} 条，请缩小地区或疑点类型", limit.0) };
        CheckItemClosed { outcome: String, closed_by: String } =>
            "the item was already closed ({outcome}) by {closed_by}", "该疑点已由 {closed_by} 销号（{outcome}）";
        OutcomeRequired => "an outcome is required to close an item (销号)", "销号须选择核查结果";
        OutcomeNeedsSchool =>
            "this outcome needs a detail: which school the child is enrolled at", "此核查结果须说明：儿童在哪所学校就读";
        OutcomeNeedsMedicalEvidence =>
            "this outcome needs a detail: the medical evidence (R1)", "此核查结果须说明：医学证明（R1）";
        OutcomeNeedsCorrection =>
            "this outcome needs a detail: how the data was corrected", "此核查结果须说明：数据是如何更正的";
    }
}
