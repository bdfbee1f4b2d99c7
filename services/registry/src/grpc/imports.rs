//! Imports: receiving the file, running the job, reading it, the error file.

use std::io::Write;

use futures::StreamExt;
use nol_auth::Caller;
use nol_messages::{Common, Registry as Message};
use nol_proto::v1::*;
use nol_runtime::error::parse_uuid;
use nol_runtime::{ServiceError, audit};
use nol_tabular::{Encoding, Format, TableWriter};
use tonic::Streaming;

use super::Registry;
use crate::domain::import_job::{JobState, ListKind};
use crate::import::ReceivedFile;
use crate::store::imports::{self, JobRecord};

/// The largest file accepted.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// The first message names the file; the others carry its bytes.
pub(super) enum Part {
    Header(ImportHeader),
    Data(Vec<u8>),
}

/// The four import requests share one shape.
pub(super) trait ImportMessage: Send + 'static {
    fn part(self) -> Option<Part>;
}

macro_rules! import_message {
    ($message:ty, $part:path) => {
        impl ImportMessage for $message {
            fn part(self) -> Option<Part> {
                use $part as P;
                match self.part? {
                    P::Header(header) => Some(Part::Header(header)),
                    P::Data(data) => Some(Part::Data(data)),
                }
            }
        }
    };
}

import_message!(ImportPupilsRequest, import_pupils_request::Part);
import_message!(ImportSchoolsRequest, import_schools_request::Part);
import_message!(ImportHouseholdRegisterRequest, import_household_register_request::Part);
import_message!(ImportPovertyRegistryRequest, import_poverty_registry_request::Part);

impl Registry {
    pub(super) async fn import<M: ImportMessage>(
        &self,
        caller: &Caller,
        kind: ListKind,
        mut stream: Streaming<M>,
    ) -> Result<ImportJob, ServiceError> {
        // Who imports which list is the RPC × role table's (nol_auth::policy): one RPC per kind.
        let header = match stream.next().await {
            Some(Ok(message)) => match message.part() {
                Some(Part::Header(header)) => header,
                _ => return Err(ServiceError::invalid("header", Message::HeaderFirst)),
            },
            Some(Err(status)) => {
                return Err(ServiceError::Unavailable(
                    Message::UploadBrokeOff { detail: status.message().to_owned() }.into(),
                ));
            }
            None => return Err(ServiceError::invalid("header", Message::StreamEmpty)),
        };
        let job_id = parse_uuid("header.job_id", &header.job_id)?;
        let file_name = header.file_name.trim().to_owned();
        if file_name.is_empty() {
            return Err(ServiceError::invalid("header.file_name", Common::Required));
        }
        let format = match FileFormat::try_from(header.format).unwrap_or_default() {
            FileFormat::Csv => Format::Csv,
            FileFormat::Xlsx => Format::Xlsx,
            FileFormat::Unspecified => Format::from_file_name(&file_name)
                .ok_or_else(|| ServiceError::invalid("header.format", Message::FormatUnknown))?,
        };
        let encoding = match TextEncoding::try_from(header.encoding).unwrap_or_default() {
            TextEncoding::Utf8 => Encoding::Utf8,
            TextEncoding::Gbk => Encoding::Gbk,
            TextEncoding::Unspecified => Encoding::Auto,
        };
        if let Some(existing) = imports::get(&self.pool, job_id).await?
            && existing.caller_region != caller.region
        {
            return Err(ServiceError::already_exists(Message::JobOfAnotherCaller { job: job_id.to_string() }));
        }
        imports::begin(&self.pool, job_id, kind, &file_name, &caller.subject, caller.region).await?;
        // The upload goes to a temporary file: memory stays bounded whatever the file's size.
        let mut file = tempfile::NamedTempFile::new().map_err(|error| ServiceError::Internal(error.into()))?;
        let mut received: u64 = 0;
        while let Some(message) = stream.next().await {
            let message = match message {
                Ok(message) => message,
                Err(status) => {
                    imports::finish(&self.pool, job_id, JobState::Failed, &Message::JobUploadBrokeOff.en()).await?;
                    return Err(ServiceError::Unavailable(
                        Message::UploadBrokeOff { detail: status.message().to_owned() }.into(),
                    ));
                }
            };
            match message.part() {
                Some(Part::Data(data)) => {
                    received += data.len() as u64;
                    if received > MAX_FILE_BYTES {
                        imports::finish(&self.pool, job_id, JobState::Failed, &Message::JobFileTooLarge.en()).await?;
                        return Err(ServiceError::invalid("data", Message::FileTooLarge));
                    }
                    file.write_all(&data).map_err(|error| ServiceError::Internal(error.into()))?;
                }
                _ => return Err(ServiceError::invalid("header", Message::HeaderOnlyFirst)),
            }
        }
        file.flush().map_err(|error| ServiceError::Internal(error.into()))?;
        let action = format!("import.{}", kind.as_stored());
        audit::record_read(&self.pool, caller, &action, "import_job", &[job_id.to_string()]).await?;
        let received_file = ReceivedFile { job_id, file_name, format, encoding, path: file.path().to_path_buf() };
        let job = self.importer.run(caller, kind, received_file).await?;
        drop(file);
        self.job_to_proto(&job).await
    }

