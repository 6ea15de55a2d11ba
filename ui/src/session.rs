//! The login token and the browser sessions it opens.
//!
//! The token is fresh and random at every start; opening the login URL
//! trades it for a session: a random secret in an HttpOnly,
//! SameSite=Strict cookie. The sessions' hashes (never the secrets) are
//! kept owner-only in `HOME/ui.sessions`, so an open page reconnects by
//! itself after the node restarts; at most [`MAX_SESSIONS`], the oldest
//! forgotten first.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

/// The sessions file's name in the home.
pub const SESSIONS_FILE: &str = "ui.sessions";

/// Browser sessions remembered at once.
pub const MAX_SESSIONS: usize = 8;

/// The session cookie's name.
pub const COOKIE: &str = "baro_session";

/// The token and the open sessions.
#[derive(Debug)]
pub struct Sessions {
    token: String,
    path: PathBuf,
    /// Hashes of the open sessions' secrets, oldest first.
    open: Mutex<VecDeque<[u8; 32]>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // No randomness from the system: nothing can be served safely.
    if getrandom::fill(&mut bytes).is_err() {
        panic!("the system gives no randomness for the app's token");
    }
    hex::encode(bytes)
}

impl Sessions {
    /// A fresh token; the sessions remembered in `path` (if readable).
    pub fn new(path: PathBuf) -> Self {
        let open = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| <[u8; 32]>::try_from(hex::decode(line.trim()).ok()?).ok())
            .take(MAX_SESSIONS)
            .collect();
        Sessions {
            token: random_hex(),
            path,
            open: Mutex::new(open),
        }
    }

    /// The login token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `given` is the login token (compared in constant time).
    pub fn is_token(&self, given: &str) -> bool {
        let expected = blake3::hash(self.token.as_bytes());
        // blake3's Hash compares in constant time.
        blake3::hash(given.as_bytes()) == expected
    }

    /// Opens a session: its secret, for the cookie.
    pub fn open(&self) -> String {
        let secret = random_hex();
        let hash = *blake3::hash(secret.as_bytes()).as_bytes();
        let Ok(mut open) = self.open.lock() else {
            return secret;
        };
        open.push_back(hash);
        while open.len() > MAX_SESSIONS {
            open.pop_front();
        }
        let text: String = open.iter().map(|h| hex::encode(h) + "\n").collect();
        if let Err(e) = crate::write_owner_only(&self.path, &text) {
            tracing::warn!(error = %e, "cannot remember the app's sessions");
        }
        secret
    }

    /// Whether `secret` is an open session's.
    pub fn is_open(&self, secret: &str) -> bool {
        let hash = blake3::hash(secret.as_bytes());
        self.open
            .lock()
            .map(|open| open.iter().any(|h| blake3::Hash::from(*h) == hash))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_survives_a_restart_and_the_token_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(SESSIONS_FILE);
        let first = Sessions::new(path.clone());
        assert!(first.is_token(&first.token.clone()));
        assert!(!first.is_token("0"));
        assert!(!first.is_token(""));
        let secret = first.open();
        assert!(first.is_open(&secret));
        assert!(
            !first.is_open(&first.token.clone()),
            "the token is no session"
        );

        let restarted = Sessions::new(path.clone());
        assert_ne!(restarted.token, first.token, "a fresh token at each start");
        assert!(restarted.is_open(&secret), "the page reconnects");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains(&secret), "only hashes are kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn sessions_are_bounded_the_oldest_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sessions = Sessions::new(dir.path().join(SESSIONS_FILE));
        let secrets: Vec<String> = (0..MAX_SESSIONS + 2).map(|_| sessions.open()).collect();
        assert!(!sessions.is_open(&secrets[0]));
        assert!(!sessions.is_open(&secrets[1]));
        assert!(secrets[2..].iter().all(|s| sessions.is_open(s)));
    }
}
