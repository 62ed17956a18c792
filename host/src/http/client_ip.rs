//! Who is the client: the socket peer, or — when the peer is a trusted proxy — the right-most
//! hop of the configured forwarding header that is not itself a trusted proxy.
//!
//! * From a peer outside `trust_proxy`, any forwarding header (`X-Forwarded-For`, `Forwarded`,
//!   `X-Real-IP`) is refused (400), not ignored, so a misconfigured proxy is noticed instead of
//!   merging all clients into one bucket.
//! * From a trusted peer exactly **one** header is read, the one named by
//!   `http.client_ip_header` (`x-forwarded-for`, the default, or `forwarded`); the other is
//!   ignored. There is no "whichever is present" precedence on purpose: a proxy passes the
//!   headers it does not manage through from the client unchanged, so reading the other one
//!   would let a client pick its own address.
//! * Hops are walked right to left (the right-most was written by the peer), skipping trusted
//!   proxies; the first other hop is the client. If every hop is a trusted proxy, the left-most
//!   is the client. Hops left of the client were written by the client itself and are never
//!   looked at.
//! * If the client hop is not an IP address (`unknown`, an obfuscated `_name`: the proxy's
//!   explicit "I won't say"), the client is the peer.
//! * A header that cannot be split into hops (longer than [`MAX_HEADER_BYTES`], more than
//!   [`MAX_HOPS`] hops, not visible ASCII, a `Forwarded` syntax error) refuses the request (400).
//!   Falling back to the peer instead would let any client behind the proxy charge its failed
//!   logins to the proxy's own address, and so lock out everyone behind it; a refusal costs
//!   only the client who forged the header.
//!
//! Pure: no IO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::HeaderMap;

use crate::net::{Cidr, ForwardingHeader, canonical_ip};

/// Most hops read from a forwarding header; more make it malformed.
pub const MAX_HOPS: usize = 20;
/// Most bytes of a forwarding header (all its lines together); more make it malformed.
pub const MAX_HEADER_BYTES: usize = 4096;

/// Why a request's forwarding headers refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRejection {
    /// Forwarding headers from a peer that is not a trusted proxy.
    UntrustedPeer,
    /// The configured header from a trusted proxy cannot be split into hops.
    Malformed,
}

/// The resolved client address, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// One hop of a forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Ip(IpAddr),
    /// `unknown`, an obfuscated identifier, a missing `for=`, or text that is no address.
    NotAnIp,
}

/// The header could not be split into hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trust_proxy: &[Cidr],
    header: ForwardingHeader,
) -> Result<IpAddr, ProxyRejection> {
    let peer = canonical_ip(peer);
    let has_forwarding = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    let trusted = |ip: IpAddr| trust_proxy.iter().any(|cidr| cidr.contains(ip));
    if !trusted(peer) {
        return if has_forwarding {
            Err(ProxyRejection::UntrustedPeer)
        } else {
            Ok(peer)
        };
    }
    let hops = hops(headers, header).map_err(|Malformed| ProxyRejection::Malformed)?;
    let Some(leftmost) = hops.first().copied() else {
        return Ok(peer);
    };
    let client = hops
        .iter()
        .rev()
        .copied()
        .find(|hop| !matches!(hop, Hop::Ip(ip) if trusted(*ip)))
        .unwrap_or(leftmost);
    Ok(match client {
        Hop::Ip(ip) => ip,
        Hop::NotAnIp => peer,
    })
}

/// The hops of `header`, all its lines joined in order, left (client) to right (peer).
pub fn hops(headers: &HeaderMap, header: ForwardingHeader) -> Result<Vec<Hop>, Malformed> {
    let mut joined = String::new();
    for value in headers.get_all(header.name()) {
        let text = value.to_str().map_err(|_| Malformed)?;
        if !joined.is_empty() {
            joined.push(',');
        }
        if joined.len() + text.len() > MAX_HEADER_BYTES {
            return Err(Malformed);
        }
        joined.push_str(text);
    }
    if joined.is_empty() {
        return Ok(Vec::new());
    }
    let hops = match header {
        ForwardingHeader::XForwardedFor => x_forwarded_for(&joined)?,
        ForwardingHeader::Forwarded => forwarded(&joined)?,
    };
    if hops.len() > MAX_HOPS {
        return Err(Malformed);
    }
    Ok(hops)
}

