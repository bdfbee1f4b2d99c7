//! `nol import`: sends a bureau's file to the registry, with a progress bar, and writes the error
//! file (same format as the input) next to it when rows were rejected.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use nol_import::{ImportTarget, UploadProgress, import_file, write_error_file};
use nol_proto::v1::{GetImportJobRequest, ImportState, TextEncoding};

pub struct ImportArgs {
    pub target: ImportTarget,
    pub file: PathBuf,
    pub server: String,
    pub ca: PathBuf,
    pub token: String,
    pub encoding: TextEncoding,
    pub resume: Option<uuid::Uuid>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let tls = nol_tls::ClientTls::from_ca_file(&args.ca)?;
    let registry = nol_import::connect(&args.server, &tls, &args.token)?;
    let job_id = args.resume.unwrap_or_else(uuid::Uuid::now_v7);
    let total = std::fs::metadata(&args.file)?.len();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:30}] {bytes}/{total_bytes} {elapsed}")?
            .progress_chars("=> "),
    );
    bar.set_message("uploading");
    let upload_bar = bar.clone();
    let progress = move |sent: UploadProgress| upload_bar.set_position(sent.bytes_sent);
    let watcher = {
        let registry = registry.clone();
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let Ok(response) =
                    registry.clone().get_import_job(GetImportJobRequest { job_id: job_id.to_string() }).await
                else {
                    continue;
                };
                if let Some(job) = response.into_inner().job
                    && job.state == ImportState::Running as i32
                {
                    bar.set_message(format!("{} rows", job.rows_read));
                }
            }
        })
    };
    let result = import_file(registry.clone(), args.target, &args.file, job_id, args.encoding, progress).await;
    watcher.abort();
    bar.finish_and_clear();
    let job = match result {
        Ok(job) => job,
        Err(status) => {
            eprintln!("import failed: {}", status.message());
            eprintln!("job {job_id}: fix what is said above, or resume with --resume {job_id}");
            std::process::exit(1);
        }
    };
    println!("job {}: {}", job.job_id, job.message);
    for error in job.errors.iter().take(10) {
        println!("  row {:>6} {}: {}", error.row, error.column, error.reason);
    }
    if job.rows_rejected > 0 {
        let path = write_error_file(registry, &job.job_id, &args.file).await?;
        println!("{} rejected rows, with row, column and reason: {}", job.rows_rejected, path.display());
    }
    Ok(())
}
