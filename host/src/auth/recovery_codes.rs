//! One-time recovery codes: 10 × 80 bits, shown once, stored argon2id-hashed.
//!
//! A code replaces the second factor only, never the password. This module generates and
//! parses codes; hashing and consumption happen in the login flow. It never stores anything.

/// Codes issued at a time.
pub const N_CODES: usize = 10;
/// Characters per code (Crockford base32: 5 bits each, 80 bits in all).
pub const CODE_CHARS: usize = 16;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Draws `N_CODES` codes, formatted `XXXX-XXXX-XXXX-XXXX`.
pub fn generate() -> Result<Vec<String>, getrandom::Error> {
    let mut codes = Vec::with_capacity(N_CODES);
    for _ in 0..N_CODES {
        let mut random = [0u8; CODE_CHARS];
        getrandom::fill(&mut random)?;
        let chars: Vec<u8> = random
            .iter()
            .map(|byte| ALPHABET[usize::from(byte & 31)])
            .collect();
        let groups: Vec<&str> = chars
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or(""))
            .collect();
        codes.push(groups.join("-"));
    }
    Ok(codes)
}

/// The canonical form that is hashed: uppercase, no hyphens or spaces, 16 alphabet chars.
///
/// `code = 16 * (alnum | "-" | " ")` (case-insensitive; separators ignored)
pub fn canonical(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let canonical: String = input
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        canonical.len() == CODE_CHARS && canonical.bytes().all(|byte| ALPHABET.contains(&byte));
    valid.then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_back() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19);
            let canonical_code = canonical(code).unwrap();
            assert_eq!(canonical(&code.to_lowercase()), Some(canonical_code));
        }
    }

    #[test]
    fn grammar() {
        assert_eq!(
            canonical("abcd efgh-jkmn pqrs").as_deref(),
            Some("ABCDEFGHJKMNPQRS")
        );
        assert_eq!(canonical("ABCD-EFGH-JKMN-PQRI"), None);
        assert_eq!(canonical("123456"), None);
    }
}
