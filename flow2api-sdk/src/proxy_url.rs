//! Proxy addresses as operators write them (`docs/egress.md`, the original's §8.4
//! formats), normalised to one URL form, and masked for display: a proxy URL may carry
//! credentials, so it is a secret everywhere but in the request that uses it.
//!
//! Accepted, with what each becomes:
//!
//! | input | canonical |
//! |---|---|
//! | `http://user:pass@host:port`, `https://…`, `socks5://…`, `socks5h://…` | kept |
//! | `scheme://host:port` | kept |
//! | `scheme://host:port:user:pass` | `scheme://user:pass@host:port` |
//! | `st5 host:port:user:pass` | `socks5://user:pass@host:port` |
//! | `st5 user:pass@host:port` | `socks5://user:pass@host:port` |
//! | `user:pass@host:port` | `http://user:pass@host:port` |
//! | `host:port` | `http://host:port` |
//! | `host:port:user:pass` (the password may contain `:`) | `http://user:pass@host:port` |
//! | empty | no proxy |
//!
//! Anything else is a [`ProxyFormatError`] that lists these forms.

use std::fmt;

/// The schemes a proxy URL may have.
pub const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];

/// The accepted forms, as the error and the settings table show them.
pub const ACCEPTED_FORMS: &str = "http://user:pass@host:port, https://…, socks5://user:pass@host:port, socks5h://…, scheme://host:port:user:pass, host:port, host:port:user:pass, user:pass@host:port, st5 host:port:user:pass or st5 user:pass@host:port";

/// A proxy address in none of the accepted forms. Its text never repeats the input (which
/// may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProxyFormatError {
    /// What is wrong, without the input.
    pub reason: &'static str,
}

impl fmt::Display for ProxyFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid proxy address ({}); accepted: {ACCEPTED_FORMS}",
            self.reason
        )
    }
}

fn bad(reason: &'static str) -> ProxyFormatError {
    ProxyFormatError { reason }
}

/// Normalises `raw` to a canonical proxy URL (`scheme://[user:pass@]host:port`, credentials
/// percent-encoded); `Ok(None)` for an empty value (no proxy).
///
/// # Errors
/// [`ProxyFormatError`] for anything outside the accepted forms.
pub fn normalize(raw: &str) -> Result<Option<String>, ProxyFormatError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().any(char::is_control) {
        return Err(bad("control characters"));
    }
    // `st5 …`: SOCKS5 in either of the two shorthand forms.
    if let Some(rest) = raw
        .strip_prefix("st5 ")
        .or_else(|| raw.strip_prefix("ST5 "))
    {
        return bare("socks5", rest.trim()).map(Some);
    }
    if let Some((scheme, rest)) = raw.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if !PROXY_SCHEMES.contains(&scheme.as_str()) {
            return Err(bad("the scheme must be http, https, socks5 or socks5h"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path, query or fragment"));
        }
        return bare(&scheme, rest).map(Some);
    }
    if raw.contains(char::is_whitespace) {
        return Err(bad("unexpected spaces"));
    }
    bare("http", raw).map(Some)
}

/// `user:pass@host:port`, `host:port:user:pass` or `host:port` under `scheme`.
fn bare(scheme: &str, rest: &str) -> Result<String, ProxyFormatError> {
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(bad("no host:port"));
    }
    if let Some((creds, hostport)) = rest.rsplit_once('@') {
        match host_port(hostport) {
            Ok((host, port)) => {
                let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
                return build(scheme, host, port, Some((user, pass)));
            }
            // `host:port:user:pass` whose password holds an `@`.
            Err(e) if rest.starts_with('[') || rest.split(':').count() < 4 => return Err(e),
            Err(_) => {}
        }
    }
    // `[v6]:port` has no credentials form of its own.
    if rest.starts_with('[') {
        let (host, port) = host_port(rest)?;
        return build(scheme, host, port, None);
    }
    let mut parts = rest.splitn(3, ':');
    let host = parts.next().unwrap_or_default();
    let port = parts.next().ok_or(bad("no port"))?;
    let port = parse_port(port)?;
    match parts.next() {
        None => build(scheme, host, port, None),
        Some(creds) => {
            let (user, pass) = creds
                .split_once(':')
                .ok_or(bad("host:port:user:pass needs both a user and a password"))?;
            build(scheme, host, port, Some((user, pass)))
        }
    }
}

