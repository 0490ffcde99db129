//! A send loop that stops for good ([`Ended`], reported to the room), and how many failed frames
//! in a row it takes ([`Failures`]).

use super::PublishError;
use crate::media::SourceError;
use tokio::sync::mpsc;
use videoroom_protocol::MediaKind;

/// A send loop that stopped for good: which track (by SSRC), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The track's SSRC.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: MediaKind,
    /// Why, for a person.
    pub reason: String,
}

impl Ended {
    pub(super) fn new(ssrc: u32, kind: MediaKind, reason: impl Into<String>) -> Self {
        Self {
            ssrc,
            kind,
            reason: reason.into(),
        }
    }
}

/// Where a send loop reports that it stopped for good.
pub type EndReports = mpsc::UnboundedSender<Ended>;

/// Consecutive failed frames before a send loop gives up on its source.
const MAX_FAILURES: u32 = 50;

/// Counts consecutive failures of a source; after [`MAX_FAILURES`] the loop gives up.
#[derive(Default)]
pub(super) struct Failures(u32);

/// What a send loop does with the result of one step.
pub(super) enum Outcome<T> {
    /// Send it.
    Frame(T),
    /// Skip this frame.
    Skip,
    /// The source is gone or keeps failing: stop (the room has been told).
    Stop,
}

impl Failures {
    /// Judges one step's result; a source that ended or failed [`MAX_FAILURES`] times in a row
    /// is reported on `ended`.
    pub(super) fn judge<T>(
        &mut self,
        kind: MediaKind,
        device: &str,
        ssrc: u32,
        result: Result<T, PublishError>,
        ended: &EndReports,
    ) -> Outcome<T> {
        match result {
            Ok(frame) => {
                self.0 = 0;
                Outcome::Frame(frame)
            }
            Err(PublishError::Source(SourceError::Ended)) => {
                tracing::info!("{device} source ended");
                let _ = ended.send(Ended::new(ssrc, kind, format!("the {device} stopped")));
                Outcome::Stop
            }
            Err(e) => {
                self.0 += 1;
                if self.0 == 1 {
                    tracing::warn!("{device} frame skipped: {e}");
                }
                if self.0 >= MAX_FAILURES {
                    let _ = ended.send(Ended::new(
                        ssrc,
                        kind,
                        format!("the {device} keeps failing: {e}"),
                    ));
                    return Outcome::Stop;
                }
                Outcome::Skip
            }
        }
    }
}
