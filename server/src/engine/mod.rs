//! The server's media engine: one UDP socket (and one ICE-TCP listener) for every peer of every
//! room, demultiplexed to one sans-I/O `rtc` core per peer, driven with explicit time.
//!
//! Where to start: `core.rs` (the sync, time-explicit logic), `demux.rs` and `stun.rs` (which
//! datagram belongs to which peer), `io_udp.rs` / `io_tcp.rs` (sockets), `worker.rs` (the thread
//! that drives the core), `handle.rs` (the async face the endpoint and room use).

pub mod bwe;
pub mod core;
pub mod demux;
pub mod forward;
pub mod handle;
pub mod io_tcp;
pub mod io_udp;
pub mod keyframe;
pub mod layers;
pub mod router;
pub mod sim;
pub mod speakers;
pub mod stun;
pub mod tcp_framing;
pub mod vp8;
pub mod worker;

pub use handle::{Engine, EngineHandle, ForwarderHandle, Leg, PeerHandle};
pub use layers::View;
pub use worker::{EngineConfig, EngineStartError};
