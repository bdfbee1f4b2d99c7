//! Files handed out over gRPC: a file on disk sent as a stream of 1 MiB messages, read as it is
//! sent, so an export of any size takes one chunk of memory, not the whole file.

use std::pin::Pin;

use futures::Stream;
use tokio::io::AsyncReadExt;

/// A server-streamed answer.
pub type ByteStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// The size of one message of a streamed file.
pub const CHUNK: usize = 1 << 20;

/// Streams `file` from where it stands to its end as messages `make(chunk, first)`; an empty file
/// is one empty first message (a caller always learns the file's name). A read error ends the
/// stream with INTERNAL.
pub fn stream_file<T: Send + 'static>(
    file: std::fs::File,
    make: impl Fn(Vec<u8>, bool) -> T + Send + Sync + 'static,
) -> ByteStream<T> {
    let file = tokio::fs::File::from_std(file);
    let make = std::sync::Arc::new(make);
    Box::pin(futures::stream::unfold(Some((file, true)), move |state| {
        let make = make.clone();
        async move {
            let (mut file, first) = state?;
            let mut chunk = Vec::with_capacity(CHUNK);
            match (&mut file).take(CHUNK as u64).read_to_end(&mut chunk).await {
                Ok(0) if !first => None,
                Ok(read) => {
                    let next = (read == CHUNK).then_some((file, false));
                    Some((Ok(make(chunk, first)), next))
                }
                Err(error) => {
                    tracing::error!(%error, "a file being sent could not be read");
                    Some((Err(tonic::Status::internal("文件读取失败 (the file could not be read)")), None))
                }
            }
        }
    }))
}

/// The end of an export: `finish` (zipping a workbook: seconds of blocking work for the largest
/// files) run off the async workers, then the rows handed out audited as `action` on
/// `resource_type`, `page` ids per entry. Returns the finished file, ready to stream.
pub async fn finish_export<E: Into<anyhow::Error> + Send + 'static>(
    finish: impl FnOnce() -> Result<std::fs::File, E> + Send + 'static,
    conn: &mut sqlx::PgConnection,
    caller: &nol_auth::Caller,
    (action, resource_type): (&str, &str),
    ids: &[uuid::Uuid],
    page: usize,
) -> Result<std::fs::File, crate::ServiceError> {
    let file = tokio::task::spawn_blocking(finish)
        .await
        .map_err(|error| crate::ServiceError::Internal(error.into()))?
        .map_err(|error| crate::ServiceError::Internal(error.into()))?;
    for ids in ids.chunks(page.max(1)) {
        let ids: Vec<String> = ids.iter().map(uuid::Uuid::to_string).collect();
        crate::audit::record(conn, caller, action, resource_type, &ids).await?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::{Seek, Write};

    async fn sent(bytes: &[u8]) -> Vec<(usize, bool)> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.rewind().unwrap();
        stream_file(file, |chunk, first| (chunk.len(), first)).map(|message| message.unwrap()).collect().await
    }

    #[tokio::test]
    async fn a_file_goes_in_chunks_and_an_empty_one_as_one_empty_message() {
        assert_eq!(sent(&[]).await, [(0, true)]);
        assert_eq!(sent(&[7; 10]).await, [(10, true)]);
        assert_eq!(sent(&vec![7; CHUNK * 2 + 5]).await, [(CHUNK, true), (CHUNK, false), (5, false)]);
        // A file of whole chunks ends without an empty message after its last one.
        assert_eq!(sent(&vec![7; CHUNK]).await, [(CHUNK, true)]);
    }
}
