//! The state machine of a migrating user (DESIGN.md, "States of a migrating user").
//!
//! Transitions are checked here, and every store write of a user is conditional on the version
//! read before, so two workers or a redelivered message can never move a user backwards.

use contract::UserState::{self, *};

/// Why a user changes state; each event allows a fixed set of source states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// An invite email was sent (or re-sent).
    InviteSent,
    /// Credentials are available: queue the user for copying.
    Schedule,
    /// A worker started copying.
    StartWork,
    /// Every folder of the pass is copied.
    Complete,
    /// The admin (or user) checked the result.
    Verify,
    /// Something failed that a retry may fix.
    Fail,
    /// The admin paused the user.
    Pause,
    /// The admin asked for another try after a failure or pause.
    Retry,
    /// A delta pass: asked by the admin, the project's sync schedule, or the cutover (also
    /// after it, for mail that still reached the old server).
    Delta,
    /// The user switches to the new account: when the final delta pass ends, or straight from
    /// a finished pass when no delta can run (the passwords are gone).
    CutOver,
}

impl Transition {
    /// The state reached from `from`, or `None` when this transition is not allowed there.
    pub fn apply(self, from: UserState) -> Option<UserState> {
        let to = match (self, from) {
            (Transition::InviteSent, New | EmailSent | Failed) => EmailSent,
            (Transition::Schedule, New | EmailSent | Failed) => Scheduled,
            (Transition::StartWork, Scheduled | Working) => Working,
            (Transition::Complete, Working) => Completed,
            (Transition::Verify, Completed) => Verified,
            (Transition::Fail, Scheduled | Working) => Failed,
            (Transition::Pause, Scheduled | Working | EmailSent | New) => Paused,
            (Transition::Retry, Failed | Paused) => Scheduled,
            (Transition::Delta, Completed | Verified | CutOver) => Scheduled,
            // From Failed only by the admin ("cut over now"), when no final pass can succeed.
            (Transition::CutOver, Working | Completed | Verified | Failed) => CutOver,
            _ => return None,
        };
        Some(to)
    }

    pub fn name(self) -> &'static str {
        match self {
            Transition::InviteSent => "send invite",
            Transition::Schedule => "schedule",
            Transition::StartWork => "start copying",
            Transition::Complete => "complete",
            Transition::Verify => "mark verified",
            Transition::Fail => "fail",
            Transition::Pause => "pause",
            Transition::Retry => "retry",
            Transition::Delta => "start a delta pass",
            Transition::CutOver => "cut over",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_allowed() {
        let mut s = New;
        for t in [
            Transition::InviteSent,
            Transition::Schedule,
            Transition::StartWork,
            Transition::Complete,
            Transition::Verify,
        ] {
            s = t.apply(s).unwrap_or_else(|| panic!("{t:?} from {s:?}"));
        }
        assert_eq!(s, Verified);
    }

    #[test]
    fn a_delta_pass_goes_round_again() {
        let s = Transition::Delta.apply(Completed).unwrap();
        assert_eq!(s, Scheduled);
        let s = Transition::StartWork.apply(s).unwrap();
        assert_eq!(Transition::Complete.apply(s), Some(Completed));
    }

    #[test]
    fn nothing_moves_a_user_backwards() {
        assert_eq!(Transition::Schedule.apply(Working), None);
        assert_eq!(Transition::Schedule.apply(Completed), None);
        assert_eq!(Transition::InviteSent.apply(Scheduled), None);
        assert_eq!(Transition::StartWork.apply(Completed), None);
        assert_eq!(Transition::Complete.apply(Scheduled), None);
        assert_eq!(Transition::Verify.apply(Working), None);
        assert_eq!(Transition::Retry.apply(Working), None);
        assert_eq!(Transition::Delta.apply(Working), None);
        assert_eq!(Transition::CutOver.apply(Scheduled), None);
        assert_eq!(Transition::CutOver.apply(New), None);
    }

    #[test]
    fn a_cut_over_user_can_take_a_late_delta_and_is_cut_over_again() {
        let s = Transition::Delta.apply(CutOver).unwrap();
        let s = Transition::StartWork.apply(s).unwrap();
        assert_eq!(Transition::CutOver.apply(s), Some(CutOver));
        assert_eq!(Transition::CutOver.apply(Verified), Some(CutOver));
        // A final pass that failed for good is cut over by the admin, as it is.
        assert_eq!(Transition::CutOver.apply(Failed), Some(CutOver));
    }

    #[test]
    fn every_state_has_a_way_forward_except_verified_which_allows_a_delta() {
        for s in UserState::ALL {
            let all = [
                Transition::InviteSent,
                Transition::Schedule,
                Transition::StartWork,
                Transition::Complete,
                Transition::Verify,
                Transition::Fail,
                Transition::Pause,
                Transition::Retry,
                Transition::Delta,
                Transition::CutOver,
            ];
            assert!(
                all.iter().any(|t| t.apply(s).is_some()),
                "{s:?} is a dead end"
            );
        }
    }
}
