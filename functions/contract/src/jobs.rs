//! Queue messages. Every message names the user and the pass it belongs to, so a message left
//! over from an earlier pass (or a redelivery after the user moved on) is recognised and dropped.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// List the source folders of a user, map and create them on the target, and fan out one
    /// `Copy` per folder.
    Plan { user_id: Uuid, pass: u32 },
    /// Copy (or continue copying) one folder of a user. `attempt` counts continuations and
    /// retries, for logging and backoff only; progress lives in the folder checkpoint.
    Copy {
        user_id: Uuid,
        pass: u32,
        folder: String,
        #[serde(default)]
        attempt: u32,
    },
    /// A preflight of one user (bulk preflight); the result is kept on the user. `attempt`
    /// counts the times its servers were full and it was sent again.
    Preflight {
        user_id: Uuid,
        #[serde(default)]
        attempt: u32,
    },
}

impl Job {
    pub fn user_id(&self) -> Uuid {
        match self {
            Job::Plan { user_id, .. }
            | Job::Copy { user_id, .. }
            | Job::Preflight { user_id, .. } => *user_id,
        }
    }
}
