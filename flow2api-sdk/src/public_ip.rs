//! Which addresses count as the public internet: the only ones a URL given by a client (an
//! image to fetch) may reach, so that a client cannot make the gateway call its own machine,
//! its network or a cloud metadata service (server-side request forgery).
//!
//! Everything that is not plainly global unicast is refused: loopback, private (RFC 1918),
//! link-local, carrier-grade NAT, unique-local, multicast, documentation, benchmarking and
//! reserved ranges, and every IPv6 form that carries an IPv4 address or is translated to one
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo), since the IPv4 address behind it may
//! be private.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when `ip` is a global unicast address a client-given URL may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// [`is_public`] for IPv4.
pub fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network", 0.0.0.0/8
        || a == 10
        || a == 127
        || (a == 100 && (b & 0xC0) == 64) // 100.64.0.0/10 carrier-grade NAT
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (b & 0xF0) == 16)
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b & 0xFE) == 18) // 198.18.0.0/15 benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

/// [`is_public`] for IPv6: global unicast (`2000::/3`) outside the special-purpose blocks in
/// it. Everything outside `2000::/3` (loopback, unspecified, IPv4-mapped and -compatible,
/// NAT64 `64:ff9b::/96`, unique-local, link-local, multicast…) is refused.
pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if s[0] & 0xE000 != 0x2000 {
        return false;
    }
    // 2001::/23 IETF assignments (Teredo among them), 2001:db8::/32 documentation.
    let refused = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x3fff && s[1] < 0x1000); // 3fff::/20 documentation
    !refused
}

/// True when `url`'s host may be fetched as far as its text tells: not a literal non-public
/// address, and not a name that always means this machine or a private zone (`localhost`,
/// `*.localhost`, `*.local`, `*.internal`, `*.home.arpa`). A name that passes must still have
/// every address it resolves to checked with [`is_public`] before connecting.
pub fn is_public_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public_v4(ip),
        Some(url::Host::Ipv6(ip)) => is_public_v6(ip),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            let private_zone = d == "localhost"
                || [".localhost", ".local", ".internal", ".home.arpa", ".lan"]
                    .iter()
                    .any(|zone| d.ends_with(zone));
            // `url` normalises decimal, octal and hex IPv4 forms; anything still numeric-looking
            // is refused rather than left to a resolver's interpretation.
            !private_zone
                && d.parse::<IpAddr>().map_or_else(
                    |_| !d.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
                    is_public,
                )
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_ranges() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.8.8.8",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must be refused");
        }
    }

    #[test]
    fn public_addresses() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.254",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(is_public(ip(s)), "{s} must be allowed");
        }
    }

    #[test]
    fn hosts_by_their_text() {
        for u in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://LOCALHOST./",
            "http://metadata.google.internal/",
            "http://printer.local/",
            "http://nas.home.arpa/",
        ] {
            let url = url::Url::parse(u).unwrap();
            assert!(!is_public_host(&url), "{u} must be refused");
        }
        for u in [
            "https://example.com/a.png",
            "http://8.8.8.8/",
            "https://cdn.example.org:8443/x",
        ] {
            assert!(is_public_host(&url::Url::parse(u).unwrap()), "{u}");
        }
    }
}
