//! A short, human label of a `User-Agent` ("Firefox on Windows") for the sessions list.
//!
//! Display only: a User-Agent is whatever the client claims, so no decision ever reads this
//! label. The session binding compares a hash of the whole header instead.

/// Longest label stored.
pub const MAX_LABEL_CHARS: usize = 64;

/// "Browser on OS", "Browser", or a cut-down copy of the header for anything else.
pub fn label(user_agent: &str) -> String {
    // Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_string(),
        _ => user_agent
            .chars()
            .filter(|ch| !ch.is_control())
            .take(MAX_LABEL_CHARS)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0",
                "Edge on Windows",
            ),
            ("curl/8.5.0", "curl"),
            ("nos-tests/1", "nos-tests/1"),
            ("", ""),
        ];
        for (user_agent, expected) in cases {
            assert_eq!(label(user_agent), expected, "{user_agent}");
        }
    }
}
