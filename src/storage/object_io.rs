//! The byte streams of object storage: [`ObjectReader`] (a ranged, streamed download) and
//! [`ObjectUpload`] (a multipart upload as an `AsyncWrite`, committed whole by
//! [`ObjectUpload::finish`] and aborted otherwise, through its [`UploadGuard`]).

use super::object::storage_error;
use bytes::{Bytes, BytesMut};
use opendal::ErrorKind as OdKind;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::StreamReader;
use unftp_core::storage::{Error as StorageError, ErrorKind};

/// Bytes gathered from the data connection before they are handed to the writer.
const STAGE: usize = 256 * 1024;

/// A download: the object's bytes from the requested offset (empty past the end).
pub struct ObjectReader(Option<StreamReader<opendal::FuturesBytesStream, Bytes>>);

impl ObjectReader {
    /// The reader of `stream` (`None`: nothing to send, the offset is at the end).
    pub(super) fn new(stream: Option<opendal::FuturesBytesStream>) -> ObjectReader {
        ObjectReader(stream.map(StreamReader::new))
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().0 {
            Some(reader) => Pin::new(reader).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// The writer of an upload, shared by the transfer and whoever must abort it.
pub struct UploadGuard {
    /// `None` once committed or aborted.
    writer: tokio::sync::Mutex<Option<opendal::Writer>>,
    key: String,
}

impl UploadGuard {
    /// Abort the upload unless it was already committed or aborted; returns when S3 has been
    /// told (no object, no pending multipart upload). Waits for a discard already under way.
    pub async fn discard(&self) {
        let mut slot = self.writer.lock().await;
        // The writer stays in its slot until S3 has answered: a discard cancelled half-way
        // leaves it for the next one (the transfer's drop guard) to finish.
        if let Some(writer) = slot.as_mut() {
            match writer.abort().await {
                Ok(()) => tracing::info!(key = %self.key, "upload discarded: nothing stored"),
                Err(e) => tracing::warn!(key = %self.key, error = %e, "could not abort the upload"),
            }
        }
        *slot = None;
    }
}

type WriteFuture = Pin<Box<dyn Future<Output = opendal::Result<()>> + Send>>;

/// An upload as an `AsyncWrite` for the transfer loop: bytes are staged in `STAGE`-sized
/// pieces and handed to the OpenDAL writer, which sends `CHUNK`-sized parts. Dropped without
/// [`finish`](ObjectUpload::finish) (ABOR, lost session), it aborts the upload in the
/// background.
pub struct ObjectUpload {
    guard: Arc<UploadGuard>,
    staged: BytesMut,
    pending: Option<WriteFuture>,
    done: bool,
}

impl ObjectUpload {
    /// The upload of `writer` to `key`; nothing is visible until it is finished.
    pub(super) fn new(writer: opendal::Writer, key: String) -> ObjectUpload {
        ObjectUpload {
            guard: Arc::new(UploadGuard {
                writer: tokio::sync::Mutex::new(Some(writer)),
                key,
            }),
            staged: BytesMut::new(),
            pending: None,
            done: false,
        }
    }

    /// A handle that can discard this upload from outside the transfer.
    pub fn guard(&self) -> Arc<UploadGuard> {
        self.guard.clone()
    }

    fn start_write(&mut self) {
        let bytes = self.staged.split().freeze();
        let guard = self.guard.clone();
        self.pending = Some(Box::pin(async move {
            match guard.writer.lock().await.as_mut() {
                Some(writer) => writer.write(bytes).await,
                None => Err(opendal::Error::new(OdKind::Unexpected, "the upload has ended")),
            }
        }));
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(fut) = self.pending.as_mut() {
            let result = std::task::ready!(fut.as_mut().poll(cx));
            self.pending = None;
            result.map_err(std::io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Send what is staged and commit: the object appears now, whole. On failure the upload is
    /// aborted.
    ///
    /// Cancelled half-way (ABOR during the commit), the drop guard aborts the upload.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        if let Err(e) = tokio::io::AsyncWriteExt::flush(&mut self).await {
            self.guard.discard().await;
            self.done = true;
            return Err(e.into());
        }
        let guard = self.guard.clone();
        let mut slot = guard.writer.lock().await;
        let result = match slot.as_mut() {
            None => Err(StorageError::from(ErrorKind::LocalError)),
            Some(writer) => match writer.close().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(key = %guard.key, error = %abort, "could not abort the upload");
                    }
                    Err(storage_error(e))
                }
            },
        };
        *slot = None;
        self.done = true;
        result
    }

    /// Abort the upload now and wait until S3 has been told.
    pub async fn abort(mut self) {
        self.pending = None;
        self.guard.discard().await;
        self.done = true;
    }
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Release the writer's lock held by a write in flight, then abort in the background.
        self.pending = None;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let guard = self.guard.clone();
            runtime.spawn(async move { guard.discard().await });
        }
    }
}

impl AsyncWrite for ObjectUpload {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.poll_pending(cx))?;
            if this.staged.len() >= STAGE {
                this.start_write();
                continue;
            }
            let n = buf.len().min(STAGE - this.staged.len());
            this.staged.extend_from_slice(&buf[..n]);
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.poll_pending(cx))?;
            if this.staged.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.start_write();
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
