//! How a user's sign-in with their provider ended, as the provider's redirect back to the
//! credential page says (`?sign_in=…`), and what the page tells the user about it.

use contract::InviteView;

/// How a sign-in with the provider ended, as the provider's redirect told the page
/// (`?sign_in=…&side=…`, with `as=` for a wrong account and `why=` for a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInResult {
    SignedIn,
    WrongAccount { side: String, signed_in_as: String },
    Denied,
    AlreadyUsed,
    Expired,
    Failed(String),
}

impl SignInResult {
    /// Reads the page's query string (`?sign_in=…`); `None` when it says nothing of a sign-in.
    pub fn from_query(query: &str) -> Option<SignInResult> {
        let pairs: Vec<(String, String)> = query
            .trim_start_matches('?')
            .split('&')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((decode(k), decode(v)))
            })
            .collect();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Some(match get("sign_in").as_str() {
            "ok" => SignInResult::SignedIn,
            "wrong_account" => SignInResult::WrongAccount {
                side: get("side"),
                signed_in_as: get("as"),
            },
            "denied" => SignInResult::Denied,
            "used" => SignInResult::AlreadyUsed,
            "expired" => SignInResult::Expired,
            "failed" => SignInResult::Failed(get("why")),
            _ => return None,
        })
    }

    pub fn is_success(&self) -> bool {
        *self == SignInResult::SignedIn
    }

    /// What the page says about it; `invite` names the address the link is for.
    pub fn message(&self, invite: &InviteView) -> String {
        match self {
            SignInResult::SignedIn => "You are signed in. Press Start to begin the move.".into(),
            SignInResult::WrongAccount { side, signed_in_as } => {
                let expected = if side == "source" {
                    &invite.source_email
                } else {
                    &invite.target_email
                };
                format!(
                    "You signed in as {signed_in_as}, but this invitation is for {expected}. Nothing was saved. Sign in again with the account {expected}."
                )
            }
            SignInResult::Denied => "You did not allow access to your mailbox, so nothing was saved. To move your mail, sign in again and accept.".into(),
            SignInResult::AlreadyUsed => "That sign-in was already used (a reload or the back button). Nothing changed: sign in again if you are not signed in below.".into(),
            SignInResult::Expired => "The sign-in took too long and was not completed. Nothing was saved: sign in again.".into(),
            SignInResult::Failed(why) => format!(
                "The sign-in did not work ({why}). Nothing was saved: try again, and tell your administrator if it keeps failing."
            ),
        }
    }
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b as u8);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::migrate::tests::invite;
    use contract::UserState;

    #[test]
    fn a_sign_in_result_is_read_from_the_query_and_says_what_to_do() {
        assert_eq!(SignInResult::from_query(""), None);
        assert_eq!(
            SignInResult::from_query("?sign_in=ok&side=target"),
            Some(SignInResult::SignedIn)
        );
        let wrong =
            SignInResult::from_query("?sign_in=wrong_account&side=source&as=eve%2Bx%40new.example")
                .unwrap();
        assert_eq!(
            wrong,
            SignInResult::WrongAccount {
                side: "source".into(),
                signed_in_as: "eve+x@new.example".into()
            }
        );
        let text = wrong.message(&invite(UserState::EmailSent, 5));
        assert!(text.contains("eve+x@new.example") && text.contains("ada@old.example"));
        assert!(text.contains("Nothing was saved"));
        let failed = SignInResult::from_query("?sign_in=failed&why=a%20b%26c%zz").unwrap();
        assert_eq!(failed, SignInResult::Failed("a b&c%zz".into()));
        assert!(!failed.is_success());
    }
}
