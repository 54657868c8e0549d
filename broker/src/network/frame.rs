//! Kafka framing: every request and response is a 4-byte big-endian size followed by that many
//! bytes. Reading returns `Ok(None)` on a clean end of stream between frames and an error when
//! the peer disconnects mid-frame or announces a frame larger than `socket.request.max.bytes`.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Errors that end a connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {size}")]
    NegativeSize { size: i32 },
    #[error("connection closed mid-frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("socket read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads size-prefixed frames from a byte stream into one reusable buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buffer: BytesMut,
    max_frame: usize,
}

/// Read-ahead granularity: one syscall usually brings several pipelined requests.
const READ_CHUNK: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_frame: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            max_frame,
        }
    }

    /// The next frame's payload (without the size prefix).
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if self.buffer.capacity() - self.buffer.len() < READ_CHUNK / 4 {
                self.buffer.reserve(READ_CHUNK);
            }
            if self.inner.read_buf(&mut self.buffer).await? == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    buffered: self.buffer.len(),
                });
            }
        }
    }

    fn parse(&mut self) -> Result<Option<Bytes>, FrameError> {
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
        if size > self.max_frame {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame,
            });
        }
        if self.buffer.len() < 4 + size {
            // Reserve the whole frame at once so a large produce request is read without
            // repeated reallocation.
            self.buffer.reserve(4 + size - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(4);
        Ok(Some(self.buffer.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut reader = FrameReader::new(input, max);
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame().await? {
            out.push(frame);
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
}
