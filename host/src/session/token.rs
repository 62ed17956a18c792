//! Session tokens and the refresh-rotation rules: pure, no clock, no IO, no randomness.
//!
//! A session is a *family*: one access token and one refresh token at a time, both 256-bit
//! random values known to the server only by their SHA-256. Refreshing rotates both. A rotated
//! refresh token presented again within the grace window gets the same successor (concurrent
//! tabs, lost responses); presented later, it is reuse and the whole family is revoked.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;
use crate::config::IpBinding;

/// Token length in bytes (256 bits).
pub const TOKEN_LEN: usize = 32;
/// Retired refresh hashes remembered per family for reuse detection.
pub const MAX_RETIRED: usize = 64;

/// A secret token as sent to the client (64 lowercase hex chars).
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; TOKEN_LEN]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Token {
        Token(bytes)
    }

    /// Draws a token from the OS CSPRNG.
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Token(bytes))
    }

    /// `token = 64 * lowercase-hex-digit`
    pub fn parse(text: &str) -> Option<Token> {
        if text.len() != TOKEN_LEN * 2
            || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let mut bytes = [0u8; TOKEN_LEN];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Token(bytes))
    }

    pub fn encode(&self) -> String {
        hex::encode(self.0)
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0).into())
    }
}

/// The only form in which the server keeps a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TokenHash([u8; 32]);

impl From<TokenHash> for String {
    fn from(hash: TokenHash) -> String {
        hex::encode(hash.0)
    }
}

impl TryFrom<String> for TokenHash {
    type Error = String;
    fn try_from(text: String) -> Result<TokenHash, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(|err| err.to_string())?;
        Ok(TokenHash(bytes))
    }
}

/// SHA-256 of a User-Agent, for binding.
pub fn hash_user_agent(user_agent: &str) -> String {
    hex::encode(Sha256::digest(user_agent.as_bytes()))
}

/// One session family as stored (hashes only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub id: String,
    pub username: String,
    pub created_at: UnixSeconds,
    /// Creation order within the table, strictly increasing (whole seconds cannot order two
    /// logins of one second); 0 in files written before it existed.
    #[serde(default)]
    pub seq: u64,
    pub last_seen_at: UnixSeconds,
    /// The last login or re-authentication (the "sudo" window starts here).
    pub authenticated_at: UnixSeconds,
    pub user_agent_hash: String,
    /// A short label of the browser ("Chrome on Linux") for the sessions list; never used
    /// for a decision (the binding uses `user_agent_hash`).
    #[serde(default)]
    pub device: String,
    pub client_ip: IpAddr,
    pub access: TokenHash,
    pub refresh: TokenHash,
    pub csrf_hash: TokenHash,
    pub previous: Option<Rotation>,
    pub retired: Vec<TokenHash>,
}

/// The pair replaced by the last rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub access: TokenHash,
    pub refresh: TokenHash,
    pub rotated_at: UnixSeconds,
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRules {
    pub idle_seconds: u64,
    pub absolute_seconds: u64,
    pub grace_seconds: u64,
    pub ip_binding: IpBinding,
}

/// Why a presented token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Expired,
    UserAgentChanged,
    ClientIpChanged,
}

/// The verdict on a presented refresh token.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// The current refresh token: rotate.
    Rotate,
    /// The token rotated less than the grace window ago: hand out the same successor.
    GraceReplay,
    /// A rotated token outside the grace window: revoke the family.
    Reuse,
    Expired,
}

/// Whether the family is alive at `now`.
pub fn is_live(family: &Family, rules: &SessionRules, now: UnixSeconds) -> bool {
    now < family.created_at.saturating_add(rules.absolute_seconds)
        && now < family.last_seen_at.saturating_add(rules.idle_seconds)
}

/// Checks expiry and binding for a request carrying this family's access token.
pub fn check_access(
    family: &Family,
    rules: &SessionRules,
    user_agent_hash: &str,
    client_ip: IpAddr,
    now: UnixSeconds,
) -> Result<(), Rejection> {
    if !is_live(family, rules, now) {
        return Err(Rejection::Expired);
    }
    if family.user_agent_hash != user_agent_hash {
        return Err(Rejection::UserAgentChanged);
    }
    if !same_client(rules.ip_binding, family.client_ip, client_ip) {
        return Err(Rejection::ClientIpChanged);
    }
    Ok(())
}

/// Judges a presented refresh token that maps to this family.
pub fn judge_refresh(
    family: &Family,
    presented: &TokenHash,
    rules: &SessionRules,
    now: UnixSeconds,
) -> RefreshVerdict {
    if !is_live(family, rules, now) {
        return RefreshVerdict::Expired;
    }
    if family.refresh == *presented {
        return RefreshVerdict::Rotate;
    }
    match family.previous {
        Some(previous)
            if previous.refresh == *presented
                && now <= previous.rotated_at.saturating_add(rules.grace_seconds) =>
        {
            RefreshVerdict::GraceReplay
        }
        _ => RefreshVerdict::Reuse,
    }
}

