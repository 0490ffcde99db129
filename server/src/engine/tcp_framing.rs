//! ICE-TCP framing (RFC 4571 as used by RFC 6544, passive side): every datagram on the TCP
//! stream is preceded by its length as a 2-byte big-endian integer.
//!
//! The incremental [`FrameDecoder`], [`encode_frame`], a bounded per-connection [`WriteQueue`]
//! that only ever holds whole frames, and two async helpers that move bytes between a stream and
//! those ([`read_frames`], [`write_queued`]). The connections themselves are in `io_tcp.rs`.

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest datagram carried in one frame. A longer frame is an error and the connection is
/// closed: every datagram of ours or a browser's fits a 1500-byte MTU.
pub const MAX_FRAME: usize = 1500;

/// The default bound of a [`WriteQueue`]: 256 KiB of framed bytes per connection.
pub const DEFAULT_WRITE_QUEUE_BYTES: usize = 256 * 1024;

/// How much room [`read_frames`] makes in the decoder before each read.
const READ_CHUNK: usize = 16 * 1024;

/// A frame that cannot be valid: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME`] bytes.
    #[error("frame of {0} bytes exceeds {MAX_FRAME}")]
    Oversized(usize),
    /// The length prefix is zero.
    #[error("zero-length frame")]
    Empty,
}

/// Why [`read_frames`] stopped: every variant means the connection is done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpIoError {
    /// The peer closed its side (end of stream).
    #[error("ICE-TCP connection closed by the peer")]
    Closed,
    /// The peer sent a frame that cannot be valid.
    #[error("invalid ICE-TCP frame: {0}")]
    Frame(#[from] FrameError),
    /// Reading from the socket failed.
    #[error("ICE-TCP read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Incremental decoder: feed bytes as they arrive, take complete frames out.
///
/// Frames are split off the internal buffer without copying. After an error the decoder keeps
/// returning it; the connection should be closed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's datagram, `Ok(None)` when more bytes are needed, or the error
    /// that makes the stream unusable (checked as soon as the 2-byte prefix is in).
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = self.buf.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > MAX_FRAME {
            return Err(FrameError::Oversized(len));
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        self.buf.advance(2);
        Ok(Some(self.buf.split_to(len)))
    }

    /// Bytes received but not yet returned as frames (a partial frame, or frames not taken yet).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Appends the 2-byte big-endian length and the datagram to `out`.
pub fn encode_frame(datagram: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
    let len = check_len(datagram.len())?;
    out.reserve(2 + datagram.len());
    out.put_u16(len);
    out.extend_from_slice(datagram);
    Ok(())
}

/// `len` as a frame's length prefix, if a frame may carry that many bytes.
fn check_len(len: usize) -> Result<u16, FrameError> {
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::Oversized(len));
    }
    u16::try_from(len).map_err(|_| FrameError::Oversized(len))
}

/// A bounded per-connection write queue of framed datagrams.
///
/// It holds whole frames only: [`WriteQueue::push`] refuses a datagram (and counts a drop) when
/// its frame would take the queue over its capacity, so a slow TCP peer loses whole datagrams
/// and stalls nobody else. The writer sends [`WriteQueue::chunk`] and reports what the socket
/// took with [`WriteQueue::advance`]; a partly written frame is finished before anything else.
#[derive(Debug)]
pub struct WriteQueue {
    buf: BytesMut,
    capacity: usize,
    dropped: u64,
    /// Bytes handed out by [`WriteQueue::take`] and not yet [`WriteQueue::release`]d: they
    /// count against the capacity until written.
    in_flight: usize,
}

impl Default for WriteQueue {
    /// A queue of [`DEFAULT_WRITE_QUEUE_BYTES`].
    fn default() -> Self {
        Self::new(DEFAULT_WRITE_QUEUE_BYTES)
    }
}

