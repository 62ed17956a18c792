//! The in-memory session table with its indexes, and its file form.
//!
//! Defines `sessions.json`'s form; [`super::service`] writes it (through `store/`). Lookups are
//! by token hash only. The successor pair
//! of the last rotation is kept in memory only (plaintext tokens are never written), so a grace
//! replay after a restart gets a "log in again" instead of a revocation. This module never
//! reads the clock; callers pass `now` and fresh tokens.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::token::{self, Family, RefreshVerdict, Rejection, SessionRules, Token, TokenHash};
use crate::clock::UnixSeconds;

/// Tokens handed to the client for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub family_id: String,
    pub access: Token,
    pub refresh: Token,
    pub csrf: Token,
}

/// The file form of the table.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SessionsFile {
    pub families: BTreeMap<String, Family>,
}

/// What a handler learns about the session that authenticated its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub username: String,
    pub created_at: UnixSeconds,
    pub authenticated_at: UnixSeconds,
    pub csrf_hash: TokenHash,
}

/// Why an access token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDenied {
    /// No live session has this token.
    Unknown,
    /// The session existed but expired or its binding did not match; it has been ended.
    Ended {
        rejection: Rejection,
        username: String,
    },
}

/// Who presents a token: what binding is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    pub user_agent: &'a str,
    pub client_ip: IpAddr,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated(IssuedTokens),
    /// Same successor as the rotation just before (grace window).
    Replayed(IssuedTokens),
    /// Reuse detected: the family was revoked.
    Revoked {
        family_id: String,
        username: String,
    },
    /// Unknown, expired, or a grace replay whose successor is no longer in memory.
    Refused,
    /// Presented from another User-Agent or network: the family was revoked.
    BindingMismatch {
        username: String,
    },
}

#[derive(Default)]
pub struct SessionTable {
    families: BTreeMap<String, Family>,
    by_access: HashMap<TokenHash, String>,
    by_refresh: HashMap<TokenHash, String>,
    successors: HashMap<String, IssuedTokens>,
    /// `last_seen_at` moved since the table was last written (persisted by housekeeping).
    seen_dirty: bool,
    /// The `seq` the next family gets: above every family's.
    next_seq: u64,
}

impl SessionTable {
    pub fn from_file(file: SessionsFile) -> SessionTable {
        let mut table = SessionTable::default();
        for (family_id, family) in file.families {
            table.index(&family);
            table.next_seq = table.next_seq.max(family.seq.saturating_add(1));
            table.families.insert(family_id, family);
        }
        table
    }

    /// Whether activity happened since the last call (and resets the flag).
    pub fn take_seen_dirty(&mut self) -> bool {
        std::mem::take(&mut self.seen_dirty)
    }

    pub fn to_file(&self) -> SessionsFile {
        SessionsFile {
            families: self.families.clone(),
        }
    }

    fn index(&mut self, family: &Family) {
        self.by_access.insert(family.access, family.id.clone());
        self.by_refresh.insert(family.refresh, family.id.clone());
        if let Some(previous) = family.previous {
            self.by_access.insert(previous.access, family.id.clone());
            self.by_refresh.insert(previous.refresh, family.id.clone());
        }
        for retired in &family.retired {
            self.by_refresh.insert(*retired, family.id.clone());
        }
    }

    fn unindex(&mut self, family: &Family) {
        self.by_access
            .retain(|_, family_id| *family_id != family.id);
        self.by_refresh
            .retain(|_, family_id| *family_id != family.id);
    }