/// `X-Forwarded-For = 1#( OWS address OWS )`; an entry that is no address is a [`Hop::NotAnIp`].
pub fn x_forwarded_for(text: &str) -> Result<Vec<Hop>, Malformed> {
    if text.len() > MAX_HEADER_BYTES || !text.bytes().all(is_field_byte) {
        return Err(Malformed);
    }
    let mut hops = Vec::new();
    for entry in text.split(',') {
        if hops.len() == MAX_HOPS {
            return Err(Malformed);
        }
        hops.push(match entry.trim_matches(is_ows).parse::<IpAddr>() {
            Ok(ip) => Hop::Ip(canonical_ip(ip)),
            Err(_) => Hop::NotAnIp,
        });
    }
    Ok(hops)
}

/// RFC 7239 section 4, one hop per `forwarded-element`:
///
/// ```text
/// Forwarded         = 1#forwarded-element
/// forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
/// forwarded-pair    = token "=" value
/// value             = token / quoted-string
/// ```
///
/// Empty list elements are skipped (RFC 7230 section 7); whitespace is allowed around `,` and
/// `;` but not around `=`. Parameter names are case-insensitive and may occur once per element.
/// Only `for` is interpreted (see [`node`]); an element without it is a [`Hop::NotAnIp`].
pub fn forwarded(text: &str) -> Result<Vec<Hop>, Malformed> {
    if text.len() > MAX_HEADER_BYTES || !text.bytes().all(is_field_byte) {
        return Err(Malformed);
    }
    let mut hops = Vec::new();
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    loop {
        cursor.skip_ows();
        if cursor.at_end() {
            break;
        }
        if cursor.eat(b',') {
            continue;
        }
        if hops.len() == MAX_HOPS {
            return Err(Malformed);
        }
        hops.push(element(&mut cursor)?);
        cursor.skip_ows();
        if !cursor.at_end() && !cursor.eat(b',') {
            return Err(Malformed);
        }
    }
    Ok(hops)
}

/// One `forwarded-element`, up to (not including) the `,` that ends it.
fn element(cursor: &mut Cursor<'_>) -> Result<Hop, Malformed> {
    let mut seen: Vec<String> = Vec::new();
    let mut hop = Hop::NotAnIp;
    loop {
        cursor.skip_ows();
        if cursor.at_end() || cursor.peek() == Some(b',') {
            return Ok(hop);
        }
        if cursor.eat(b';') {
            continue;
        }
        let name = cursor.token().ok_or(Malformed)?.to_ascii_lowercase();
        if !cursor.eat(b'=') {
            return Err(Malformed);
        }
        let value = match cursor.peek() {
            Some(b'"') => cursor.quoted_string()?,
            _ => cursor.token().ok_or(Malformed)?.to_owned(),
        };
        if seen.contains(&name) {
            return Err(Malformed);
        }
        if name == "for" {
            hop = node(&value);
        }
        seen.push(name);
        cursor.skip_ows();
        match cursor.peek() {
            None | Some(b',') => return Ok(hop),
            Some(b';') => cursor.at += 1,
            Some(_) => return Err(Malformed),
        }
    }
}