impl WriteQueue {
    /// An empty queue that holds at most `capacity` framed bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            capacity,
            dropped: 0,
            in_flight: 0,
        }
    }

    /// Queues `datagram` as one frame. Returns false, and counts a drop, when the frame does not
    /// fit in the remaining capacity or the datagram cannot be framed (empty or over
    /// [`MAX_FRAME`]).
    pub fn push(&mut self, datagram: &[u8]) -> bool {
        let fits = self.buf.len() + self.in_flight + 2 + datagram.len() <= self.capacity;
        if !fits || encode_frame(datagram, &mut self.buf).is_err() {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes to write next (everything queued, contiguous).
    pub fn chunk(&self) -> &[u8] {
        &self.buf
    }

    /// Marks the first `n` bytes of [`WriteQueue::chunk`] as written (clamped to what is queued).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
    }

    /// How many datagrams were refused since the queue was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes waiting to be written, length prefixes included (not counting taken ones).
    pub fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Takes everything queued (whole frames) for a writer that writes it without holding the
    /// queue. The bytes keep counting against the capacity until [`WriteQueue::release`]d.
    pub fn take(&mut self) -> BytesMut {
        let taken = self.buf.split();
        self.in_flight += taken.len();
        taken
    }

    /// `n` bytes of what [`WriteQueue::take`] handed out were written (clamped).
    pub fn release(&mut self, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(n);
    }

    /// Whether nothing is queued and nothing taken is still unwritten.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.in_flight == 0
    }
}

/// Reads once from `stream` into `dec` and appends every complete frame to `out`. Returns how
/// many frames were appended (0 when only part of a frame arrived).
///
/// Cancel safe: a read that did not complete consumed nothing. Every error means the connection
/// is done: [`TcpIoError::Closed`] at end of stream, [`TcpIoError::Frame`] for an invalid frame
/// (frames before it in the same read were already appended), [`TcpIoError::Io`] otherwise.
pub async fn read_frames(
    stream: &mut (impl AsyncRead + Unpin),
    dec: &mut FrameDecoder,
    out: &mut Vec<BytesMut>,
) -> Result<usize, TcpIoError> {
    dec.buf.reserve(READ_CHUNK);
    if stream.read_buf(&mut dec.buf).await? == 0 {
        return Err(TcpIoError::Closed);
    }
    let before = out.len();
    while let Some(frame) = dec.next_frame()? {
        out.push(frame);
    }
    Ok(out.len() - before)
}

