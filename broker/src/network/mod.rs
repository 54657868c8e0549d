//! TCP side of the broker: framing, connections, the listener.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod send;
