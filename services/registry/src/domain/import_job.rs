//! Import jobs: which list a job imports, the states it goes through, and how its file was read.

use nol_proto::v1::{ImportKind, ImportState};
use nol_tabular::{Column, Encoding, Format};

use super::columns;

/// The list a job imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Pupils,
    Schools,
    HouseholdRegister,
    PovertyRegistry,
}

pub const LIST_KINDS: [ListKind; 4] =
    [ListKind::Pupils, ListKind::Schools, ListKind::HouseholdRegister, ListKind::PovertyRegistry];

impl ListKind {
    /// The text stored in `import_job.kind` (and the audit action `import.<kind>`).
    pub fn as_stored(self) -> &'static str {
        match self {
            ListKind::Pupils => "pupils",
            ListKind::Schools => "schools",
            ListKind::HouseholdRegister => "household_register",
            ListKind::PovertyRegistry => "poverty_registry",
        }
    }

    pub fn from_stored(text: &str) -> Option<ListKind> {
        match text {
            "pupils" => Some(ListKind::Pupils),
            "schools" => Some(ListKind::Schools),
            "household_register" => Some(ListKind::HouseholdRegister),
            "poverty_registry" => Some(ListKind::PovertyRegistry),
            _ => None,
        }
    }

    pub fn to_proto(self) -> ImportKind {
        match self {
            ListKind::Pupils => ImportKind::Pupils,
            ListKind::Schools => ImportKind::Schools,
            ListKind::HouseholdRegister => ImportKind::HouseholdRegister,
            ListKind::PovertyRegistry => ImportKind::PovertyRegistry,
        }
    }

    /// The columns a file of this list has.
    pub fn columns(self) -> &'static [Column] {
        match self {
            ListKind::Pupils => columns::PUPILS,
            ListKind::Schools => columns::SCHOOLS,
            ListKind::HouseholdRegister => columns::HOUSEHOLD_REGISTER,
            ListKind::PovertyRegistry => columns::POVERTY_REGISTRY,
        }
    }
}

/// Where a job is: receiving its file, importing rows, or finished one way or the other. A job
/// that did not succeed may be taken up again with the same id (a resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Uploading,
    Running,
    Succeeded,
    Failed,
}

pub const JOB_STATES: [JobState; 4] = [JobState::Uploading, JobState::Running, JobState::Succeeded, JobState::Failed];

impl JobState {
    /// The text stored in `import_job.state`.
    pub fn as_stored(self) -> &'static str {
        match self {
            JobState::Uploading => "uploading",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    pub fn from_stored(text: &str) -> Option<JobState> {
        match text {
            "uploading" => Some(JobState::Uploading),
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }

    pub fn to_proto(self) -> ImportState {
        match self {
            JobState::Uploading => ImportState::Uploading,
            JobState::Running => ImportState::Running,
            JobState::Succeeded => ImportState::Succeeded,
            JobState::Failed => ImportState::Failed,
        }
    }
}

/// How a job's file was read: its format and, for CSV, its text encoding. Unknown (None) until
/// the file has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRead {
    pub format: Format,
    /// The encoding of a CSV file (an .xlsx file has none of its own).
    pub encoding: Option<Encoding>,
}

impl FileRead {
    /// A file as read: .xlsx has no encoding, CSV is UTF-8 unless it was read as GBK.
    pub fn new(format: Format, encoding: Encoding) -> FileRead {
        let encoding = match (format, encoding) {
            (Format::Xlsx, _) => None,
            (Format::Csv, Encoding::Gbk) => Some(Encoding::Gbk),
            (Format::Csv, Encoding::Utf8 | Encoding::Auto) => Some(Encoding::Utf8),
        };
        FileRead { format, encoding }
    }

    /// The texts stored in `import_job.file_format` and `import_job.file_encoding`.
    pub fn as_stored(self) -> (&'static str, &'static str) {
        let format = match self.format {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        };
        let encoding = match self.encoding {
            None => "",
            Some(Encoding::Gbk) => "gbk",
            Some(Encoding::Utf8 | Encoding::Auto) => "utf8",
        };
        (format, encoding)
    }

    /// From the stored texts: `Some(None)` before the file arrived (both empty), None for texts
    /// no file is stored as.
    pub fn from_stored(format: &str, encoding: &str) -> Option<Option<FileRead>> {
        let encoding = match encoding {
            "" => None,
            "utf8" => Some(Encoding::Utf8),
            "gbk" => Some(Encoding::Gbk),
            _ => return None,
        };
        match (format, encoding) {
            ("", None) => Some(None),
            ("csv", Some(_)) => Some(Some(FileRead { format: Format::Csv, encoding })),
            ("xlsx", None) => Some(Some(FileRead { format: Format::Xlsx, encoding: None })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_are_pinned() {
        let kinds = [
            (ListKind::Pupils, "pupils"),
            (ListKind::Schools, "schools"),
            (ListKind::HouseholdRegister, "household_register"),
            (ListKind::PovertyRegistry, "poverty_registry"),
        ];
        assert_eq!(kinds.len(), LIST_KINDS.len());
        for (kind, text) in kinds {
            assert_eq!(kind.as_stored(), text);
            assert_eq!(ListKind::from_stored(text), Some(kind));
        }
        let states = [
            (JobState::Uploading, "uploading"),
            (JobState::Running, "running"),
            (JobState::Succeeded, "succeeded"),
            (JobState::Failed, "failed"),
        ];
        assert_eq!(states.len(), JOB_STATES.len());
        for (state, text) in states {
            assert_eq!(state.as_stored(), text);
            assert_eq!(JobState::from_stored(text), Some(state));
        }
        let files = [
            (FileRead::new(Format::Csv, Encoding::Utf8), ("csv", "utf8")),
            (FileRead::new(Format::Csv, Encoding::Auto), ("csv", "utf8")),
            (FileRead::new(Format::Csv, Encoding::Gbk), ("csv", "gbk")),
            (FileRead::new(Format::Xlsx, Encoding::Gbk), ("xlsx", "")),
        ];
        for (file, (format, encoding)) in files {
            assert_eq!(file.as_stored(), (format, encoding));
            assert_eq!(FileRead::from_stored(format, encoding), Some(Some(file)));
        }
        assert_eq!(FileRead::from_stored("", ""), Some(None));
        assert_eq!(FileRead::from_stored("csv", ""), None);
        assert_eq!(FileRead::from_stored("xlsx", "gbk"), None);
        assert_eq!(ListKind::from_stored("Pupils"), None);
        assert_eq!(JobState::from_stored(""), None);
    }
}
