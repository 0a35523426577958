//! CEL's `matches()`: RE2 syntax (as cel-go uses Go's `regexp`), unanchored, matched by a
//! PikeVM so time is linear in the input; the pattern's size is bounded.

use alloc::format;
use alloc::string::String;
use regex_automata::nfa::thompson;
use regex_automata::nfa::thompson::pikevm::PikeVM;
use regex_automata::util::syntax;

/// Largest compiled program accepted (bytes of NFA), so a pattern cannot blow up memory.
const NFA_SIZE_LIMIT: usize = 1 << 20;

/// Whether `text` contains a match of `pattern`.
pub(crate) fn is_match(pattern: &str, text: &str) -> Result<bool, String> {
    let vm = PikeVM::builder()
        .syntax(syntax::Config::new().nest_limit(64))
        .thompson(thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
        .build(pattern)
        .map_err(|e| format!("invalid regular expression: {e}"))?;
    let mut cache = vm.create_cache();
    Ok(vm.is_match(&mut cache, text))
}
