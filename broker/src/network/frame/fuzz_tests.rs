//! Property tests of the frame reader: any byte stream, in any split into reads, gives exactly
//! the frames a reference parser finds and then a clean end or the error the reference names
//! (negative size, too large, truncated), never a panic, and holds no request memory after.

use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use super::*;

const MAX_FRAME: usize = 300;

/// Delivers `bytes` in reads of the given sizes (the last size repeats).
struct Pieces {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
    at: usize,
    read: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let size = self
            .sizes
            .get(self.read)
            .or(self.sizes.last())
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        let end = (self.at + size)
            .min(self.bytes.len())
            .min(self.at + buf.remaining());
        let chunk = self.bytes[self.at..end].to_vec();
        buf.put_slice(&chunk);
        self.at = end;
        self.read += 1;
        Poll::Ready(Ok(()))
    }
}

/// What the reader must end with after the frames.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    Negative,
    TooLarge,
    Truncated,
}

/// The reference: frames in order, then how the stream ends.
fn reference(bytes: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        if rest.len() < 4 {
            return (frames, End::Truncated);
        }
        let size = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if size < 0 {
            return (frames, End::Negative);
        }
        let size = size as usize;
        if size > MAX_FRAME {
            return (frames, End::TooLarge);
        }
        if rest.len() < 4 + size {
            return (frames, End::Truncated);
        }
        frames.push(rest[4..4 + size].to_vec());
        rest = &rest[4 + size..];
    }
}

/// A stream part: a whole frame, or bytes that may be anything.
fn part() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..MAX_FRAME + 20).prop_map(|payload| {
            let mut framed = (payload.len() as i32).to_be_bytes().to_vec();
            framed.extend_from_slice(&payload);
            framed
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => prop_oneof![Just(i32::MIN), Just(-1), Just(i32::MAX), Just(MAX_FRAME as i32 + 1)]
            .prop_map(|size| size.to_be_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_stream_in_any_reads_gives_the_reference_frames_and_end(
        parts in proptest::collection::vec(part(), 0..8),
        sizes in proptest::collection::vec(1usize..700, 1..10),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let (expected, end) = reference(&bytes);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let memory = RequestMemory::new(Some(1 << 20));
        let (frames, outcome) = runtime.block_on(async {
            let limits = FrameLimits { max_frame: MAX_FRAME, read_timeout: None };
            let input = Pieces { bytes: bytes.clone(), sizes, at: 0, read: 0 };
            let mut reader = FrameReader::new(input, limits, memory.clone());
            let mut frames = Vec::new();
            let outcome = loop {
                match reader.next_frame().await {
                    Ok(Some(frame)) => frames.push(frame.bytes.to_vec()),
                    Ok(None) => break End::Clean,
                    Err(FrameError::NegativeSize { .. }) => break End::Negative,
                    Err(FrameError::TooLarge { .. }) => break End::TooLarge,
                    Err(FrameError::Truncated { .. }) => break End::Truncated,
                    Err(other) => panic!("unexpected {other}"),
                }
            };
            (frames, outcome)
        });
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(outcome, end);
        prop_assert_eq!(memory.used(), 0, "every frame's memory is returned");
    }
}
