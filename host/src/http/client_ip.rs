//! Who is the client: the socket peer, or the right-most untrusted `X-Forwarded-For` hop when
//! the peer is a trusted proxy.
//!
//! Forwarding headers (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) from a peer outside
//! `trust_proxy` are refused (400), not ignored, so a misconfigured proxy is noticed instead of
//! merging all clients into one bucket. From a trusted peer only `X-Forwarded-For` is read.
//! Pure: no IO.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::{Cidr, canonical_ip};

/// Most hops read from `X-Forwarded-For`.
pub const MAX_HOPS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRejection {
    UntrustedPeer,
    Malformed,
}

/// The resolved client address, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trust_proxy: &[Cidr],
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
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().map_err(|_| ProxyRejection::Malformed)?;
        for hop in text.split(',') {
            let ip: IpAddr = hop.trim().parse().map_err(|_| ProxyRejection::Malformed)?;
            hops.push(canonical_ip(ip));
            if hops.len() > MAX_HOPS {
                return Err(ProxyRejection::Malformed);
            }
        }
    }
    let Some(leftmost) = hops.first().copied() else {
        return Ok(peer);
    };
    Ok(hops
        .iter()
        .rev()
        .copied()
        .find(|hop| !trusted(*hop))
        .unwrap_or(leftmost))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        peer: &str,
        xff: Option<&str>,
        trust: &[&str],
        expected: Result<&str, ProxyRejection>,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(xff) = xff {
            headers.insert("x-forwarded-for", xff.parse().unwrap());
        }
        let trust: Vec<Cidr> = trust
            .iter()
            .map(|text| Cidr::try_from(text.to_string()).unwrap())
            .collect();
        let got = resolve(peer.parse().unwrap(), &headers, &trust);
        assert_eq!(
            got,
            expected.map(|ip| ip.parse().unwrap()),
            "{peer} {xff:?}"
        );
    }

    #[test]
    fn table() {
        check("192.0.2.1", None, &[], Ok("192.0.2.1"));
        check(
            "192.0.2.1",
            Some("1.2.3.4"),
            &[],
            Err(ProxyRejection::UntrustedPeer),
        );
        check(
            "127.0.0.1",
            Some("6.6.6.6, 203.0.113.7"),
            &["127.0.0.1"],
            Ok("203.0.113.7"),
        );
        check(
            "127.0.0.1",
            Some("6.6.6.6, 203.0.113.7, 10.0.0.2"),
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("203.0.113.7"),
        );
        check(
            "127.0.0.1",
            Some("10.0.0.3, 10.0.0.2"),
            &["127.0.0.1", "10.0.0.0/8"],
            Ok("10.0.0.3"),
        );
        check(
            "127.0.0.1",
            Some("not-an-ip"),
            &["127.0.0.1"],
            Err(ProxyRejection::Malformed),
        );
        check("127.0.0.1", None, &["127.0.0.1"], Ok("127.0.0.1"));
        check("::ffff:192.0.2.1", None, &[], Ok("192.0.2.1"));
    }

    #[test]
    fn too_many_hops() {
        let many = vec!["1.1.1.1"; 21].join(",");
        check(
            "127.0.0.1",
            Some(&many),
            &["127.0.0.1"],
            Err(ProxyRejection::Malformed),
        );
    }
}
