//! Kafka's classic (non-flexible) field encodings of internal-topic records, shared by the
//! `__consumer_offsets` schemas here and the `__transaction_state` ones of `strom-txn`: int16
//! length-prefixed strings (-1 for null), int32 length-prefixed bytes, big-endian integers. A
//! read past the end is [`RecordError::Truncated`], never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::RecordError;

pub fn put_string(buf: &mut BytesMut, field: &'static str, s: &str) -> Result<(), RecordError> {
    let len = i16::try_from(s.len()).map_err(|_| RecordError::TooLong {
        field,
        len: s.len(),
    })?;
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

pub fn put_nullable_string(
    buf: &mut BytesMut,
    field: &'static str,
    s: Option<&str>,
) -> Result<(), RecordError> {
    match s {
        Some(s) => put_string(buf, field, s),
        None => {
            buf.put_i16(-1);
            Ok(())
        }
    }
}

pub fn put_bytes(buf: &mut BytesMut, field: &'static str, b: &[u8]) -> Result<(), RecordError> {
    let len = i32::try_from(b.len()).map_err(|_| RecordError::TooLong {
        field,
        len: b.len(),
    })?;
    buf.put_i32(len);
    buf.put_slice(b);
    Ok(())
}

pub fn get_i8(buf: &mut &[u8], field: &'static str) -> Result<i8, RecordError> {
    buf.try_get_i8()
        .map_err(|_| RecordError::Truncated { field })
}

pub fn get_i16(buf: &mut &[u8], field: &'static str) -> Result<i16, RecordError> {
    buf.try_get_i16()
        .map_err(|_| RecordError::Truncated { field })
}

pub fn get_i32(buf: &mut &[u8], field: &'static str) -> Result<i32, RecordError> {
    buf.try_get_i32()
        .map_err(|_| RecordError::Truncated { field })
}

pub fn get_i64(buf: &mut &[u8], field: &'static str) -> Result<i64, RecordError> {
    buf.try_get_i64()
        .map_err(|_| RecordError::Truncated { field })
}

pub fn get_nullable_string(
    buf: &mut &[u8],
    field: &'static str,
) -> Result<Option<String>, RecordError> {
    let len = get_i16(buf, field)?;
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    take_utf8(buf, len, field).map(Some)
}

/// The next `len` bytes as UTF-8.
pub fn take_utf8(buf: &mut &[u8], len: usize, field: &'static str) -> Result<String, RecordError> {
    if buf.len() < len {
        return Err(RecordError::Truncated { field });
    }
    let (s, rest) = buf.split_at(len);
    *buf = rest;
    String::from_utf8(s.to_vec()).map_err(|_| RecordError::InvalidUtf8 { field })
}

pub fn get_string(buf: &mut &[u8], field: &'static str) -> Result<String, RecordError> {
    get_nullable_string(buf, field)?.ok_or(RecordError::UnexpectedNull { field })
}

pub fn get_bytes(buf: &mut &[u8], field: &'static str) -> Result<Bytes, RecordError> {
    let len = get_i32(buf, field)?;
    // Kafka writes a null bytes field as length -1; read it as empty.
    let Ok(len) = usize::try_from(len) else {
        return Ok(Bytes::new());
    };
    if buf.len() < len {
        return Err(RecordError::Truncated { field });
    }
    let (b, rest) = buf.split_at(len);
    *buf = rest;
    Ok(Bytes::copy_from_slice(b))
}