/// The family after rotating to a new access/refresh pair.
pub fn rotate(family: &Family, access: TokenHash, refresh: TokenHash, now: UnixSeconds) -> Family {
    let mut next = family.clone();
    if let Some(previous) = family.previous {
        next.retired.push(previous.refresh);
        if next.retired.len() > MAX_RETIRED {
            next.retired.remove(0);
        }
    }
    next.previous = Some(Rotation {
        access: family.access,
        refresh: family.refresh,
        rotated_at: now,
    });
    next.access = access;
    next.refresh = refresh;
    next.last_seen_at = now;
    next
}

/// Whether two client addresses count as the same client under `binding`.
pub fn same_client(binding: IpBinding, bound: IpAddr, seen: IpAddr) -> bool {
    match binding {
        IpBinding::Off => true,
        IpBinding::Exact => bound == seen,
        IpBinding::Prefix => crate::net::network_prefix(bound) == crate::net::network_prefix(seen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: SessionRules = SessionRules {
        idle_seconds: 900,
        absolute_seconds: 8 * 3600,
        grace_seconds: 15,
        ip_binding: IpBinding::Prefix,
    };

    fn token(byte: u8) -> Token {
        Token::from_bytes([byte; 32])
    }

    fn family(now: UnixSeconds) -> Family {
        Family {
            seq: 0,
            id: "f1".into(),
            username: "admin".into(),
            created_at: now,
            last_seen_at: now,
            authenticated_at: now,
            user_agent_hash: hash_user_agent("ua"),
            device: String::new(),
            client_ip: "192.0.2.10".parse().unwrap(),
            access: token(1).hash(),
            refresh: token(2).hash(),
            csrf_hash: token(3).hash(),
            previous: None,
            retired: Vec::new(),
        }
    }

    #[test]
    fn token_grammar() {
        let text = token(0xab).encode();
        assert_eq!(Token::parse(&text), Some(token(0xab)));
        assert_eq!(Token::parse(&text.to_uppercase()), None);
        assert_eq!(Token::parse(&text[1..]), None);
        assert_eq!(Token::parse(""), None);
    }

    #[test]
    fn rotation_grace_and_reuse_with_a_virtual_clock() {
        let start = 1_000_000;
        let first = family(start);
        let old_refresh = token(2).hash();
        assert_eq!(
            judge_refresh(&first, &old_refresh, &RULES, start + 60),
            RefreshVerdict::Rotate
        );
        let second = rotate(&first, token(4).hash(), token(5).hash(), start + 60);
        assert_eq!(
            judge_refresh(&second, &old_refresh, &RULES, start + 75),
            RefreshVerdict::GraceReplay
        );
        assert_eq!(
            judge_refresh(&second, &old_refresh, &RULES, start + 76),
            RefreshVerdict::Reuse
        );
        assert_eq!(
            judge_refresh(&second, &token(5).hash(), &RULES, start + 76),
            RefreshVerdict::Rotate
        );
        let third = rotate(&second, token(6).hash(), token(7).hash(), start + 100);
        assert_eq!(third.retired, vec![old_refresh]);
        assert_eq!(
            judge_refresh(&third, &old_refresh, &RULES, start + 101),
            RefreshVerdict::Reuse
        );
    }

    #[test]
    fn idle_and_absolute_expiry_even_when_refreshing() {
        let start = 1_000_000;
        let mut current = family(start);
        let mut now = start;
        let mut n_refreshes = 0;
        loop {
            now += 600;
            if judge_refresh(&current, &current.refresh.clone(), &RULES, now)
                != RefreshVerdict::Rotate
            {
                break;
            }
            current = rotate(&current, token(8).hash(), token(9).hash(), now);
            n_refreshes += 1;
        }
        assert_eq!(now - start, 8 * 3600);
        assert_eq!(n_refreshes, 47);
        let idle = family(start);
        assert!(is_live(&idle, &RULES, start + 899));
        assert!(!is_live(&idle, &RULES, start + 900));
    }

    #[test]
    fn binding() {
        let now = 1_000_000;
        let bound = family(now);
        let ua = hash_user_agent("ua");
        let same_24: IpAddr = "192.0.2.99".parse().unwrap();
        let other_24: IpAddr = "192.0.3.10".parse().unwrap();
        assert_eq!(check_access(&bound, &RULES, &ua, same_24, now), Ok(()));
        assert_eq!(
            check_access(&bound, &RULES, &ua, other_24, now),
            Err(Rejection::ClientIpChanged)
        );
        assert_eq!(
            check_access(&bound, &RULES, &hash_user_agent("curl"), same_24, now),
            Err(Rejection::UserAgentChanged)
        );
        assert!(same_client(
            IpBinding::Prefix,
            "2001:db8::1".parse().unwrap(),
            "2001:db8::ffff:1".parse().unwrap()
        ));
        assert!(!same_client(
            IpBinding::Exact,
            same_24,
            "192.0.2.10".parse().unwrap()
        ));
    }
}
