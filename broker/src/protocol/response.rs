//! [`Response`]: an encoded response frame as the connection writes it — encoded bytes, possibly
//! interleaved with ranges of segment files that go from the page cache to the socket with
//! `sendfile` (Fetch record sets).

use bytes::{Bytes, BytesMut};
use strom_storage::{FileRange, StorageError};

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub enum Part {
    /// Encoded bytes.
    Bytes(Bytes),
    /// Bytes of a segment file, sent without being read into memory.
    File(FileRange),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(bytes) => bytes.len(),
            Part::File(range) => range.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response frame (size prefix included), in order.
#[derive(Debug, Clone)]
pub struct Response {
    parts: Vec<Part>,
}

impl Response {
    /// A response encoded into memory.
    pub fn from_bytes(bytes: Bytes) -> Response {
        Response {
            parts: vec![Part::Bytes(bytes)],
        }
    }

    /// A response made of parts (adjacent empty parts are dropped).
    pub fn from_parts(parts: Vec<Part>) -> Response {
        Response {
            parts: parts.into_iter().filter(|p| !p.is_empty()).collect(),
        }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame as one buffer, reading file parts (tests, and callers without a socket).
    pub fn to_bytes(&self) -> Result<Bytes, StorageError> {
        if let [Part::Bytes(bytes)] = self.parts.as_slice() {
            return Ok(bytes.clone());
        }
        let mut out = BytesMut::with_capacity(self.len());
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => out.extend_from_slice(bytes),
                Part::File(range) => {
                    let at = out.len();
                    out.resize(at + range.len(), 0);
                    let n = range.read_into(&mut out[at..])?;
                    out.truncate(at + n);
                }
            }
        }
        Ok(out.freeze())
    }
}