    /// Starts a family; evicts the user's oldest beyond `max_per_user`, oldest by creation order
    /// (`created_at`, then `seq`), so the family just created is never the one evicted.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        username: &str,
        user_agent: &str,
        client_ip: IpAddr,
        now: UnixSeconds,
        tokens: IssuedTokens,
        max_per_user: usize,
    ) -> Vec<String> {
        let family = Family {
            id: tokens.family_id.clone(),
            username: username.to_string(),
            created_at: now,
            seq: self.next_seq,
            last_seen_at: now,
            authenticated_at: now,
            user_agent_hash: token::hash_user_agent(user_agent),
            device: super::device::label(user_agent),
            client_ip,
            access: tokens.access.hash(),
            refresh: tokens.refresh.hash(),
            csrf_hash: tokens.csrf.hash(),
            previous: None,
            retired: Vec::new(),
        };
        self.next_seq = self.next_seq.saturating_add(1);
        self.index(&family);
        self.families.insert(family.id.clone(), family);
        let mut own: Vec<(UnixSeconds, u64, String)> = self
            .families
            .values()
            .filter(|family| family.username == username)
            .map(|family| (family.created_at, family.seq, family.id.clone()))
            .collect();
        own.sort();
        let mut evicted = Vec::new();
        while own.len() > max_per_user {
            let (_, _, family_id) = own.remove(0);
            self.revoke(&family_id);
            evicted.push(family_id);
        }
        evicted
    }

    /// Authenticates an access token; a binding mismatch or expiry ends the session.
    pub fn authenticate(
        &mut self,
        access: &Token,
        rules: &SessionRules,
        user_agent: &str,
        client_ip: IpAddr,
        now: UnixSeconds,
    ) -> Result<SessionView, AccessDenied> {
        let access_hash = access.hash();
        let Some(family_id) = self.by_access.get(&access_hash) else {
            return Err(AccessDenied::Unknown);
        };
        let Some(family) = self.families.get_mut(family_id) else {
            return Err(AccessDenied::Unknown);
        };
        let current = family.access == access_hash;
        let in_grace = family.previous.is_some_and(|previous| {
            previous.access == access_hash
                && now <= previous.rotated_at.saturating_add(rules.grace_seconds)
        });
        if !current && !in_grace {
            return Err(AccessDenied::Unknown);
        }
        let ua_hash = token::hash_user_agent(user_agent);
        if let Err(rejection) = token::check_access(family, rules, &ua_hash, client_ip, now) {
            let family_id = family.id.clone();
            let username = family.username.clone();
            self.revoke(&family_id);
            return Err(AccessDenied::Ended {
                rejection,
                username,
            });
        }
        family.last_seen_at = now;
        self.seen_dirty = true;
        Ok(SessionView {
            id: family.id.clone(),
            username: family.username.clone(),
            created_at: family.created_at,
            authenticated_at: family.authenticated_at,
            csrf_hash: family.csrf_hash,
        })
    }

    pub fn refresh(
        &mut self,
        presented: &Token,
        presenter: &Presenter<'_>,
        rules: &SessionRules,
        now: UnixSeconds,
        fresh: impl FnOnce(&str) -> IssuedTokens,
    ) -> RefreshOutcome {
        let presented_hash = presented.hash();
        let Some(family_id) = self.by_refresh.get(&presented_hash).cloned() else {
            return RefreshOutcome::Refused;
        };
        let Some(family) = self.families.get(&family_id).cloned() else {
            return RefreshOutcome::Refused;
        };
        // A refresh token replayed from another browser or network ends the session, exactly as
        // an access token would.
        let same_agent = family.user_agent_hash == token::hash_user_agent(presenter.user_agent);
        if !same_agent
            || !token::same_client(rules.ip_binding, family.client_ip, presenter.client_ip)
        {
            self.revoke(&family_id);
            return RefreshOutcome::BindingMismatch {
                username: family.username,
            };
        }
        match token::judge_refresh(&family, &presented_hash, rules, now) {
            RefreshVerdict::Rotate => {
                let tokens = fresh(&family_id);
                let next = token::rotate(&family, tokens.access.hash(), tokens.refresh.hash(), now);
                let csrf_hash = tokens.csrf.hash();
                self.unindex(&family);
                let next = Family { csrf_hash, ..next };
                self.index(&next);
                self.families.insert(family_id.clone(), next);
                self.successors.insert(family_id, tokens.clone());
                RefreshOutcome::Rotated(tokens)
            }
            RefreshVerdict::GraceReplay => match self.successors.get(&family_id) {
                Some(tokens) => RefreshOutcome::Replayed(tokens.clone()),
                None => RefreshOutcome::Refused,
            },
            RefreshVerdict::Reuse => {
                self.revoke(&family_id);
                RefreshOutcome::Revoked {
                    family_id,
                    username: family.username,
                }
            }
            RefreshVerdict::Expired => {
                self.revoke(&family_id);
                RefreshOutcome::Refused
            }
        }
    }

    /// The family an access token (current or just rotated) belongs to.
    pub fn family_of_access(&self, access: &TokenHash) -> Option<String> {
        self.by_access.get(access).cloned()
    }

    pub fn get(&self, family_id: &str) -> Option<&Family> {
        self.families.get(family_id)
    }

    pub fn mark_authenticated(&mut self, family_id: &str, now: UnixSeconds) {
        if let Some(family) = self.families.get_mut(family_id) {
            family.authenticated_at = now;
        }
    }

    pub fn revoke(&mut self, family_id: &str) -> Option<Family> {
        let family = self.families.remove(family_id)?;
        self.unindex(&family);
        self.successors.remove(family_id);
        Some(family)
    }

    /// Revokes every family of `username` except `keep`; returns how many.
    pub fn revoke_user(&mut self, username: &str, keep: Option<&str>) -> usize {
        let doomed: Vec<String> = self
            .families
            .values()
            .filter(|family| family.username == username && Some(family.id.as_str()) != keep)
            .map(|family| family.id.clone())
            .collect();
        for family_id in &doomed {
            self.revoke(family_id);
        }
        doomed.len()
    }

    pub fn list(&self, username: &str) -> Vec<Family> {
        self.families
            .values()
            .filter(|family| family.username == username)
            .cloned()
            .collect()
    }

    /// Drops families that can no longer be used.
    pub fn prune(&mut self, rules: &SessionRules, now: UnixSeconds) -> usize {
        let dead: Vec<String> = self
            .families
            .values()
            .filter(|family| !token::is_live(family, rules, now))
            .map(|family| family.id.clone())
            .collect();
        for family_id in &dead {
            self.revoke(family_id);
        }
        dead.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpBinding;
    use proptest::prelude::*;

    const RULES: SessionRules = SessionRules {
        idle_seconds: 900,
        absolute_seconds: 8 * 3600,
        grace_seconds: 15,
        ip_binding: IpBinding::Prefix,
    };

    fn tokens(seed: u8, family_id: &str) -> IssuedTokens {
        IssuedTokens {
            family_id: family_id.to_string(),
            access: Token::from_bytes([seed; 32]),
            refresh: Token::from_bytes([seed.wrapping_add(1); 32]),
            csrf: Token::from_bytes([seed.wrapping_add(2); 32]),
        }
    }

    /// Many logins in one second: the oldest by creation order go, never a login just made
    /// (random family ids once decided within a second).
    #[test]
    fn eviction_within_one_second_keeps_the_newest() {
        let mut table = SessionTable::default();
        let now = 1_000_000;
        let ids: Vec<String> = (0..15u8).map(|n| format!("{:02x}", 255 - n * 17)).collect();
        for (n, id) in ids.iter().enumerate() {
            let evicted = table.create(
                "admin",
                "ua",
                "192.0.2.1".parse().unwrap(),
                now,
                tokens(n as u8 * 3, id),
                5,
            );
            assert!(!evicted.contains(id), "login {n} evicted itself");
            assert!(table.get(id).is_some());
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(table.get(id).is_some(), n >= 10, "{n}");
        }
        // The order survives a restart.
        let reloaded = SessionTable::from_file(SessionsFile {
            families: table.families.clone(),
        });
        assert_eq!(reloaded.next_seq, 15);
    }

    proptest! {
        /// A simulated client population replays any refresh token it ever saw, at random
        /// virtual times. Invariants: a rotation happens only for the current token; a grace
        /// replay returns exactly the last successor; any other presentation of a known token
        /// revokes the family, after which nothing of it works.
        #[test]
        fn refresh_simulation(steps in proptest::collection::vec((0u64..120, 0usize..8), 1..40)) {
            let mut table = SessionTable::default();
            let start = 1_000_000;
            let first = tokens(1, "fam");
            table.create("admin", "ua", "192.0.2.1".parse().unwrap(), start, first.clone(), 5);
            let mut seen = vec![first.refresh.clone()];
            let mut current = first;
            let mut last_rotation_at = None;
            let mut alive = true;
            let mut now = start;
            let mut seed = 10u8;
            for (dt, pick) in steps {
                now += dt;
                let presented = seen[pick % seen.len()].clone();
                seed = seed.wrapping_add(3);
                let successor = tokens(seed, "fam");
                let presenter = Presenter { user_agent: "ua", client_ip: "192.0.2.1".parse().unwrap() };
                let outcome = table.refresh(&presented, &presenter, &RULES, now, |_| successor.clone());
                match outcome {
                    RefreshOutcome::Rotated(issued) => {
                        prop_assert!(alive);
                        prop_assert_eq!(&presented, &current.refresh);
                        prop_assert_eq!(&issued, &successor);
                        seen.push(issued.refresh.clone());
                        current = issued;
                        last_rotation_at = Some(now);
                    }
                    RefreshOutcome::Replayed(issued) => {
                        prop_assert!(alive);
                        prop_assert_eq!(&issued, &current);
                        prop_assert!(now <= last_rotation_at.unwrap() + RULES.grace_seconds);
                    }
                    RefreshOutcome::Revoked { .. } => {
                        prop_assert!(alive);
                        prop_assert_ne!(&presented, &current.refresh);
                        alive = false;
                    }
                    RefreshOutcome::BindingMismatch { .. } => prop_assert!(false, "same presenter"),
                    RefreshOutcome::Refused => {
                        // Either the family is already gone, or it just expired (and was dropped).
                        let last_active = last_rotation_at.unwrap_or(start);
                        prop_assert!(!alive || now >= last_active + RULES.idle_seconds);
                        alive = false;
                    }
                }
                prop_assert_eq!(table.get("fam").is_some(), alive);
            }
        }
    }
}
