//! Identifier newtypes, so a peer id is never passed where a track id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string without checking it; see the `validate_*` functions for input
            /// that came from the network.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A peer's id, assigned by the server on join and unique for the server's lifetime.
    PeerId
);
string_id!(
    /// A track's id: the `msid` track id its publisher gave it, unique within a room.
    TrackId
);
string_id!(
    /// A room's name as the user typed it (validated by [`crate::validate_room_name`]).
    RoomName
);
