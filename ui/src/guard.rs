//! What every request must show before anything is served: the Host it
//! names is this server's (no DNS rebinding: a foreign name resolving to
//! 127.0.0.1 gets nothing), and a cross-site request is refused (Origin,
//! and Sec-Fetch-Site where the browser sends it); and the headers every
//! answer carries (a strict Content-Security-Policy with no inline script,
//! no framing, no sniffing, no referrer, no caching).

use std::net::SocketAddr;

/// The Content-Security-Policy of every answer: scripts, styles and
/// connections only from this origin, nothing inline, no frames, forms
/// posting only here, images also from data and blob URLs (previews).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// The Host values (and so the origins) this server answers to.
#[derive(Clone, Debug)]
pub struct Origins {
    hosts: Vec<String>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No Host header, or not this server's.
    ForeignHost,
    /// An Origin that is not this server's, or a cross-site request.
    ForeignOrigin,
    /// A request that changes something without saying where it came from.
    NoOrigin,
}

impl Refusal {
    /// One line for the refused client.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "refused: the Host header does not name this app",
            Refusal::ForeignOrigin => "refused: a request from another site",
            Refusal::NoOrigin => "refused: a change without an Origin header",
        }
    }
}

impl Origins {
    /// The hosts of a server bound on `addr`: `IP:PORT`, and for loopback
    /// also `localhost:PORT` (what a user types).
    pub fn for_addr(addr: SocketAddr) -> Self {
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            hosts.push(format!("localhost:{}", addr.port()));
        }
        Origins { hosts }
    }

    /// Checks a request's Host, Origin and Sec-Fetch-Site headers.
    /// `changes`: the method is not GET or HEAD (an Origin is then required).
    pub fn check(
        &self,
        changes: bool,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), Refusal> {
        let host = host.map(str::trim).ok_or(Refusal::ForeignHost)?;
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(Refusal::ForeignHost);
        }
        match origin {
            Some(origin) => {
                let same = origin
                    .strip_prefix("http://")
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
                if !same {
                    return Err(Refusal::ForeignOrigin);
                }
            }
            None if changes => return Err(Refusal::NoOrigin),
            None => {}
        }
        // "none": typed or opened from outside the browser (the login URL).
        match fetch_site {
            None | Some("same-origin") | Some("none") => Ok(()),
            Some(_) => Err(Refusal::ForeignOrigin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        Origins::for_addr("127.0.0.1:2276".parse().expect("addr"))
    }

    #[test]
    fn only_this_server_s_host_is_answered() {
        let o = origins();
        assert_eq!(o.check(false, Some("127.0.0.1:2276"), None, None), Ok(()));
        assert_eq!(o.check(false, Some("LOCALHOST:2276"), None, None), Ok(()));
        for host in [
            None,
            Some("evil.example:2276"),
            Some("127.0.0.1:80"),
            Some("127.0.0.1"),
            Some("127.0.0.1:2276.evil.example"),
        ] {
            assert_eq!(
                o.check(false, host, None, None),
                Err(Refusal::ForeignHost),
                "{host:?}"
            );
        }
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let o = origins();
        let host = Some("127.0.0.1:2276");
        assert_eq!(
            o.check(
                true,
                host,
                Some("http://127.0.0.1:2276"),
                Some("same-origin")
            ),
            Ok(())
        );
        assert_eq!(o.check(true, host, None, None), Err(Refusal::NoOrigin));
        for origin in [
            "http://evil.example",
            "https://127.0.0.1:2276",
            "http://127.0.0.1:2277",
            "null",
        ] {
            assert_eq!(
                o.check(false, host, Some(origin), None),
                Err(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
        assert_eq!(
            o.check(false, host, None, Some("cross-site")),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(o.check(false, host, None, Some("none")), Ok(()));
    }
}