/// RFC 7239 section 6: `node = nodename [ ":" node-port ]` with `nodename = IPv4address /
/// "[" IPv6address "]" / "unknown" / obfnode`. Only an address is a [`Hop::Ip`].
pub fn node(value: &str) -> Hop {
    let (name, port) = match value.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) => match inside.parse::<Ipv6Addr>() {
                Ok(ip) if after.is_empty() || after.strip_prefix(':').is_some_and(is_port) => {
                    return Hop::Ip(canonical_ip(IpAddr::V6(ip)));
                }
                _ => return Hop::NotAnIp,
            },
            None => return Hop::NotAnIp,
        },
        None => match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        },
    };
    if port.is_some_and(|port| !is_port(port)) {
        return Hop::NotAnIp;
    }
    match name.parse::<Ipv4Addr>() {
        Ok(ip) => Hop::Ip(IpAddr::V4(ip)),
        // `unknown`, `_obfuscated`, a name: not an address.
        Err(_) => Hop::NotAnIp,
    }
}

/// `node-port = port / obfport`, `port = 1*5DIGIT`, `obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")`.
fn is_port(text: &str) -> bool {
    let digits = (1..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    digits || obfuscated
}

/// Visible ASCII, space and tab: what a field value may hold here (no obs-text).
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b)
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.at += 1;
        }
        matched
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// `token = 1*tchar`.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        // Only ASCII tchars were consumed, so this is a char boundary.
        (self.at > start)
            .then(|| std::str::from_utf8(&self.bytes[start..self.at]).ok())
            .flatten()
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, unescaped.
    fn quoted_string(&mut self) -> Result<String, Malformed> {
        if !self.eat(b'"') {
            return Err(Malformed);
        }
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(Malformed),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.peek().ok_or(Malformed)?;
                    out.push(char::from(escaped));
                    self.at += 1;
                }
                Some(byte) => {
                    out.push(char::from(byte));
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        peer: &str,
        header: ForwardingHeader,
        values: &[&str],
        trust: &[&str],
        expected: Result<&str, ProxyRejection>,
    ) {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header.name(), value.parse().unwrap());
        }
        let trust: Vec<Cidr> = trust
            .iter()
            .map(|text| Cidr::try_from(text.to_string()).unwrap())
            .collect();
        let got = resolve(peer.parse().unwrap(), &headers, &trust, header);
        assert_eq!(
            got,
            expected.map(|ip| ip.parse().unwrap()),
            "{peer} {header:?} {values:?}"
        );
    }

    use ForwardingHeader::{Forwarded, XForwardedFor};

    #[test]
    fn x_forwarded_for_table() {
        let proxy = &["127.0.0.1"][..];
        check("192.0.2.1", XForwardedFor, &[], &[], Ok("192.0.2.1"));
        check(
            "192.0.2.1",
            XForwardedFor,
            &["1.2.3.4"],
            &[],
            Err(ProxyRejection::UntrustedPeer),
        );
        check(
            "127.0.0.1",
            XForwardedFor,
            &["6.6.6.6, 203.0.113.7"],
            proxy,
            Ok("203.0.113.7"),
        );
        check(
            "127.0.0.1",
            XForwardedFor,
            &["6.6.6.6, 203.0.113.7, 10.0.0.2"],
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("203.0.113.7"),
        );
        check(
            "127.0.0.1",
            XForwardedFor,
            &["10.0.0.3, 10.0.0.2"],
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("10.0.0.3"),
        );
        // Two header lines are one list, in order.
        check(
            "127.0.0.1",
            XForwardedFor,
            &["6.6.6.6", "203.0.113.8"],
            proxy,
            Ok("203.0.113.8"),
        );
        // Garbage the client wrote left of the client hop is never looked at...
        check(
            "127.0.0.1",
            XForwardedFor,
            &["not-an-ip, 203.0.113.7"],
            proxy,
            Ok("203.0.113.7"),
        );
        // ...but a client hop that is no address is never trusted: the peer it is.
        check(
            "127.0.0.1",
            XForwardedFor,
            &["not-an-ip"],
            proxy,
            Ok("127.0.0.1"),
        );
        check("127.0.0.1", XForwardedFor, &[""], proxy, Ok("127.0.0.1"));
        check("127.0.0.1", XForwardedFor, &[], proxy, Ok("127.0.0.1"));
        check("::ffff:192.0.2.1", XForwardedFor, &[], &[], Ok("192.0.2.1"));
        check(
            "127.0.0.1",
            XForwardedFor,
            &["::ffff:203.0.113.9"],
            proxy,
            Ok("203.0.113.9"),
        );
        // The header not configured is ignored from a trusted peer.
        let mut headers = HeaderMap::new();
        headers.insert("forwarded", "for=6.6.6.6".parse().unwrap());
        headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        let trust = [Cidr::try_from("127.0.0.1".to_string()).unwrap()];
        let peer = "127.0.0.1".parse().unwrap();
        assert_eq!(
            resolve(peer, &headers, &trust, XForwardedFor),
            Ok("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            resolve(peer, &headers, &trust, Forwarded),
            Ok("6.6.6.6".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_table() {
        let proxy = &["127.0.0.1"][..];
        let cases: &[(&[&str], &str)] = &[
            (&["for=203.0.113.7"], "203.0.113.7"),
            (&["For=203.0.113.7;proto=https;by=10.0.0.1"], "203.0.113.7"),
            (&["for=\"203.0.113.7:4711\""], "203.0.113.7"),
            (&["for=\"[2001:db8:cafe::17]\""], "2001:db8:cafe::17"),
            (&["for=\"[2001:db8:cafe::17]:4711\""], "2001:db8:cafe::17"),
            (&["for=\"[2001:db8:cafe::17]:_port\""], "2001:db8:cafe::17"),
            (&["for=\"[::ffff:203.0.113.9]\""], "203.0.113.9"),
            // Right to left: the proxy appended the last element.
            (&["for=6.6.6.6, for=198.51.100.17"], "198.51.100.17"),
            (&["for=6.6.6.6", "for=198.51.100.17"], "198.51.100.17"),
            (&["for=6.6.6.6,,  ,for=198.51.100.17 ,"], "198.51.100.17"),
            (
                &["for=6.6.6.6 ; proto=http , for=198.51.100.17"],
                "198.51.100.17",
            ),
            // Garbage semantics left of the client are not looked at.
            (&["for=_hidden, for=198.51.100.17"], "198.51.100.17"),
            (&["for=\"[not-v6]\", for=198.51.100.17"], "198.51.100.17"),
            // Escapes inside quoted strings are undone.
            (&["for=\"203.0.113.\\7\""], "203.0.113.7"),
            (
                &["proto=\"a,b;c=\\\"d\", for=198.51.100.17"],
                "198.51.100.17",
            ),
            // Not an address where the client should be: the peer.
            (&["for=unknown"], "127.0.0.1"),
            (&["for=UNKNOWN"], "127.0.0.1"),
            (&["for=_gazonk"], "127.0.0.1"),
            (&["for=\"_gazonk:_p\""], "127.0.0.1"),
            (&["proto=https"], "127.0.0.1"),
            (&["for=\"[2001:db8::1]:99999x\""], "127.0.0.1"),
            (&["for=\"2001:db8::1\""], "127.0.0.1"),
            (&["for=198.51.100.17, for=unknown"], "127.0.0.1"),
            (&["for=\"203.0.113.7:\""], "127.0.0.1"),
            (&["for=\"203.0.113.7:123456\""], "127.0.0.1"),
            (&["for=0203.0.113.7"], "127.0.0.1"),
            (&["for=example.com"], "127.0.0.1"),
        ];
        for (values, expected) in cases {
            check("127.0.0.1", Forwarded, values, proxy, Ok(expected));
        }
        // Malformed: refused.
        let malformed: &[&[&str]] = &[
            &["for=[2001:db8::1]"],
            &["for=2001:db8::1"],
            &["for=\"203.0.113.7"],
            &["for=\"\"203.0.113.7\"\""],
            &["for=\"a\"\"b\", for=198.51.100.17"],
            &["for=\"a\\\", for=198.51.100.17"],
            &["for =198.51.100.17"],
            &["for= 198.51.100.17"],
            &["for"],
            &["=198.51.100.17"],
            &["for=198.51.100.17;for=6.6.6.6"],
            &["for=198.51.100.17;FOR=6.6.6.6"],
            &["for=1.2.3.4 for=198.51.100.17"],
            &["for=1.2.3.4, \"for=198.51.100.17\""],
        ];
        for values in malformed {
            check(
                "127.0.0.1",
                Forwarded,
                values,
                proxy,
                Err(ProxyRejection::Malformed),
            );
        }
        // Trusted proxies in the chain are skipped, exactly as for X-Forwarded-For.
        check(
            "127.0.0.1",
            Forwarded,
            &["for=6.6.6.6, for=203.0.113.7, for=\"10.0.0.2:80\""],
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("203.0.113.7"),
        );
        check(
            "127.0.0.1",
            Forwarded,
            &["for=10.0.0.3, for=10.0.0.2"],
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("10.0.0.3"),
        );
        check(
            "192.0.2.1",
            Forwarded,
            &["for=203.0.113.7"],
            &[],
            Err(ProxyRejection::UntrustedPeer),
        );
    }

    #[test]
    fn hostile_sizes_are_refused() {
        let proxy = &["127.0.0.1"][..];
        let many_xff = vec!["1.1.1.1"; MAX_HOPS + 1].join(",");
        let many_fwd = vec!["for=1.1.1.1"; MAX_HOPS + 1].join(",");
        let exactly_max = vec!["for=1.1.1.1"; MAX_HOPS].join(",");
        let huge = format!("for=\"{}\", for=198.51.100.17", "a".repeat(64 << 10));
        let nested = format!("{}for=198.51.100.17", "for=\"\\\"".repeat(2000));
        check(
            "127.0.0.1",
            XForwardedFor,
            &[&many_xff],
            proxy,
            Err(ProxyRejection::Malformed),
        );
        check(
            "127.0.0.1",
            Forwarded,
            &[&many_fwd],
            proxy,
            Err(ProxyRejection::Malformed),
        );
        check(
            "127.0.0.1",
            Forwarded,
            &[&exactly_max],
            proxy,
            Ok("1.1.1.1"),
        );
        check(
            "127.0.0.1",
            Forwarded,
            &[&huge],
            proxy,
            Err(ProxyRejection::Malformed),
        );
        check(
            "127.0.0.1",
            Forwarded,
            &[&nested],
            proxy,
            Err(ProxyRejection::Malformed),
        );
        // Many lines that are each small but together too long.
        let line = format!("for=\"{}\"", "b".repeat(1000));
        let lines = [line.as_str(); 5];
        check(
            "127.0.0.1",
            Forwarded,
            &lines,
            proxy,
            Err(ProxyRejection::Malformed),
        );
        // Non-ASCII bytes (obs-text) in either header.
        for (header, bytes) in [
            (XForwardedFor, &b"6.6.6.6, 1.2.3.4\xff"[..]),
            (Forwarded, b"for=6.6.6.6, for=1.2.3.4\xff"),
            (Forwarded, b"for=6.6.6.6, for=\"1.2.3.4\xa0\""),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                header.name(),
                axum::http::HeaderValue::from_bytes(bytes).unwrap(),
            );
            let trust = [Cidr::try_from("127.0.0.1".to_string()).unwrap()];
            assert_eq!(
                resolve("127.0.0.1".parse().unwrap(), &headers, &trust, header),
                Err(ProxyRejection::Malformed)
            );
        }
    }

    proptest::proptest! {
        /// Any printable input: no panic, and never more than MAX_HOPS hops.
        #[test]
        fn parsers_never_panic(text in "[ -~\t]{0,300}") {
            if let Ok(hops) = forwarded(&text) {
                proptest::prop_assert!(hops.len() <= MAX_HOPS);
            }
            if let Ok(hops) = x_forwarded_for(&text) {
                proptest::prop_assert!(hops.len() <= MAX_HOPS);
            }
            let _ = node(&text);
        }
    }
}
