//! Writing a [`Response`] to the socket: encoded bytes with ordinary writes, file ranges with
//! `sendfile(2)`, so Fetch record sets go from the page cache to the socket without passing
//! through the broker's memory.
//!
//! The socket is non-blocking: `sendfile` sends what the socket buffer takes and the rest waits
//! for writability through tokio's readiness, like any other write. Data already in the page
//! cache (what consumers that keep up read) is sent without touching the disk; data that is not
//! makes `sendfile` wait for the disk read on this task, as Kafka's network threads do.

use std::io;

use strom_storage::FileRange;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use crate::protocol::{Part, Response};

/// Writes the whole frame, in order.
pub async fn write_response(write: &mut OwnedWriteHalf, response: &Response) -> io::Result<()> {
    for part in response.parts() {
        match part {
            Part::Bytes(bytes) => write.write_all(bytes).await?,
            Part::File(range) => send_file(write.as_ref(), range).await?,
        }
    }
    Ok(())
}

async fn send_file(stream: &TcpStream, range: &FileRange) -> io::Result<()> {
    let mut offset = range.position();
    let end = offset + range.len() as u64;
    while offset < end {
        let remaining = usize::try_from(end - offset).unwrap_or(usize::MAX);
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, range.file(), Some(&mut offset), remaining)
                .map_err(io::Error::from)
        });
        match sent {
            // The file is shorter than the range (truncated under the read): the frame cannot
            // be completed, so the connection must close.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ends at {offset}, inside the range being sent",
                        range.path().display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
