//! Tests of the label matchers: Prometheus semantics, fast paths against the plain regex,
//! limits.

use super::MatchKind::{Equal, NotEqual, NotRegex, Regex};
use super::*;
use proptest::prelude::*;

fn build(kind: MatchKind, pattern: &str) -> Matcher {
    Matcher::new(kind, "l", pattern).unwrap_or_else(|e| panic!("{kind} {pattern:?}: {e}"))
}

/// Builds `l <kind> pattern` and checks that it accepts every value in `accepted` and
/// rejects every value in `rejected`.
fn check(kind: MatchKind, pattern: &str, accepted: &[&str], rejected: &[&str]) {
    let matcher = build(kind, pattern);
    for value in accepted {
        assert!(
            matcher.matches(value),
            "{matcher} should accept {value:?} ({})",
            plan(&matcher)
        );
    }
    for value in rejected {
        assert!(
            !matcher.matches(value),
            "{matcher} should reject {value:?} ({})",
            plan(&matcher)
        );
    }
}

#[test]
fn equality() {
    check(Equal, "api", &["api"], &["", "ap", "apix", "API"]);
    check(Equal, "", &[""], &["a"]);
    check(NotEqual, "api", &["", "ap", "API"], &["api"]);
    check(NotEqual, "", &["a"], &[""]);
    // Equality never interprets the value as a pattern.
    check(Equal, "a.*", &["a.*"], &["ab"]);
}

#[test]
fn regexes_are_anchored() {
    check(Regex, "a", &["a"], &["", "ab", "ba", "aa"]);
    check(Regex, "foo|bar", &["foo", "bar"], &["foobar", "fo", "xbar"]);
    check(Regex, "b.*", &["b", "bc"], &["ab"]);
    check(Regex, ".*b", &["b", "ab"], &["ba"]);
    check(Regex, "a+", &["a", "aaa"], &["", "ab", "ba"]);
    check(Regex, "^a$", &["a"], &["", "ab"]);
    check(Regex, "a^", &[], &["", "a"]);
    check(Regex, "(?m)a$", &["a"], &["a\n", "a\nb"]);
}

#[test]
fn dot_matches_newline() {
    check(Regex, ".", &["\n", "x", "é", "😀"], &["", "ab", "\n\n"]);
    check(Regex, "a.b", &["a\nb", "axb"], &["ab"]);
    check(Regex, ".*", &["", "x", "two\nlines"], &[]);
    check(Regex, ".+", &["\n", "x"], &[""]);
    check(Regex, "x.*", &["x\n"], &["\nx"]);
    // The flag can still be turned off inside the pattern.
    check(Regex, "(?-s:.)*", &["", "ab"], &["\n", "a\nb"]);
    check(Regex, "(?-s).+", &["ab"], &["a\n"]);
}

#[test]
fn empty_string_stands_for_a_missing_label() {
    check(Regex, "", &[""], &["a"]);
    check(Regex, "a|", &["", "a"], &["b"]);
    check(Regex, "a?", &["", "a"], &["aa"]);
    check(NotRegex, ".+", &[""], &["a", "\n"]);
    check(NotRegex, "", &["a"], &[""]);
    check(NotRegex, ".*", &[], &["", "a"]);
    let cases = [
        (Equal, "", true),
        (Equal, "a", false),
        (NotEqual, "", false),
        (NotEqual, "a", true),
        (Regex, ".*", true),
        (Regex, ".+", false),
        (Regex, "a|", true),
        (NotRegex, ".+", true),
        (NotRegex, "a|", false),
        (NotRegex, "a", true),
    ];
    for (kind, pattern, expected) in cases {
        assert_eq!(
            build(kind, pattern).matches_empty(),
            expected,
            "{kind} {pattern:?}"
        );
    }
}

