//! TCP side of the broker: framing, connections, the listener, and the request memory they
//! share.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod memory;
pub mod send;
