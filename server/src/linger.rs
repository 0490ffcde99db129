//! Lingering close: how a TCP connection the server is done with is closed.
//!
//! Closing a socket whose receive buffer still holds data makes the kernel answer with a reset
//! instead of a FIN, and a reset can overtake what was written last: the client then reads
//! "connection reset" instead of, say, a WebSocket close frame with 1009 (a frame refused from
//! its header leaves the rest of it unread). nginx's `lingering_close` answers the same problem
//! the same way: once the server is done, [`LingeringStream`] sends its FIN after what was
//! written (`shutdown(SHUT_WR)`), then reads and discards what the client still sends until it
//! closes its side too — at most [`LINGER_TIME`] and [`LINGER_BYTES`] — and only then closes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tracing::trace;

/// How long a closed connection is drained at most.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much of what a closed connection still sends is read at most (a refused 1 MiB message
/// and then some); a client that sends more is reset.
pub const LINGER_BYTES: usize = 4 << 20;

/// A TCP stream that, when dropped, closes with a lingering close (see the module docs) in a
/// task of its own. Dropped outside a Tokio runtime it just closes.
#[derive(Debug)]
pub struct LingeringStream {
    /// `None` only while being dropped.
    inner: Option<TcpStream>,
}

impl LingeringStream {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            inner: Some(stream),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for LingeringStream {
    fn drop(&mut self) {
        if let Some(stream) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(linger(stream));
        }
    }
}

/// FIN after what was written, then what the client still sends is read and dropped until it
/// closes (or resets), [`LINGER_TIME`] passes or [`LINGER_BYTES`] are read.
async fn linger(mut stream: TcpStream) {
    let drained = tokio::time::timeout(LINGER_TIME, async {
        stream.shutdown().await?;
        let mut buf = vec![0u8; 16 << 10];
        let mut read = 0;
        while read <= LINGER_BYTES {
            match stream.read(&mut buf).await? {
                0 => return Ok(read),
                n => read += n,
            }
        }
        Err(io::Error::other("over the lingering byte limit"))
    })
    .await;
    match drained {
        Ok(Ok(bytes)) => trace!(bytes, "lingering close: the client closed"),
        Ok(Err(e)) => trace!("lingering close ended: {e}"),
        Err(_) => trace!("lingering close timed out"),
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// The server reads 10 bytes of a 2 MiB upload, answers and closes: the client reads the
    /// whole answer and an orderly end, never a reset, every time.
    #[tokio::test]
    async fn the_last_words_arrive_although_the_client_was_still_sending() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for round in 0..20 {
            let client = tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut rx, mut tx) = stream.into_split();
                // The server stops reading: the upload may end in an error, that is fine.
                let upload = tokio::spawn(async move {
                    let _ = tx.write_all(&vec![7u8; 2 << 20]).await;
                    tx
                });
                let mut answer = Vec::new();
                let read = rx.read_to_end(&mut answer).await;
                drop(upload.await);
                (read.map(|_| ()), answer)
            });
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = LingeringStream::new(stream);
            let mut head = [0u8; 10];
            stream.read_exact(&mut head).await.unwrap();
            stream.write_all(b"message too big").await.unwrap();
            drop(stream);
            let (read, answer) = client.await.unwrap();
            assert!(read.is_ok(), "round {round}: {read:?}");
            assert_eq!(answer, b"message too big", "round {round}");
        }
    }

    /// A client that never stops sending is cut off after the byte limit.
    #[tokio::test]
    async fn a_client_that_keeps_sending_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let chunk = vec![1u8; 64 << 10];
            let mut sent = 0usize;
            while stream.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
            }
            sent
        });
        let (stream, _) = listener.accept().await.unwrap();
        drop(LingeringStream::new(stream));
        let sent = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .expect("the client's writes end")
            .unwrap();
        assert!(sent >= LINGER_BYTES, "only {sent} bytes went through");
        assert!(sent < 64 * LINGER_BYTES, "{sent} bytes went through");
    }
}
