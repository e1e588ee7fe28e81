//! Who sent a request: the address the host saw, or the one a trusted proxy forwarded.

use std::net::{IpAddr, SocketAddr};

/// The network address of the client that sent a request, as a request extension.
///
/// The host inserts it: the native server (`native::serve`) from the TCP
/// connection's peer; the Cloudflare Worker from the `CF-Connecting-IP` header, which Cloudflare
/// sets on every request it forwards (a client cannot choose it); an application that mounts
/// the gateway itself (`native::handle`, axum's `ConnectInfo`) inserts it before calling
/// [`App::handle`](crate::App::handle). The admin login throttle counts failures per address;
/// a request without one counts under a single shared "unknown" address.
///
/// With `TRUST_FORWARDED_HEADERS`, the first address of `X-Forwarded-For` is used instead
/// (only behind a proxy that sets that header, as any client can send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// The client's address: `X-Forwarded-For`'s first entry when `trust_forwarded` and present
/// and valid, else the host's [`ClientAddr`], else `None`.
pub(crate) fn client_ip(
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
    trust_forwarded: bool,
) -> Option<IpAddr> {
    let forwarded = || {
        let first = headers
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .split(',')
            .next()?
            .trim();
        // Proxies write a bare address; some add a port (`1.2.3.4:5`, `[::1]:5`).
        first
            .parse::<IpAddr>()
            .ok()
            .or_else(|| first.parse::<SocketAddr>().ok().map(|s| s.ip()))
    };
    trust_forwarded
        .then(forwarded)
        .flatten()
        .or_else(|| extensions.get::<ClientAddr>().map(|c| c.0))
}

/// The bucket an address counts under: an IPv4 address itself (IPv4-mapped IPv6 too), an
/// IPv6 address's /64 (one subscriber gets a whole /64, so single addresses would not hold
/// anyone back), `unknown` without an address.
pub(crate) fn bucket(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_ip(p: &http::request::Parts, trust_forwarded: bool) -> Option<IpAddr> {
        super::client_ip(&p.headers, &p.extensions, trust_forwarded)
    }

    fn parts(xff: Option<&str>, peer: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().uri("/api/login");
        if let Some(x) = xff {
            b = b.header("x-forwarded-for", x);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        if let Some(p) = peer {
            parts.extensions.insert(ClientAddr(p.parse().unwrap()));
        }
        parts
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted() {
        let p = parts(Some("203.0.113.9, 10.0.0.1"), Some("127.0.0.1"));
        assert_eq!(client_ip(&p, false), ip("127.0.0.1"));
        assert_eq!(client_ip(&p, true), ip("203.0.113.9"));
        assert_eq!(
            client_ip(&parts(Some("[2001:db8::1]:443"), None), true),
            ip("2001:db8::1")
        );
        // Garbage or nothing forwarded: the peer, else none.
        assert_eq!(
            client_ip(&parts(Some("nonsense"), Some("10.1.1.1")), true),
            ip("10.1.1.1")
        );
        assert_eq!(client_ip(&parts(None, None), true), None);
    }

    #[test]
    fn buckets() {
        assert_eq!(bucket(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(bucket(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(bucket(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(
            bucket(ip("2001:db8:1:2:ffff::1")),
            bucket(ip("2001:db8:1:2::9"))
        );
        assert_eq!(bucket(None), "unknown");
    }
}
