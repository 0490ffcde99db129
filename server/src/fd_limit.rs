//! The open-file limit. Every peer holds a file descriptor for its WebSocket, and one more if it
//! sends its media over ICE-TCP (the media engine's one UDP socket serves every UDP peer). At
//! start-up the binary raises the soft limit to the hard one (no privilege needed) and logs how
//! many peers that leaves room for.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// File descriptors one peer costs at most: its WebSocket and an ICE-TCP connection (a UDP peer
/// needs only the first; before the one-socket media engine it was 3).
pub const FDS_PER_PEER: u64 = 2;
/// Descriptors kept for everything else (listeners, logs, the state directory, TLS files).
pub const RESERVED_FDS: u64 = 64;

/// The limit after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit in force now (`None`: unlimited).
    pub soft: Option<u64>,
    /// The soft limit before, when it was raised.
    pub raised_from: Option<u64>,
}

impl FdLimit {
    /// About how many peers fit under the limit (`None`: no limit).
    pub fn peer_capacity(&self) -> Option<u64> {
        self.soft.map(peer_capacity)
    }
}

/// About how many peers `soft` descriptors leave room for.
pub fn peer_capacity(soft: u64) -> u64 {
    soft.saturating_sub(RESERVED_FDS) / FDS_PER_PEER
}

/// Raises the soft open-file limit to the hard limit. A refusal leaves the limit as it was and
/// says so in the error.
pub fn raise() -> Result<FdLimit, std::io::Error> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    if current == maximum {
        return Ok(FdLimit {
            soft: current,
            raised_from: None,
        });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    )?;
    Ok(FdLimit {
        soft: maximum,
        raised_from: current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_a_reserve_and_counts_two_per_peer() {
        assert_eq!(peer_capacity(1024), 480);
        assert_eq!(peer_capacity(65_536), 32_736);
        assert_eq!(peer_capacity(10), 0);
    }
}