#[test]
fn shapes() {
    check(
        Regex,
        "api-.*",
        &["api-", "api-x", "api-\n"],
        &["", "api", "xapi-", "API-x"],
    );
    check(Regex, "api-.+", &["api-x"], &["api-", "api"]);
    check(
        Regex,
        ".*-canary",
        &["-canary", "web-canary"],
        &["web-canary2", "canary"],
    );
    check(Regex, ".+-canary", &["web-canary"], &["-canary"]);
    check(
        Regex,
        ".*err.*",
        &["err", "an error", "\nerr\n"],
        &["", "er", "ERR"],
    );
    check(
        Regex,
        "ab.*ba",
        &["abba", "abxba"],
        &["aba", "ab", "ba", "abbax"],
    );
    check(Regex, "a.*a", &["aa", "aba"], &["a", ""]);
    check(Regex, "a.*b.*c", &["abc", "a-b-c"], &["ac", "acb"]);
    check(Regex, "foo.*|bar.+", &["foo", "bar1"], &["bar", "baz"]);
    check(Regex, "(api|web)-.*", &["api-1", "web-"], &["db-1"]);
    check(Regex, ".*?x", &["x", "aax"], &["xa"]);
    check(
        Regex,
        "(?i:ok)|.*fail.*",
        &["Ok", "it failed"],
        &["o", "FAIL"],
    );
    check(Regex, "(?i)ok|.*fail.*", &["Ok", "FAIL"], &["o"]);
}

#[test]
fn sets_and_classes() {
    check(Regex, "a|b|c", &["a", "b", "c"], &["", "ab", "d"]);
    check(
        Regex,
        "(?i)ok",
        &["ok", "OK", "oK", "Ok", "o\u{212a}"],
        &["o", "okk"],
    );
    check(
        Regex,
        "node-[1-3]",
        &["node-1", "node-3"],
        &["node-4", "node-"],
    );
    check(Regex, "[^a]", &["b", "é", "\n"], &["a", "", "bb"]);
    check(Regex, "[0-9]{3}", &["000", "123"], &["12", "1234", "12a"]);
    check(Regex, "x{2,3}", &["xx", "xxx"], &["x", "xxxx"]);
    check(Regex, r"[^\x00-\x{10FFFF}]", &[], &["", "a"]);
}

#[test]
fn unicode() {
    check(
        Regex,
        "é.*",
        &["é", "école"[..2].as_ref(), "éa"],
        &["e", "e\u{301}"],
    );
    check(Regex, "..", &["éa", "😀😀"], &["😀"]);
    check(Regex, "(?i)straße", &["STRAßE", "straße"], &["strasse"]);
    check(Regex, r"\p{Greek}+", &["αβγ"], &["abc"]);
    check(Regex, ".*✓", &["done ✓"], &["done"]);
}

/// Go's RE2, which Prometheus uses, has ASCII-only Perl classes and word boundaries.
#[test]
fn perl_classes_are_ascii_as_in_go() {
    check(Regex, r"\d+", &["0", "123"], &["٣", "１", ""]);
    check(Regex, r"\D", &["٣", "a"], &["5"]);
    check(Regex, r"[\d]", &["7"], &["٣"]);
    check(Regex, r"[^\d]", &["٣"], &["7"]);
    check(Regex, r"[\d-]+", &["1-2"], &["٣"]);
    check(Regex, r"[\w--_]+", &["ab"], &["a_b"]);
    check(Regex, r"\w+", &["az_AZ09"], &["é", "a-b"]);
    check(Regex, r"\W", &["é", "-"], &["a", "_"]);
    check(Regex, r"(?i)\W", &["é", "-"], &["a", "K"]);
    check(
        Regex,
        r"\s",
        &[" ", "\t", "\n", "\r", "\x0c"],
        &["\x0b", "\u{a0}", "\u{2003}"],
    );
    check(Regex, r"\S", &["\x0b", "\u{a0}"], &[" "]);
    check(Regex, r".*\bfoo", &["foo", "éfoo", "a foo"], &["afoo"]);
    check(Regex, r"foo\B.*", &["foox"], &["foo", "foo é"]);
    check(Regex, r"\\d", &[r"\d"], &["1"]);
}

/// Shows the plan a matcher chose, to pin which patterns get a fast path.
fn plan(matcher: &Matcher) -> String {
    match &matcher.plan {
        Plan::Set(values) => format!("set {values:?}"),
        Plan::Shapes(shapes) => {
            let shapes: Vec<String> = shapes
                .iter()
                .map(|shape| {
                    let middle = match &shape.middle {
                        Middle::Empty => String::new(),
                        Middle::Any => ".*".to_owned(),
                        Middle::NonEmpty => ".+".to_owned(),
                        Middle::Contains(needle) => format!(".*{needle:?}.*"),
                    };
                    format!("{:?}{middle}{:?}", shape.prefix, shape.suffix)
                })
                .collect();
            format!("shapes {}", shapes.join(" | "))
        }
        Plan::Regex(_) => "regex".to_owned(),
    }
}

