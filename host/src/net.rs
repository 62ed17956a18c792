//! Client addresses and networks, as nosd keys and trusts them: [`Cidr`] (the `trust_proxy`
//! networks), [`canonical_ip`] (an IPv4-mapped IPv6 address is its IPv4 address), the flood and
//! binding keys ([`client_key`], [`network_prefix`]) and the one forwarding header nosd reads
//! ([`ForwardingHeader`]).
//!
//! A leaf: this module imports nothing of the crate, does no IO and knows no HTTP beyond a
//! header's name.

use std::net::IpAddr;

use serde::Deserialize;

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses become IPv4, so one client has one key.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    /// `cidr = ip "/" prefix_len | ip`
    fn try_from(text: String) -> Result<Cidr, String> {
        let (ip_text, prefix_text) = match text.split_once('/') {
            Some((ip_text, prefix_text)) => (ip_text, Some(prefix_text)),
            None => (text.as_str(), None),
        };
        let network: IpAddr = ip_text
            .parse()
            .map_err(|_| format!("`{text}` is not an IP network"))?;
        let network = canonical_ip(network);
        let max_len = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_text {
            None => max_len,
            Some(prefix_text) => prefix_text
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max_len)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length"))?,
        };
        Ok(Cidr {
            network,
            prefix_len,
        })
    }
}

/// The flood-control and counter key of a client: the IPv4 address, or the IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(ipv6_slash_64(v6)),
        v4 => v4,
    }
}

/// The /24 (IPv4) or /64 (IPv6) network of an address (the session's `ip_binding = "prefix"`).
pub fn network_prefix(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6(ipv6_slash_64(v6)),
    }
}

fn ipv6_slash_64(v6: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
    (u128::from(v6) & !((1u128 << 64) - 1)).into()
}

/// The forwarding header read from trusted proxies (`http.client_ip_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1;proto=https`.
    Forwarded,
}

impl ForwardingHeader {
    /// The header's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            ForwardingHeader::XForwardedFor => "x-forwarded-for",
            ForwardingHeader::Forwarded => "forwarded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let cidr = Cidr::try_from("10.1.0.0/16".to_string()).unwrap();
        assert!(cidr.contains("10.1.200.3".parse().unwrap()));
        assert!(cidr.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(!cidr.contains("10.2.0.1".parse().unwrap()));
        let all = Cidr::try_from("0.0.0.0/0".to_string()).unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn keys() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_key(ip("2001:db8::1:2")), ip("2001:db8::"));
        assert_eq!(network_prefix(ip("10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(network_prefix(ip("2001:db8::1:2")), ip("2001:db8::"));
    }
}
