//! Bearer tokens (`--auth-token-file`): who may write.
//!
//! The check runs after routing and before the memory reservation, so an unauthenticated request costs neither
//! memory nor decoding; the rescue only drains its body (never keeps it) so that an HTTP/1.1 client hears the 401
//! instead of a broken pipe. Tokens are kept as SHA-256 digests and a presented token is compared with every one of
//! them in constant time (`subtle`), so neither the position of a mismatch nor the length of an accepted token
//! shows in the timing. A presented token is never logged, echoed or put in a metric label.
//!
//! The file is read again every [`POLL_INTERVAL`] and compared with what was last read, for the same reasons as
//! the TLS files (Secret volumes change by symlink swap): a new set of tokens applies to the next request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use http::HeaderValue;
use ring::digest::{digest, SHA256};
use subtle::{Choice, ConstantTimeEq};

use super::ReceiveError;
use crate::telemetry::Telemetry;

/// How often the token file is read again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why a request was not let in. The metric label of each is [`AuthFailure::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization` header.
    #[error("this endpoint requires a bearer token: send the header `Authorization: Bearer <token>`")]
    Missing,
    /// An `Authorization` header with another scheme (Basic, ...).
    #[error("the Authorization header does not use the Bearer scheme: send `Authorization: Bearer <token>`")]
    NotBearer,
    /// `Bearer` without a token, or not visible ASCII.
    #[error("the Authorization header is malformed: expected `Bearer <token>`")]
    Malformed,
    /// A bearer token that is not in the token file.
    #[error("the bearer token is not accepted (unknown, or revoked)")]
    UnknownToken,
}

impl AuthFailure {
    /// Every reason, for metrics that start at zero.
    pub const ALL: [AuthFailure; 4] =
        [AuthFailure::Missing, AuthFailure::NotBearer, AuthFailure::Malformed, AuthFailure::UnknownToken];

    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::NotBearer => "not_bearer",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownToken => "unknown_token",
        }
    }
}

/// Why the token file could not be used at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the token file {path}: {source}")]
pub struct TokenFileError {
    /// The file.
    pub path: String,
    /// The I/O error.
    pub source: std::io::Error,
}

/// The accepted tokens, replaced as a whole when the file changes.
#[derive(Debug)]
pub(crate) struct Tokens {
    path: PathBuf,
    digests: RwLock<Arc<Vec<[u8; 32]>>>,
}

impl Tokens {
    /// Reads the file once.
    pub(crate) fn load(path: &Path) -> Result<Arc<Tokens>, TokenFileError> {
        let text = read(path)?;
        let digests = parse(&text);
        if digests.is_empty() {
            tracing::warn!(file = %path.display(), "the token file holds no tokens: every request will get 401");
        }
        Ok(Arc::new(Tokens { path: path.to_path_buf(), digests: RwLock::new(Arc::new(digests)) }))
    }

    /// Tokens from the text of a token file, without a file (tests of the steps that use them).
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Tokens {
        Tokens { path: PathBuf::new(), digests: RwLock::new(Arc::new(parse(text))) }
    }

    /// Re-reads the file every [`POLL_INTERVAL`] for as long as these `Tokens` are alive.
    pub(crate) fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Tokens> = Arc::downgrade(self);
        let mut last = read(&self.path).ok();
        tokio::spawn(async move {
            let mut unreadable = false;
            loop {
                tokio::time::sleep(POLL_INTERVAL).await;
                let Some(tokens) = weak.upgrade() else { return };
                let text = match read(&tokens.path) {
                    Ok(text) => text,
                    Err(e) => {
                        // Mid-swap, or removed: the tokens in force stay until a readable file appears.
                        if !unreadable {
                            tracing::warn!("{e}; keeping the tokens in force");
                            unreadable = true;
                        }
                        continue;
                    }
                };
                unreadable = false;
                if last.as_ref() == Some(&text) {
                    continue;
                }
                let digests = parse(&text);
                tracing::info!(file = %tokens.path.display(), tokens = digests.len(), "token file reloaded");
                if let Ok(mut current) = tokens.digests.write() {
                    *current = Arc::new(digests);
                }
                last = Some(text);
            }
        })
    }

    /// Whether `authorization` (the request's header, if any) carries an accepted bearer token.
    pub(crate) fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthFailure> {
        let value = authorization.ok_or(AuthFailure::Missing)?;
        let value = value.to_str().map_err(|_| AuthFailure::Malformed)?.trim();
        let (scheme, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        // RFC 7235: the scheme is case-insensitive.
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(if scheme.is_empty() { AuthFailure::Malformed } else { AuthFailure::NotBearer });
        }
        let token = token.trim();
        if token.is_empty() || token.contains([' ', '\t']) {
            return Err(AuthFailure::Malformed);
        }
        let presented = sha256(token.as_bytes());
        let digests = match self.digests.read() {
            Ok(d) => Arc::clone(&d),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        // Every token is compared, whatever matched before: the time taken says nothing about which one matched.
        let mut accepted = Choice::from(0);
        for known in digests.iter() {
            accepted |= presented.ct_eq(known);
        }
        if bool::from(accepted) {
            Ok(())
        } else {
            Err(AuthFailure::UnknownToken)
        }
    }
}

