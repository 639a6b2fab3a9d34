//! Fuzzes regex label matchers: building one from any pattern must return a matcher or an
//! error, never panic or hang, and a matcher that builds must agree with the plain anchored
//! regex it stands for, whichever fast path it chose.
//!
//! Input: the pattern, a zero byte, then the value to match (both read as lossy UTF-8).
//!
//! The matcher gives `\d`, `\w`, `\s` and the word boundaries Go's ASCII meaning, while the
//! plain `regex` crate gives them Unicode's. The two agree on ASCII text other than vertical
//! tab, so for patterns that may contain those escapes only such values are compared.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_engine::labels::matcher::{MatchKind, Matcher, MatcherLimits};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let pattern = String::from_utf8_lossy(&data[..split]);
    let value = String::from_utf8_lossy(data.get(split + 1..).unwrap_or_default());

    let limits = MatcherLimits::default();
    let Ok(matcher) = Matcher::with_limits(MatchKind::Regex, "l", &pattern, &limits) else {
        return;
    };
    let negated = Matcher::with_limits(MatchKind::NotRegex, "l", &pattern, &limits)
        .expect("the negated matcher must build when the positive one does");
    let accepted = matcher.matches(&value);
    assert_eq!(negated.matches(&value), !accepted);
    let _ = matcher.to_string();

    if let Some(set) = matcher.set_values() {
        assert!(
            set.windows(2).all(|w| w[0] < w[1]),
            "set values not sorted: {set:?}"
        );
        assert_eq!(
            set.binary_search_by(|v| v.as_str().cmp(&value)).is_ok(),
            accepted
        );
    }
    if let (Some(prefix), true) = (matcher.literal_prefix(), accepted) {
        assert!(
            value.starts_with(prefix),
            "{pattern:?} accepted {value:?} without {prefix:?}"
        );
    }

    let has_perl_escape = pattern
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && b"dDsSwWbB<>".contains(&w[1]));
    let comparable = value.is_ascii() && !value.contains('\x0b');
    if has_perl_escape && !comparable {
        return;
    }
    // The Go rewrite can make a pattern smaller than its Unicode reading (`\w{500}`), so the
    // reference may exceed the size limit where the matcher did not.
    let Ok(reference) = regex::RegexBuilder::new(&format!("^(?s:{pattern})$"))
        .size_limit(limits.regex_size_max)
        .dfa_size_limit(limits.dfa_size_max)
        .build()
    else {
        return;
    };
    assert_eq!(
        accepted,
        reference.is_match(&value),
        "{pattern:?} on {value:?}"
    );
});
