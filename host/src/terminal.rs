//! Text shown on an administrator's terminal. A string a plugin (or any caller) controls can
//! carry characters that rewrite what the terminal shows: ESC and the other C0 controls (cursor
//! moves, line erases, window titles), DEL, the C1 controls, and the bidirectional overrides that
//! reorder a line. [`safe`] shows each of them as `\u{..}`, newlines and tabs included, so a
//! guest's text can neither draw nor fake a line of the report around it. Pure.

use std::fmt::Write as _;

/// `text` with every character that could change how the terminal shows the text around it
/// written as `\u{hex}`; printable characters (ASCII and beyond) unchanged.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if rewrites_terminal(ch) {
            let _ = write!(out, "\\u{{{:x}}}", ch as u32);
        } else {
            out.push(ch);
        }
    }
    out
}

fn rewrites_terminal(ch: char) -> bool {
    ch.is_control()
        || matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_rewrites_a_terminal() {
        assert_eq!(
            safe("bug\u{1b}[2K\r0 rejected\u{7}\n\t\u{9b}\u{7f}\u{202e}"),
            "bug\\u{1b}[2K\\u{d}0 rejected\\u{7}\\u{a}\\u{9}\\u{9b}\\u{7f}\\u{202e}"
        );
        assert_eq!(safe("/dev/sdb — Pool «tank» ✓"), "/dev/sdb — Pool «tank» ✓");
    }
}