fn read(path: &Path) -> Result<String, TokenFileError> {
    std::fs::read_to_string(path).map_err(|source| TokenFileError { path: path.display().to_string(), source })
}

/// One token per line; blank lines and lines starting with `#` are ignored; whitespace around a token is not part
/// of it (CRLF files work).
fn parse(text: &str) -> Vec<[u8; 32]> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| sha256(l.as_bytes())).collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// The auth step: lets the request in when no tokens are configured (`tokens` is `None`) or `authorization` carries
/// an accepted one. It runs before the reservation and before a byte of the body is read.
pub(crate) fn authorize(tokens: Option<&Tokens>, authorization: Option<&HeaderValue>) -> Result<(), ReceiveError> {
    match tokens {
        None => Ok(()),
        Some(tokens) => tokens.check(authorization).map_err(ReceiveError::Unauthorized),
    }
}

/// Starts the auth failure counters at zero for every reason, so that a dashboard sees 0 rather than no series.
pub(crate) fn count_from_zero(telemetry: &Telemetry) {
    for failure in AuthFailure::ALL {
        telemetry.auth_refused(failure.reason(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Tokens {
        Tokens::from_text(text)
    }

    fn check(t: &Tokens, header: Option<&str>) -> Result<(), AuthFailure> {
        let value = header.map(|h| HeaderValue::from_str(h).unwrap());
        t.check(value.as_ref())
    }

    #[test]
    fn the_step_admits_everyone_without_tokens_and_refuses_with_the_reason() {
        assert!(authorize(None, None).is_ok());
        let t = tokens("s3cret\n");
        assert!(authorize(Some(&t), Some(&HeaderValue::from_static("Bearer s3cret"))).is_ok());
        let refused = authorize(Some(&t), None).unwrap_err();
        assert!(matches!(refused, ReceiveError::Unauthorized(AuthFailure::Missing)), "{refused:?}");
    }

    #[test]
    fn tokens_are_one_per_line_without_blank_lines_comments_or_surrounding_space() {
        let t = tokens("# apps\nalpha\r\n\n   beta  \n#gamma\n");
        assert_eq!(check(&t, Some("Bearer alpha")), Ok(()));
        assert_eq!(check(&t, Some("Bearer beta")), Ok(()));
        assert_eq!(check(&t, Some("Bearer gamma")), Err(AuthFailure::UnknownToken));
        assert_eq!(check(&t, Some("Bearer #gamma")), Err(AuthFailure::UnknownToken));
        assert_eq!(check(&t, Some("Bearer alph")), Err(AuthFailure::UnknownToken));
        assert_eq!(check(&t, Some("Bearer alphaa")), Err(AuthFailure::UnknownToken));
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_other_schemes_are_refused() {
        let t = tokens("s3cret\n");
        for ok in ["bearer s3cret", "BEARER s3cret", "Bearer   s3cret ", "Bearer\ts3cret"] {
            assert_eq!(check(&t, Some(ok)), Ok(()), "{ok}");
        }
        assert_eq!(check(&t, None), Err(AuthFailure::Missing));
        assert_eq!(check(&t, Some("Basic czNjcmV0")), Err(AuthFailure::NotBearer));
        assert_eq!(check(&t, Some("s3cret")), Err(AuthFailure::NotBearer));
        assert_eq!(check(&t, Some("Bearer")), Err(AuthFailure::Malformed));
        assert_eq!(check(&t, Some("Bearer a b")), Err(AuthFailure::Malformed));
    }

    #[test]
    fn an_empty_file_admits_nobody() {
        assert_eq!(check(&tokens("# none yet\n\n"), Some("Bearer x")), Err(AuthFailure::UnknownToken));
    }
}
