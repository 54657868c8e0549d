//! Kafka framing: every request and response is a 4-byte big-endian size followed by that many
//! bytes. Reading returns `Ok(None)` on a clean end of stream between frames and an error when
//! the peer disconnects mid-frame, announces a frame larger than `socket.request.max.bytes`, or
//! does not finish a frame it started within `socket.request.read.timeout.ms`.
//!
//! A frame's announced size is reserved in the broker-wide [`RequestMemory`] before its body is
//! read. A frame of up to [`WHOLE_FRAME_BYTES`] (a produce request of a client's default
//! `message.max.bytes`) gets its whole buffer at once, so it is read without being moved while
//! it grows. A larger one grows only with the bytes that arrive (at most doubling what has
//! arrived), so a peer that announces 100 MB and sends 10 bytes costs little memory, not 100 MB
//! of address space.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::memory::{MemoryPermit, RequestMemory};

/// Errors that end a connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {size}")]
    NegativeSize { size: i32 },
    #[error("connection closed mid-frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error(
        "frame not received within socket.request.read.timeout.ms ({timeout:?}): {received} bytes of {expected} arrived"
    )]
    ReadTimeout {
        timeout: Duration,
        received: usize,
        /// The announced frame size with its prefix; 4 while the prefix itself is incomplete.
        expected: usize,
    },
    #[error("socket read: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// A stable name of the kind of error, for rate-limited logging.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "frame too large",
            FrameError::NegativeSize { .. } => "negative frame size",
            FrameError::Truncated { .. } => "closed mid-frame",
            FrameError::ReadTimeout { .. } => "frame read timeout",
            FrameError::Io(_) => "socket read error",
        }
    }
}

/// One request frame and the request memory it holds until it has been answered.
#[derive(Debug)]
pub struct Frame {
    pub bytes: Bytes,
    pub memory: MemoryPermit,
}

/// Limits of one connection's framing.
#[derive(Debug, Clone)]
pub struct FrameLimits {
    /// `socket.request.max.bytes`.
    pub max_frame: usize,
    /// `socket.request.read.timeout.ms`: time to receive a frame once its first byte arrived
    /// (time spent waiting for request memory does not count).
    pub read_timeout: Option<Duration>,
}

/// Reads size-prefixed frames from a byte stream into one reusable buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buffer: BytesMut,
    limits: FrameLimits,
    memory: Arc<RequestMemory>,
    /// The size of the frame being read, once its prefix is in.
    size: Option<usize>,
    /// Memory reserved for that frame.
    permit: Option<MemoryPermit>,
    /// When the frame being read must be complete.
    deadline: Option<Instant>,
    last_read: Instant,
}

/// Read-ahead granularity: one syscall usually brings several pipelined requests.
const READ_CHUNK: usize = 64 * 1024;

