//! The diagnostics collector: which file is being read, and every problem found so far.
//!
//! Every pass of the parser reports through [`Cx::error`], which turns a byte span of the
//! current file into a line and column. Nothing here stops at the first problem.

use std::ops::Range;

use super::Source;
use crate::grammar::Origin;
use crate::value::path_components;
use crate::{Diagnostic, DiagnosticKind};

/// The parse context: the current file and the diagnostics so far.
pub(super) struct Cx<'src> {
    pub(super) diagnostics: Vec<Diagnostic>,
    file: &'src str,
    text: &'src str,
}

impl<'src> Cx<'src> {
    pub(super) fn new() -> Cx<'src> {
        Cx {
            diagnostics: Vec::new(),
            file: "",
            text: "",
        }
    }

    /// Makes `source` the file that spans refer to.
    pub(super) fn enter(&mut self, source: &'src Source) {
        self.file = &source.name;
        self.text = &source.text;
    }

    /// How many diagnostics there are so far; with [`Cx::failed_since`], whether a part failed.
    pub(super) fn mark(&self) -> usize {
        self.diagnostics.len()
    }

    pub(super) fn failed_since(&self, mark: usize) -> bool {
        self.diagnostics.len() > mark
    }

    pub(super) fn origin(&self, span: Range<usize>) -> Origin {
        let end = span.start.min(self.text.len());
        let end = (0..=end)
            .rev()
            .find(|idx| self.text.is_char_boundary(*idx))
            .unwrap_or(0);
        let before = self.text.get(..end).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map_or(0, |line_text| line_text.chars().count())
            + 1;
        Origin {
            file: self.file.to_owned(),
            line,
            col,
        }
    }

    pub(super) fn error(&mut self, span: Range<usize>, kind: DiagnosticKind) {
        let origin = self.origin(span);
        self.diagnostics.push(Diagnostic { origin, kind });
    }

    /// Whether `name` is not defined yet; a diagnostic pointing at its `first` definition otherwise.
    pub(super) fn check_new(
        &mut self,
        span: Range<usize>,
        what: &'static str,
        name: &str,
        first: Option<&Origin>,
    ) -> bool {
        let Some(first) = first else {
            return true;
        };
        self.error(
            span,
            DiagnosticKind::Duplicate {
                what,
                name: name.to_owned(),
                first: first.clone(),
            },
        );
        false
    }

    /// ```text
    /// identifier = ALPHA *63( ALPHA / DIGIT / "_" / "-" / "." )
    /// ```
    pub(super) fn check_identifier(&mut self, span: Range<usize>, what: &'static str, name: &str) {
        let valid = name.len() <= 64
            && name.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
        if !valid {
            self.error(
                span,
                DiagnosticKind::BadName {
                    what,
                    name: name.to_owned(),
                },
            );
        }
    }

    /// Whether `value` lies in `min..=max`; a diagnostic naming `field` otherwise.
    pub(super) fn check_range(
        &mut self,
        span: Range<usize>,
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    ) -> bool {
        let valid = (min..=max).contains(&value);
        if !valid {
            self.error(
                span,
                DiagnosticKind::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                },
            );
        }
        valid
    }

    /// An absolute, normalised path; false (and a diagnostic) otherwise.
    pub(super) fn check_path(
        &mut self,
        span: Range<usize>,
        what: &'static str,
        path: &str,
    ) -> bool {
        match path_components(path) {
            Ok(_) => true,
            Err(error) => {
                self.error(
                    span,
                    DiagnosticKind::BadPath {
                        what,
                        path: path.to_owned(),
                        error: error.to_string(),
                    },
                );
                false
            }
        }
    }
}

/// A count or size as the `u64` diagnostics carry (lossless on every target nos runs on).
pub(super) fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