    async fn job_in_scope(&self, caller: &Caller, text: &str) -> Result<JobRecord, ServiceError> {
        let id = parse_uuid("job_id", text)?;
        let job = imports::get(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Message::ImportJobUnknown { id: id.to_string() }))?;
        if job.caller != caller.subject {
            caller.require_scope(&job.caller_region)?;
        }
        Ok(job)
    }

    pub(super) async fn get_job(
        &self,
        caller: &Caller,
        request: GetImportJobRequest,
    ) -> Result<ImportJob, ServiceError> {
        let job = self.job_in_scope(caller, &request.job_id).await?;
        self.job_to_proto(&job).await
    }

    pub(super) async fn error_file(
        &self,
        caller: &Caller,
        request: DownloadImportErrorsRequest,
    ) -> Result<(std::fs::File, String), ServiceError> {
        let job = self.job_in_scope(caller, &request.job_id).await?;
        let mut rows = imports::errors_after(&self.pool, job.id, None, self.export_page).await?;
        if rows.is_empty() && job.rows_rejected > 0 {
            return Err(ServiceError::precondition(Message::RejectedRowsExpired {
                days: self.import_errors_retention.as_secs() / 86_400,
            }));
        }
        // The rejected rows are children's rows (names, masked numbers, schools): their reading is
        // audited like a pupil's.
        audit::record_read(&self.pool, caller, "import.read_errors", "import_job", &[job.id.to_string()]).await?;
        // The error file goes back in the file's own format and encoding (a file not yet read: CSV).
        let format = job.file.map(|file| file.format).unwrap_or(Format::Csv);
        let encoding = job.file.and_then(|file| file.encoding).unwrap_or(Encoding::Utf8);
        let mut header = job.header.clone();
        header.extend(["错误行号".to_owned(), "错误列".to_owned(), "错误原因".to_owned()]);
        // Written a page at a time to a file on disk and sent from it: a file of a million
        // rejected rows takes a page of memory.
        let internal = |error: nol_tabular::TableError| ServiceError::Internal(error.into());
        let mut writer = TableWriter::on_disk(format, encoding, &header).map_err(internal)?;
        loop {
            for row in &rows {
                // The bureau reads the reasons in Chinese (rows rejected before they were kept in
                // Chinese have only the English).
                let reason = if row.reason_zh.is_empty() { &row.reason } else { &row.reason_zh };
                let mut cells = row.cells.clone();
                cells.resize(job.header.len(), String::new());
                cells.extend([row.row_number.to_string(), row.column_name.clone(), reason.clone()]);
                writer.write_row(&cells).map_err(internal)?;
            }
            if (rows.len() as i64) < self.export_page {
                break;
            }
            let after = rows.last().map(|row| (row.row_number, row.column_name.clone()));
            rows = imports::errors_after(
                &self.pool,
                job.id,
                after.as_ref().map(|(row, column)| (*row, column.as_str())),
                self.export_page,
            )
            .await?;
        }
        let file = tokio::task::spawn_blocking(move || writer.finish_to_file())
            .await
            .map_err(|error| ServiceError::Internal(error.into()))?
            .map_err(internal)?;
        let stem = job.file_name.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(&job.file_name);
        Ok((file, format!("{stem}.errors.{}", format.extension())))
    }

    pub(super) async fn job_to_proto(&self, job: &JobRecord) -> Result<ImportJob, ServiceError> {
        let errors = imports::errors(&self.pool, job.id, Some(100)).await?;
        Ok(ImportJob {
            job_id: job.id.to_string(),
            kind: job.kind.to_proto() as i32,
            file_name: job.file_name.clone(),
            state: job.state.to_proto() as i32,
            rows_read: job.rows_read,
            rows_imported: job.rows_imported,
            rows_unchanged: job.rows_unchanged,
            rows_rejected: job.rows_rejected,
            errors: errors
                .into_iter()
                .map(|error| RowError { row: error.row_number, column: error.column_name, reason: error.reason })
                .collect(),
            message: job.message.clone(),
            start_time: Some(nol_runtime::time::timestamp(job.started_at)),
            finish_time: nol_runtime::time::optional_timestamp(job.finished_at),
        })
    }
}