/// The largest frame whose buffer is allocated whole when its size is known (see the module
/// docs): librdkafka's default `message.max.bytes` and Kafka's default `max.request.size`
/// are 1 MB, so a full produce request fits.
pub const WHOLE_FRAME_BYTES: usize = 1 << 20;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, limits: FrameLimits, memory: Arc<RequestMemory>) -> FrameReader<R> {
        FrameReader {
            inner,
            buffer: BytesMut::new(),
            limits,
            memory,
            size: None,
            permit: None,
            deadline: None,
            last_read: Instant::now(),
        }
    }

    /// When bytes last arrived (or the reader was made).
    pub fn last_read(&self) -> Instant {
        self.last_read
    }

    /// Restarts the deadline of a partly buffered frame: for time the broker itself was not
    /// reading (its request pipeline was full), which must not count against the peer.
    pub fn restart_deadline(&mut self) {
        if self.mid_frame() {
            self.start_frame();
        }
    }

    /// Whether part of a frame is buffered.
    pub fn mid_frame(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The next frame's payload (without the size prefix). Cancel-safe: a cancelled call loses
    /// no bytes and keeps the frame's deadline and memory reservation.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if let (Some(size), None) = (self.size, &self.permit) {
                self.permit = Some(self.memory.reserve(4 + size).await);
                self.deadline = self.limits.read_timeout.map(|t| Instant::now() + t);
                continue;
            }
            self.grow();
            let read = match self.deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.inner.read_buf(&mut self.buffer))
                        .await
                    {
                        Ok(read) => read?,
                        Err(_) => {
                            return Err(FrameError::ReadTimeout {
                                timeout: self.limits.read_timeout.unwrap_or_default(),
                                received: self.buffer.len(),
                                expected: self.size.map_or(4, |size| size + 4),
                            });
                        }
                    }
                }
                None => self.inner.read_buf(&mut self.buffer).await?,
            };
            if read == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    buffered: self.buffer.len(),
                });
            }
            self.last_read = Instant::now();
            if self.deadline.is_none() {
                self.start_frame();
            }
        }
    }

    /// The first bytes of a frame are in: its deadline starts.
    fn start_frame(&mut self) {
        self.deadline = self.limits.read_timeout.map(|t| Instant::now() + t);
    }

    /// Makes room for the next read: the rest of an announced frame of up to
    /// [`WHOLE_FRAME_BYTES`], else at least a read chunk and at most as much again as is
    /// buffered.
    fn grow(&mut self) {
        let spare = self.buffer.capacity() - self.buffer.len();
        if let Some(size) = self.size
            && size + 4 <= WHOLE_FRAME_BYTES
        {
            let rest = 4 + size - self.buffer.len();
            if spare < rest {
                self.buffer.reserve(rest.max(READ_CHUNK));
            }
            return;
        }
        if spare >= READ_CHUNK / 4 {
            return;
        }
        let wanted = match self.size {
            Some(size) => (4 + size - self.buffer.len())
                .min(self.buffer.len())
                .max(READ_CHUNK),
            None => READ_CHUNK,
        };
        self.buffer.reserve(wanted);
    }

    fn parse(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.size.is_none() {
            if self.buffer.len() < 4 {
                return Ok(None);
            }
            let size = i32::from_be_bytes([
                self.buffer[0],
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
            ]);
            let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize { size })?;
            if size > self.limits.max_frame {
                return Err(FrameError::TooLarge {
                    size,
                    max: self.limits.max_frame,
                });
            }
            self.size = Some(size);
        }
        let Some(size) = self.size.filter(|&size| self.buffer.len() >= 4 + size) else {
            return Ok(None);
        };
        let Some(memory) = self.permit.take() else {
            return Ok(None);
        };
        self.buffer.advance(4);
        let bytes = self.buffer.split_to(size).freeze();
        self.size = None;
        self.deadline = None;
        if !self.buffer.is_empty() {
            // Part of the next frame came with this one: its deadline starts now.
            self.start_frame();
        }
        Ok(Some(Frame { bytes, memory }))
    }
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits(max_frame: usize, read_timeout: Option<Duration>) -> FrameLimits {
        FrameLimits {
            max_frame,
            read_timeout,
        }
    }

    async fn frames(input: &[u8], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut reader = FrameReader::new(input, limits(max, None), RequestMemory::new(None));
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame().await? {
            out.push(frame.bytes);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn pipelined_frames_come_out_in_order() {
        let mut input = Vec::new();
        for payload in [&b"abc"[..], b"", b"hello"] {
            input.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            input.extend_from_slice(payload);
        }
        let out = frames(&input, 1024).await.expect("valid frames");
        assert_eq!(
            out,
            vec![Bytes::from("abc"), Bytes::new(), Bytes::from("hello")]
        );
    }

    #[tokio::test]
    async fn truncated_oversize_and_negative_frames_are_errors() {
        let mut input = 10i32.to_be_bytes().to_vec();
        input.extend_from_slice(b"abc");
        assert!(matches!(
            frames(&input, 1024).await,
            Err(FrameError::Truncated { .. })
        ));
        let input = 2048i32.to_be_bytes();
        assert!(matches!(
            frames(&input, 1024).await,
            Err(FrameError::TooLarge { size: 2048, .. })
        ));
        let input = (-5i32).to_be_bytes();
        assert!(matches!(
            frames(&input, 1024).await,
            Err(FrameError::NegativeSize { size: -5 })
        ));
        assert!(frames(&[0, 0], 1024).await.is_err());
        assert!(frames(&[], 1024).await.expect("clean end").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_frame_that_stalls_times_out() {
        let (mut client, server) = tokio::io::duplex(1024);
        let timeout = Duration::from_secs(30);
        let memory = RequestMemory::new(None);
        let mut reader = FrameReader::new(server, limits(1 << 20, Some(timeout)), memory.clone());
        // Half of a 100-byte frame, then nothing.
        client
            .write_all(&100i32.to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[7; 50]).await.expect("write");
        let error = reader.next_frame().await.expect_err("stalled frame");
        assert!(
            matches!(
                error,
                FrameError::ReadTimeout {
                    received: 54,
                    expected: 104,
                    ..
                }
            ),
            "{error}"
        );
        // Even a stalled size prefix has the deadline.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, limits(1 << 20, Some(timeout)), memory);
        client.write_all(&[0, 0]).await.expect("write");
        assert!(matches!(
            reader.next_frame().await,
            Err(FrameError::ReadTimeout { expected: 4, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_broker_was_not_reading_does_not_count() {
        let (mut client, server) = tokio::io::duplex(1024);
        let limits = limits(1 << 20, Some(Duration::from_secs(30)));
        let mut reader = FrameReader::new(server, limits, RequestMemory::new(None));
        // One frame and half of the next one's size prefix arrive together.
        client
            .write_all(&[0, 0, 0, 1, b'a', 0, 0])
            .await
            .expect("write");
        let first = reader.next_frame().await.expect("frame").expect("not eof");
        assert_eq!(first.bytes, Bytes::from("a"));
        // The broker is busy for 25 s, then reads on; the client finishes 25 s after that.
        tokio::time::sleep(Duration::from_secs(25)).await;
        reader.restart_deadline();
        let next = tokio::spawn(async move {
            let frame = reader.next_frame().await;
            frame.map(|f| f.map(|f| f.bytes))
        });
        tokio::time::sleep(Duration::from_secs(25)).await;
        client
            .write_all(&[0, 3, b'b', b'c', b'd'])
            .await
            .expect("write");
        let frame = next.await.expect("task").expect("within the deadline");
        assert_eq!(frame, Some(Bytes::from("bcd")));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_between_frames_is_not_a_frame_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let limits = limits(1 << 20, Some(Duration::from_secs(1)));
        let mut reader = FrameReader::new(server, limits, RequestMemory::new(None));
        let next = tokio::spawn(async move {
            let frame = reader.next_frame().await;
            frame.map(|f| f.map(|f| f.bytes))
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        client
            .write_all(&[0, 0, 0, 2, b'o', b'k'])
            .await
            .expect("write");
        let frame = next.await.expect("task").expect("a frame");
        assert_eq!(frame, Some(Bytes::from("ok")));
    }

    /// A reader that was sent the size prefix of a frame of `size` bytes and then only 1000
    /// bytes of it before the peer hung up, and has reported the truncation.
    async fn reader_of_a_truncated_frame(
        size: usize,
        memory: Arc<RequestMemory>,
    ) -> FrameReader<tokio::io::DuplexStream> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut reader = FrameReader::new(server, limits(1 << 30, None), memory);
        client
            .write_all(&i32::try_from(size).expect("fits").to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[1; 1000]).await.expect("write");
        drop(client);
        assert!(matches!(
            reader.next_frame().await,
            Err(FrameError::Truncated { buffered: 1004 })
        ));
        reader
    }

    #[tokio::test]
    async fn the_buffer_grows_with_the_bytes_not_the_announced_size() {
        let memory = RequestMemory::new(None);
        let reader = reader_of_a_truncated_frame(1 << 30, memory.clone()).await;
        assert!(
            reader.buffer.capacity() <= 2 * READ_CHUNK,
            "buffer of {} bytes for 1004 received",
            reader.buffer.capacity()
        );
        // The announced size was reserved in the pool (and is returned with the reader).
        assert_eq!(memory.used(), (1 << 30) + 4);
        drop(reader);
        assert_eq!(memory.used(), 0);
    }

    #[tokio::test]
    async fn a_frame_of_a_full_produce_request_gets_its_whole_buffer_at_once() {
        let reader =
            reader_of_a_truncated_frame(WHOLE_FRAME_BYTES - 4, RequestMemory::new(None)).await;
        // Room for the whole frame: the rest would have been read in place, never moved.
        assert!(
            reader.buffer.capacity() >= WHOLE_FRAME_BYTES,
            "buffer of {} bytes for a frame of {WHOLE_FRAME_BYTES}",
            reader.buffer.capacity()
        );
    }

    #[tokio::test]
    async fn a_frame_arriving_in_pieces_is_reassembled() {
        let (mut client, server) = tokio::io::duplex(64);
        let memory = RequestMemory::new(Some(1 << 20));
        let mut reader = FrameReader::new(server, limits(1 << 20, None), memory.clone());
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let writer = tokio::spawn({
            let payload = payload.clone();
            async move {
                client
                    .write_all(&(payload.len() as i32).to_be_bytes())
                    .await?;
                client.write_all(&payload).await?;
                client.shutdown().await
            }
        });
        let frame = reader.next_frame().await.expect("frame").expect("not eof");
        assert_eq!(frame.bytes, payload);
        assert_eq!(memory.used(), payload.len() + 4);
        drop(frame);
        assert_eq!(memory.used(), 0);
        assert!(reader.next_frame().await.expect("clean end").is_none());
        writer.await.expect("task").expect("writes");
    }
}