/// Writes once from `queue` to `stream` and advances the queue by what was written. Returns the
/// number of bytes written (0 when the queue is empty). Cancel safe.
pub async fn write_queued(
    stream: &mut (impl AsyncWrite + Unpin),
    queue: &mut WriteQueue,
) -> std::io::Result<usize> {
    if queue.is_empty() {
        return Ok(0);
    }
    let n = stream.write(queue.chunk()).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    queue.advance(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn framed(datagrams: &[&[u8]]) -> BytesMut {
        let mut out = BytesMut::new();
        for d in datagrams {
            encode_frame(d, &mut out).unwrap();
        }
        out
    }

    fn drain(dec: &mut FrameDecoder) -> Vec<BytesMut> {
        let mut frames = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            frames.push(f);
        }
        frames
    }

    #[test]
    fn frames_split_one_byte_at_a_time() {
        let a = [1u8; 20];
        let b: Vec<u8> = (0..=255).collect();
        let wire = framed(&[&a, &b, &[7]]);
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        for (k, byte) in wire.iter().enumerate() {
            dec.push(&[*byte]);
            frames.extend(drain(&mut dec));
            let complete = match frames.len() {
                0 => 0,
                1 => 22,
                2 => 22 + 258,
                _ => wire.len(),
            };
            assert_eq!(dec.buffered(), k + 1 - complete);
        }
        assert_eq!(frames, [&a[..], &b[..], &[7]]);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn coalesced_frames_come_out_one_by_one() {
        let wire = framed(&[b"first", b"second", b"third"]);
        let mut dec = FrameDecoder::new();
        dec.push(&wire);
        dec.push(&[0x00]); // the start of a fourth prefix
        assert_eq!(dec.next_frame().unwrap().unwrap(), &b"first"[..]);
        assert_eq!(dec.next_frame().unwrap().unwrap(), &b"second"[..]);
        assert_eq!(dec.next_frame().unwrap().unwrap(), &b"third"[..]);
        assert_eq!(dec.next_frame().unwrap(), None);
        assert_eq!(dec.buffered(), 1);
    }

    #[test]
    fn oversized_and_empty_frames_are_errors() {
        let mut dec = FrameDecoder::new();
        dec.push(&1501u16.to_be_bytes());
        // Refused from the prefix alone, before the body arrives; and it stays refused.
        assert_eq!(dec.next_frame(), Err(FrameError::Oversized(1501)));
        assert_eq!(dec.next_frame(), Err(FrameError::Oversized(1501)));

        let mut dec = FrameDecoder::new();
        dec.push(&[0, 0, 0, 1, 9]);
        assert_eq!(dec.next_frame(), Err(FrameError::Empty));

        // A frame after good ones still fails.
        let mut dec = FrameDecoder::new();
        dec.push(&framed(&[b"ok"]));
        dec.push(&u16::MAX.to_be_bytes());
        assert_eq!(dec.next_frame().unwrap().unwrap(), &b"ok"[..]);
        assert_eq!(dec.next_frame(), Err(FrameError::Oversized(65535)));

        let mut out = BytesMut::new();
        assert_eq!(
            encode_frame(&[0; 1501], &mut out),
            Err(FrameError::Oversized(1501))
        );
        assert_eq!(encode_frame(&[], &mut out), Err(FrameError::Empty));
        assert!(out.is_empty());
        encode_frame(&[0; MAX_FRAME], &mut out).unwrap();
        assert_eq!(&out[..2], &[0x05, 0xdc]);
    }

    #[test]
    fn random_sizes_round_trip() {
        let mut rng = StdRng::seed_from_u64(0x1ce_7c9);
        let datagrams: Vec<Vec<u8>> = (0..500)
            .map(|_| {
                let mut d = vec![0u8; rng.random_range(1..=MAX_FRAME)];
                rng.fill(&mut d[..]);
                d
            })
            .collect();
        let mut wire = BytesMut::new();
        for d in &datagrams {
            encode_frame(d, &mut wire).unwrap();
        }
        // Fed in random pieces, as TCP reads would deliver them.
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=4000).min(rest.len());
            dec.push(&rest[..n]);
            rest = &rest[n..];
            frames.extend(drain(&mut dec));
        }
        assert_eq!(frames, datagrams);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn write_queue_drops_whole_frames_and_advances_partially() {
        // Room for two frames of 100 (102 bytes each) and not a third.
        let mut q = WriteQueue::new(250);
        assert!(q.is_empty());
        assert!(q.push(&[1; 100]));
        assert!(q.push(&[2; 100]));
        assert!(!q.push(&[3; 100]));
        assert_eq!((q.len_bytes(), q.dropped()), (204, 1));
        // Something smaller still fits; unframeable datagrams are refused.
        assert!(q.push(&[4; 44]));
        assert_eq!(q.len_bytes(), 250);
        assert!(!q.push(&[5]));
        assert!(!q.push(&[]));
        assert_eq!(q.dropped(), 3);

        // Write in odd pieces: the stream is exactly the accepted frames.
        let mut written = Vec::new();
        for n in [1, 2, 150, 1000] {
            let chunk = q.chunk();
            let n = n.min(chunk.len());
            written.extend_from_slice(&chunk[..n]);
            q.advance(n);
        }
        assert!(q.is_empty());
        assert_eq!(written, &framed(&[&[1; 100], &[2; 100], &[4; 44]])[..]);

        // Room again once written; over-advancing is clamped.
        assert!(q.push(&[6; 200]));
        q.advance(10_000);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn frames_cross_a_loopback_connection() {
        use tokio::net::{TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = client.unwrap();
        let (mut server, _) = accepted.unwrap();

        let mut rng = StdRng::seed_from_u64(42);
        let datagrams: Vec<Vec<u8>> = (0..300)
            .map(|_| {
                let mut d = vec![0u8; rng.random_range(1..=MAX_FRAME)];
                rng.fill(&mut d[..]);
                d
            })
            .collect();

        let sent = datagrams.clone();
        let writer = tokio::spawn(async move {
            let mut q = WriteQueue::default();
            for d in &sent {
                assert!(q.push(d));
                // Flush now and then so the reader sees frames split across reads.
                if q.len_bytes() > 10_000 {
                    while !q.is_empty() {
                        write_queued(&mut client, &mut q).await.unwrap();
                    }
                }
            }
            while !q.is_empty() {
                write_queued(&mut client, &mut q).await.unwrap();
            }
            client.write_all(&2000u16.to_be_bytes()).await.unwrap();
            client
        });

        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        let err = loop {
            match read_frames(&mut server, &mut dec, &mut frames).await {
                Ok(_) => {}
                Err(err) => break err,
            }
        };
        assert!(
            matches!(err, TcpIoError::Frame(FrameError::Oversized(2000))),
            "{err}"
        );
        assert_eq!(frames, datagrams);

        // End of stream is reported as such.
        let client = writer.await.unwrap();
        drop(client);
        let mut dec = FrameDecoder::new();
        let err = loop {
            if let Err(err) = read_frames(&mut server, &mut dec, &mut frames).await {
                break err;
            }
        };
        assert!(matches!(err, TcpIoError::Closed), "{err}");
    }
}
