//! `pattern` of CRD schemas: the regular expressions kube checks with Go's `regexp` (RE2
//! syntax, unanchored search), matched here by regex-automata's Pike VM, whose time is linear
//! in the input and whose compiled size is capped, so a hostile pattern cannot stall the core.
//!
//! Like Go (and unlike Unicode-aware engines), `\d`, `\w` and `\s` are ASCII classes. One
//! difference is documented rather than hidden: `.` and negated classes match one byte, not
//! one UTF-8 character, so a length bound such as `^.{1,3}$` counts bytes of non-ASCII text.

use alloc::format;
use alloc::string::String;
use regex_automata::nfa::thompson::{self, pikevm::PikeVM};
use regex_automata::util::syntax;

/// Largest compiled pattern accepted, in bytes of NFA.
const MAX_NFA_BYTES: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions accepted.
const MAX_NESTING: u32 = 64;

/// A compiled pattern.
#[derive(Debug)]
pub struct Pattern {
    vm: PikeVM,
}

impl Pattern {
    /// Compiles `pattern`, or says why it is not a valid (or is too large a) pattern, in Go's
    /// words where they carry over: `error parsing regexp: ...`.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let ast = regex_syntax::ast::parse::ParserBuilder::new()
            .nest_limit(MAX_NESTING)
            .build()
            .parse(pattern)
            .map_err(|e| format!("error parsing regexp: {e}"))?;
        regex_syntax::ast::visit(&ast, RepeatLimit)?;
        let vm = PikeVM::builder()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .nest_limit(MAX_NESTING),
            )
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(MAX_NFA_BYTES)),
            )
            .build(pattern)
            .map_err(|e| format!("error parsing regexp: {e}"))?;
        Ok(Self { vm })
    }

    /// Whether `text` contains a match (Go's `MatchString`).
    pub fn is_match(&self, text: &str) -> bool {
        let mut cache = self.vm.create_cache();
        self.vm.is_match(&mut cache, text)
    }
}

/// Go's `regexp/syntax` refuses counted repetitions above 1000 (`invalid repeat count`).
struct RepeatLimit;

impl regex_syntax::ast::Visitor for RepeatLimit {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), String> {
        use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
        if let Ast::Repetition(rep) = ast
            && let RepetitionKind::Range(range) = &rep.op.kind
        {
            let (RepetitionRange::Exactly(n)
            | RepetitionRange::AtLeast(n)
            | RepetitionRange::Bounded(_, n)) = *range;
            let low = match *range {
                RepetitionRange::Bounded(m, _) => m,
                _ => n,
            };
            if n > 1000 || low > 1000 {
                return Err(String::from("error parsing regexp: invalid repeat count"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go_regexp() {
        let cron = Pattern::new(r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$").unwrap();
        assert!(cron.is_match("* * * * */5"));
        assert!(cron.is_match("0 12 1 * 3"));
        assert!(!cron.is_match("* * * *"));
        assert!(!cron.is_match("a * * * *"));
        let unanchored = Pattern::new("in-tree|out-of-tree").unwrap();
        assert!(unanchored.is_match("an out-of-tree plugin"));
        assert!(!unanchored.is_match("elsewhere"));
        // ASCII classes, as Go's.
        let digits = Pattern::new(r"^\d+$").unwrap();
        assert!(digits.is_match("0123"));
        assert!(!digits.is_match("١٢٣"));
    }

    #[test]
    fn bad_and_huge_patterns_are_refused() {
        assert!(
            Pattern::new("(")
                .unwrap_err()
                .starts_with("error parsing regexp")
        );
        assert!(Pattern::new("a{1001}").is_err());
        let nested = "(".repeat(100) + &")".repeat(100);
        assert!(Pattern::new(&nested).is_err());
        assert!(Pattern::new(r"(\w{100}){100}").is_err());
        // Linear time: a classic catastrophic-backtracking pattern is instant.
        let evil = Pattern::new("^(a+)+$").unwrap();
        let text = "a".repeat(10_000) + "!";
        assert!(!evil.is_match(&text));
    }
}