#[test]
fn plans() {
    let check = |pattern: &str, expected: &str| {
        assert_eq!(plan(&build(Regex, pattern)), expected, "{pattern:?}");
    };
    check("a", r#"set ["a"]"#);
    check("", r#"set [""]"#);
    check("c|a|b|a", r#"set ["a", "b", "c"]"#);
    check("foo|bar", r#"set ["bar", "foo"]"#);
    check("(foo)", r#"set ["foo"]"#);
    check("a?", r#"set ["", "a"]"#);
    check("(?i)no", r#"set ["NO", "No", "nO", "no"]"#);
    // Case folding includes the Kelvin sign, as in Go.
    check("(?i)k", "set [\"K\", \"k\", \"\u{212a}\"]");
    check("node-[1-3]", r#"set ["node-1", "node-2", "node-3"]"#);
    check("x{2,3}", r#"set ["xx", "xxx"]"#);
    check(r"[^\x00-\x{10FFFF}]", "set []");
    check(".*", r#"shapes "".*"""#);
    check(".+", r#"shapes "".+"""#);
    check(".*?", r#"shapes "".*"""#);
    check("(?s:.)*", r#"shapes "".*"""#);
    check("foo.*", r#"shapes "foo".*"""#);
    check("foo.+", r#"shapes "foo".+"""#);
    check(".*foo", r#"shapes "".*"foo""#);
    check(".*foo.*", r#"shapes "".*"foo".*"""#);
    check("a.*b", r#"shapes "a".*"b""#);
    check("a(b)c.*", r#"shapes "abc".*"""#);
    check("(foo.*|bar.+)", r#"shapes "foo".*"" | "bar".+"""#);
    check(
        "(?i:no)|x.*",
        r#"shapes "NO""" | "No""" | "nO""" | "no""" | "x".*"""#,
    );
    check("(?i)no|x.*", "regex");
    // Anything else, or anything in doubt, runs the regex.
    check("(?-s:.)*", "regex");
    check("(?i)foo.*", "regex");
    check("[a-z]+", "regex");
    check(r"\d+", "regex");
    check("^foo.*", "regex");
    check("[0-9]{3}", "regex");
    check(".*a.*b.*", "regex");
    check("(a|b)*", "regex");
    check(".{2,}", "regex");
}

#[test]
fn set_values() {
    let check = |kind: MatchKind, pattern: &str, expected: Option<&[&str]>| {
        let matcher = build(kind, pattern);
        let got: Option<Vec<&str>> = matcher
            .set_values()
            .map(|values| values.iter().map(String::as_str).collect());
        assert_eq!(got.as_deref(), expected, "{kind} {pattern:?}");
    };
    check(Equal, "x", Some(&["x"]));
    check(Equal, "", Some(&[""]));
    check(Equal, "a|b", Some(&["a|b"]));
    check(NotEqual, "x", None);
    check(Regex, "b|a", Some(&["a", "b"]));
    check(Regex, "a|", Some(&["", "a"]));
    check(Regex, "(?i)a", Some(&["A", "a"]));
    check(Regex, r"[^\x00-\x{10FFFF}]", Some(&[]));
    check(NotRegex, "a|b", None);
    check(Regex, "a.*", None);
    check(Regex, "[0-9]{3}", None);
}

#[test]
fn literal_prefix() {
    let check = |kind: MatchKind, pattern: &str, expected: Option<&str>| {
        assert_eq!(
            build(kind, pattern).literal_prefix(),
            expected,
            "{kind} {pattern:?}"
        );
    };
    check(Regex, "api-.*", Some("api-"));
    check(Regex, "api-.+", Some("api-"));
    check(Regex, "api-[0-9]+", Some("api-"));
    check(Regex, "api|apex", Some("ap"));
    check(Regex, "foo", Some("foo"));
    check(Regex, "(foo)bar.*", Some("foobar"));
    check(Regex, r"\bfoo.*", Some("foo"));
    check(Regex, "fo{2}.*", Some("foo"));
    check(Regex, "(ab)+c", Some("ab"));
    check(Regex, ".*x", None);
    check(Regex, "(?i)api.*", None);
    check(Regex, "a?b", None);
    check(Regex, "", None);
    check(Regex, "é|ê", None);
    check(NotRegex, "foo.*", None);
    check(Equal, "foo", None);
}

#[test]
fn errors() {
    let check = |pattern: &str, limits: MatcherLimits, expected: &str| match Matcher::with_limits(
        Regex, "l", pattern, &limits,
    ) {
        Ok(matcher) => panic!("{pattern:?} built as {}", plan(&matcher)),
        Err(err) => {
            let message = err.to_string();
            assert!(message.contains(expected), "{pattern:?}: {message}");
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    };
    let default = MatcherLimits::default();
    check("(", default, "unclosed group at byte 0");
    check("a)", default, "unopened group");
    check("a)|(b", default, "unopened group");
    check("[z-a]", default, "invalid character class range");
    check("*", default, "repetition operator missing expression");
    check(r"\Qa\E", default, "unrecognized escape");
    check(r"(?-u:\xff)", default, "invalid UTF-8");
    check(r"[\d]\xff(?-u:\xff)", default, "invalid UTF-8");
    check("(?x)a # comment", default, "the x flag is not supported");
    check("(?x:a)", default, "the x flag is not supported");
    check(
        &format!("{}a{}", "(".repeat(300), ")".repeat(300)),
        default,
        "nest",
    );
    let tight = MatcherLimits {
        pattern_bytes_max: 3,
        ..default
    };
    check(
        "abcd",
        tight,
        "regex pattern is 4 bytes, over the limit of 3",
    );
    assert!(Matcher::with_limits(Regex, "l", "abc", &tight).is_ok());
    check("(x{1000}){1000}", default, "raise regex_size_max");
}

#[test]
fn limits_fail_fast_with_typed_errors() {
    let huge = "a".repeat(1 << 20);
    assert_eq!(
        Matcher::new(Regex, "l", &huge).unwrap_err(),
        MatcherError::PatternTooLong {
            bytes: 1 << 20,
            max: 4096
        }
    );
    // Far over the compiled size limit; compilation stops when it crosses the limit.
    for pattern in ["(x{1000}){1000}", "((a{100}){100}){100}", r"\w{1000}{1000}"] {
        assert_eq!(
            Matcher::new(Regex, "l", pattern).unwrap_err(),
            MatcherError::RegexTooLarge {
                pattern: pattern.to_owned(),
                max: 1 << 20
            },
            "{pattern:?}"
        );
    }
    // The same pattern builds once the limit is raised.
    let roomy = MatcherLimits {
        regex_size_max: 64 << 20,
        ..MatcherLimits::default()
    };
    assert!(Matcher::with_limits(Regex, "l", "(x{100}){100}", &roomy).is_ok());
    // Equality matchers have no pattern to bound.
    assert!(Matcher::new(Equal, "l", &huge).is_ok());
}

#[test]
fn display() {
    let check = |kind: MatchKind, name: &str, value: &str, expected: &str| {
        let matcher = Matcher::new(kind, name, value).unwrap();
        assert_eq!(matcher.to_string(), expected);
    };
    check(Equal, "job", "api", r#"job="api""#);
    check(NotEqual, "job", "", r#"job!="""#);
    check(Regex, "path", "/api/.*", r#"path=~"/api/.*""#);
    check(NotRegex, "code", r"5\d\d", r#"code!~"5\\d\\d""#);
    check(Equal, "a", r#"say "hi""#, r#"a="say \"hi\"""#);
    check(
        Equal,
        "a",
        "\t\n\r\x07\x08\x0b\x0c",
        r#"a="\t\n\r\a\b\v\f""#,
    );
    check(Equal, "a", "\0\x1b\x7f", r#"a="\x00\x1b\x7f""#);
    check(
        Equal,
        "a",
        "\u{a0}\u{200b}\u{85}",
        r#"a="\u00a0\u200b\u0085""#,
    );
    check(Equal, "a", "é ✓ 😀", r#"a="é ✓ 😀""#);
    check(Equal, "__name__", "up", r#"__name__="up""#);
    check(Equal, "my.label", "x", r#""my.label"="x""#);
    check(Equal, "1a", "x", r#""1a"="x""#);
    assert_eq!(MatchKind::NotRegex.to_string(), "!~");
}

#[test]
fn equality_compares_kind_name_and_value() {
    assert_eq!(build(Regex, "a.*"), build(Regex, "a.*"));
    assert_ne!(build(Regex, "a.*"), build(NotRegex, "a.*"));
    assert_ne!(build(Regex, "a.*"), build(Regex, "a.+"));
    assert_ne!(
        build(Regex, "a.*"),
        Matcher::new(Regex, "m", "a.*").unwrap()
    );
    assert_eq!(
        Matcher::equal("a", "b"),
        build(Equal, "b").clone_with_name("a")
    );
}

impl Matcher {
    fn clone_with_name(&self, name: &str) -> Matcher {
        Matcher {
            name: name.to_owned(),
            ..self.clone()
        }
    }
}

/// Patterns from a small grammar that reaches every plan: literals, `.`, `.*`, `.+`,
/// classes, optional pieces, groups of alternatives, case-insensitive groups.
fn arb_pattern() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        8 => "[abAé]{1,3}",
        4 => Just(".*".to_owned()),
        2 => Just(".+".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just(".*?".to_owned()),
        1 => Just("(?-s:.)".to_owned()),
        1 => Just("(?-s:.)*".to_owned()),
        1 => Just("[a-b]".to_owned()),
        1 => Just("[^a]".to_owned()),
        1 => Just(r"\n".to_owned()),
        1 => Just("b?".to_owned()),
        1 => Just("a{1,2}".to_owned()),
        1 => Just("^".to_owned()),
        1 => Just("$".to_owned()),
    ];
    let concat = |atom: BoxedStrategy<String>, max: usize| {
        prop::collection::vec(atom, 0..max).prop_map(|parts| parts.concat())
    };
    let atom = atom.boxed();
    let group = prop::collection::vec(concat(atom.clone(), 3), 1..4)
        .prop_map(|alternatives| alternatives.join("|"));
    let piece = prop_oneof![
        4 => atom,
        1 => group.clone().prop_map(|g| format!("({g})")),
        1 => group.clone().prop_map(|g| format!("(?i:{g})")),
        1 => group.prop_map(|g| format!("(?:{g})?")),
    ];
    prop::collection::vec(concat(piece.boxed(), 4), 1..4).prop_map(|branches| branches.join("|"))
}

fn arb_values() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[abAéx\n]{0,7}", 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever plan a pattern gets, it accepts exactly what the anchored regex accepts.
    #[test]
    fn plans_agree_with_the_regex(pattern in arb_pattern(), values in arb_values()) {
        let reference = regex::Regex::new(&format!("^(?s:{pattern})$")).unwrap();
        let matcher = build(Regex, &pattern);
        let negated = build(NotRegex, &pattern);
        for value in values.iter().map(String::as_str).chain([""]) {
            let expected = reference.is_match(value);
            prop_assert_eq!(matcher.matches(value), expected, "{:?} on {:?} ({})", pattern, value, plan(&matcher));
            prop_assert_eq!(negated.matches(value), !expected);
            if let Some(set) = matcher.set_values() {
                prop_assert_eq!(set.binary_search_by(|v| v.as_str().cmp(value)).is_ok(), expected);
            }
            if let (Some(prefix), true) = (matcher.literal_prefix(), expected) {
                prop_assert!(value.starts_with(prefix), "{:?} accepted {:?} without prefix {:?}", pattern, value, prefix);
            }
        }
        if let Some(set) = matcher.set_values() {
            prop_assert!(set.windows(2).all(|w| w[0] < w[1]));
            for value in set {
                prop_assert!(reference.is_match(value), "{:?} does not accept its set value {:?}", pattern, value);
            }
        }
    }

    #[test]
    fn equality_matchers_compare_bytes(value in "[aé]{0,3}", other in "[aé]{0,3}") {
        prop_assert_eq!(Matcher::equal("l", &value).matches(&other), value == other);
        prop_assert_eq!(Matcher::not_equal("l", &value).matches(&other), value != other);
    }
}