fn host_port(hostport: &str) -> Result<(&str, u16), ProxyFormatError> {
    let (host, port) = hostport.rsplit_once(':').ok_or(bad("no port"))?;
    Ok((host, parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, ProxyFormatError> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or(bad("the port must be a number from 1 to 65535"))
}

fn build(
    scheme: &str,
    host: &str,
    port: u16,
    creds: Option<(&str, &str)>,
) -> Result<String, ProxyFormatError> {
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let mut url = url::Url::parse(&format!("{scheme}://{host}:{port}"))
        .map_err(|_| bad("the host is not a valid name or address"))?;
    // `url` drops a scheme's default port (80 for http); the output names it always.
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if let Some((user, pass)) = creds {
        if user.is_empty() {
            return Err(bad("an empty user name"));
        }
        url.set_username(user)
            .map_err(|()| bad("credentials are not allowed here"))?;
        if !pass.is_empty() {
            url.set_password(Some(pass))
                .map_err(|()| bad("credentials are not allowed here"))?;
        }
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let auth = match (url.username(), url.password()) {
        ("", _) => String::new(),
        (u, None) => format!("{u}@"),
        (u, Some(p)) => format!("{u}:{p}@"),
    };
    Ok(format!("{scheme}://{auth}{host}:{port}"))
}

/// `url` (a canonical proxy URL) with its credentials masked, for lists and logs:
/// `http://***:***@host:port`. Anything unparsable masks whole.
pub fn mask(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.host_str().is_some() => {
            let creds = if u.username().is_empty() && u.password().is_none() {
                ""
            } else {
                "***:***@"
            };
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{creds}{}{port}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        _ => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str) -> String {
        normalize(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .unwrap_or_else(|| panic!("{raw}: none"))
    }

    #[test]
    fn every_accepted_form_is_normalised() {
        // Kept.
        assert_eq!(
            n("http://user:pass@1.2.3.4:8080"),
            "http://user:pass@1.2.3.4:8080"
        );
        assert_eq!(
            n("https://u:p@proxy.example:443"),
            "https://u:p@proxy.example:443"
        );
        assert_eq!(
            n("socks5://u:p@h.example:1080"),
            "socks5://u:p@h.example:1080"
        );
        assert_eq!(
            n("socks5h://u:p@h.example:1080"),
            "socks5h://u:p@h.example:1080"
        );
        assert_eq!(n("http://1.2.3.4:80"), "http://1.2.3.4:80");
        assert_eq!(n("socks5://127.0.0.1:1080/"), "socks5://127.0.0.1:1080");
        assert_eq!(n("HTTP://h.example:3128"), "http://h.example:3128");
        // scheme://host:port:user:pass
        assert_eq!(
            n("http://h.example:3128:user:pass"),
            "http://user:pass@h.example:3128"
        );
        assert_eq!(
            n("socks5://h.example:1080:u:p:q"),
            "socks5://u:p%3Aq@h.example:1080"
        );
        // st5 forms.
        assert_eq!(
            n("st5 1.2.3.4:1080:user:pass"),
            "socks5://user:pass@1.2.3.4:1080"
        );
        assert_eq!(
            n("st5 user:pass@1.2.3.4:1080"),
            "socks5://user:pass@1.2.3.4:1080"
        );
        // Bare forms are HTTP.
        assert_eq!(n("user:pass@1.2.3.4:8080"), "http://user:pass@1.2.3.4:8080");
        assert_eq!(n("1.2.3.4:8080"), "http://1.2.3.4:8080");
        assert_eq!(
            n("proxy.example:8080:user:pa:ss"),
            "http://user:pa%3Ass@proxy.example:8080"
        );
        assert_eq!(n("[::1]:8080"), "http://[::1]:8080");
        // Credentials are percent-encoded once.
        assert_eq!(n("u@x:p/w@h.example:1"), "http://u%40x:p%2Fw@h.example:1");
        // Empty: no proxy.
        assert_eq!(normalize("  "), Ok(None));
    }

    #[test]
    fn anything_else_is_a_clear_error_that_does_not_repeat_the_input() {
        for raw in [
            "ftp://h:21",
            "http://h.example",
            "h.example",
            "h.example:port",
            "h.example:0",
            "h.example:70000",
            "http://h.example:80/path",
            "h.example:8080:onlyuser",
            "st5 nothing",
            "two words:80",
            ":8080",
            "http://:pass@h:1",
        ] {
            let e = normalize(raw).expect_err(raw);
            let text = e.to_string();
            assert!(
                text.contains("accepted: http://user:pass@host:port"),
                "{text}"
            );
            assert!(!text.contains("secret-pass"), "{text}");
        }
        let e = normalize("h.example:8080:onlyuser-secret-pass").expect_err("no password");
        assert!(!e.to_string().contains("secret-pass"));
    }

    #[test]
    fn masking_hides_credentials_and_keeps_the_host() {
        assert_eq!(
            mask("http://user:pass@h.example:8080"),
            "http://***:***@h.example:8080"
        );
        assert_eq!(mask("socks5://h.example:1080"), "socks5://h.example:1080");
        assert_eq!(mask("not a url"), "***");
    }
}
