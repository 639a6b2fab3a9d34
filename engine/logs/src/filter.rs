//! The token filter of a sealed page: a Bloom filter of the byte trigrams its lines contain,
//! so that a line filter (`|= "timeout"`) or a needle search skips a page, and a block all of
//! whose pages it skips, without decompressing anything.
//!
//! Trigrams rather than words because a line filter is a substring match: a line that
//! contains `imeou` contains each of its three-byte windows (`ime`, `meo`, `eou`), whatever
//! the words around it, so a page missing any of them cannot hold a match. Letters are folded
//! to ASCII lower case on both sides, so one filter serves `|=` and case-insensitive
//! `|~ "(?i)…"` needles alike: a line containing `ERROR` contains `error` folded.
//!
//! ```text
//! filter   m bits, m a power of two ≥ 64, bit i at byte i / 8, bit i % 8 (least first)
//! trigram  g = b0 | b1 << 8 | b2 << 16 of three consecutive line bytes, ASCII A–Z folded
//! probes   h = mix(g) (splitmix64's finaliser); h1 = h >> 32, h2 = (h as u32) | 1;
//!          bits (h1 + i·h2) mod m for i in 0..5
//! size     m = the next power of two ≥ 10 bits × distinct trigrams (about 1% false
//!          positives for one trigram); a page whose lines have no trigram has no filter
//! ```
//!
//! A filter can answer "maybe" for a page without a match (a false positive costs one page
//! read); it never answers "no" for a page with one. The tests check both.

/// Bits per distinct trigram.
const BITS_PER_TRIGRAM: usize = 10;
/// Probes per trigram.
const PROBES: u32 = 5;
/// The smallest filter, in bits.
const MIN_BITS: usize = 64;

fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

fn trigram(w: &[u8]) -> u32 {
    u32::from(fold(w[0])) | u32::from(fold(w[1])) << 8 | u32::from(fold(w[2])) << 16
}

fn mix(g: u32) -> u64 {
    let mut h = u64::from(g).wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// The bit positions of trigram `g` in a filter of `bits` bits (a power of two).
fn probes(g: u32, bits: usize) -> impl Iterator<Item = usize> {
    let h = mix(g);
    let h1 = (h >> 32) as u32;
    let h2 = (h as u32) | 1;
    let mask = bits - 1;
    (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) & mask)
}

/// Collects the trigrams of a page's lines and writes their filter.
#[derive(Debug, Default)]
pub struct FilterBuilder {
    grams: Vec<u32>,
}

impl FilterBuilder {
    /// Adds the trigrams of one line.
    pub fn add_line(&mut self, line: &[u8]) {
        self.grams.extend(line.windows(3).map(trigram));
        // Keep the buffer near the distinct count on long pages of repetitive lines.
        if self.grams.len() > 1 << 20 {
            self.grams.sort_unstable();
            self.grams.dedup();
        }
    }

    /// The filter's bytes (empty when no line had three bytes), leaving the builder empty.
    pub fn finish(&mut self) -> Vec<u8> {
        self.grams.sort_unstable();
        self.grams.dedup();
        if self.grams.is_empty() {
            return Vec::new();
        }
        let bits = (self.grams.len() * BITS_PER_TRIGRAM)
            .next_power_of_two()
            .max(MIN_BITS);
        let mut filter = vec![0u8; bits / 8];
        for &g in &self.grams {
            for bit in probes(g, bits) {
                filter[bit / 8] |= 1 << (bit % 8);
            }
        }
        self.grams.clear();
        filter
    }
}

/// Whether `bytes` can be a filter as [`FilterBuilder::finish`] writes one.
pub fn is_valid_filter(bytes: &[u8]) -> bool {
    bytes.is_empty() || (bytes.len() * 8 >= MIN_BITS && bytes.len().is_power_of_two())
}

/// What a page's lines must contain for a line to hold a needle: its trigrams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    grams: Vec<u32>,
}

impl Needle {
    /// The needle of a case-sensitive substring (`|= "…"`); `None` when it is shorter than a
    /// trigram, which no filter can decide.
    pub fn exact(needle: &str) -> Option<Needle> {
        Needle::from_grams(needle.as_bytes().windows(3).map(trigram).collect())
    }

    /// The needle of a case-insensitive substring (`(?i)…`). Unicode case folding matches
    /// more than ASCII folding does (`k` also matches the Kelvin sign U+212A, `s` the long s
    /// U+017F, and non-ASCII letters their other cases), so only trigrams of ASCII bytes
    /// other than those two letters count; `None` when none is left.
    pub fn case_insensitive(needle: &str) -> Option<Needle> {
        let plain = |b: &u8| b.is_ascii() && !matches!(b, b'k' | b'K' | b's' | b'S');
        Needle::from_grams(
            needle
                .as_bytes()
                .windows(3)
                .filter(|w| w.iter().all(plain))
                .map(trigram)
                .collect(),
        )
    }

    fn from_grams(mut grams: Vec<u32>) -> Option<Needle> {
        grams.sort_unstable();
        grams.dedup();
        (!grams.is_empty()).then_some(Needle { grams })
    }
}

/// Whether a page with `filter` may hold a line containing `needle`: `false` only when some
/// trigram of the needle is certainly absent.
pub fn may_contain(filter: &[u8], needle: &Needle) -> bool {
    if filter.is_empty() {
        // No line of the page has a trigram, and the needle has one.
        return false;
    }
    let bits = filter.len() * 8;
    needle.grams.iter().all(|&g| {
        probes(g, bits).all(|bit| {
            filter
                .get(bit / 8)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(lines: &[&str]) -> Vec<u8> {
        let mut b = FilterBuilder::default();
        for l in lines {
            b.add_line(l.as_bytes());
        }
        b.finish()
    }

    /// A fixed pseudo-random sequence, so a failure repeats.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_line(rng: &mut Rng) -> String {
        const WORDS: [&str; 16] = [
            "GET",
            "/api/v1/query",
            "status=500",
            "timeout",
            "user_id=",
            "ERROR",
            "info",
            "connection",
            "refused",
            "latency_ms=",
            "trace_id",
            "Ünïcödé",
            "ok",
            "retry",
            "k8s",
            "Kelvin",
        ];
        let n = 1 + rng.below(12);
        (0..n)
            .map(|_| {
                let w = WORDS[rng.below(WORDS.len())];
                format!("{w}{}", rng.below(1000))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_page_holding_a_needle_is_never_skipped() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let lines: Vec<String> = (0..1 + rng.below(50))
                .map(|_| random_line(&mut rng))
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let filter = filter_of(&refs);
            assert!(is_valid_filter(&filter));
            for _ in 0..50 {
                let line = lines[rng.below(lines.len())].as_bytes();
                let start = rng.below(line.len());
                let end = (start + 3 + rng.below(20)).min(line.len());
                let Ok(sub) = std::str::from_utf8(&line[start..end]) else {
                    continue;
                };
                if let Some(n) = Needle::exact(sub) {
                    assert!(may_contain(&filter, &n), "{sub:?} skipped in {lines:?}");
                }
                let upper = sub.to_uppercase();
                if let Some(n) = Needle::case_insensitive(&upper) {
                    assert!(may_contain(&filter, &n), "(?i){upper:?} skipped");
                }
            }
        }
    }

    #[test]
    fn case_insensitive_needles_leave_out_what_unicode_folds_beyond_ascii() {
        // `(?i)kelvin` matches the Kelvin sign; the filter folds ASCII only, so the needle
        // must not ask for the trigrams holding `k`.
        let filter = filter_of(&["temperature 300 \u{212A}elvin reached"]);
        let n = Needle::case_insensitive("KELVIN").expect("elv, lvi, vin remain");
        assert!(may_contain(&filter, &n));
        assert!(Needle::case_insensitive("kSk").is_none());
        assert!(Needle::case_insensitive("ÉÉ").is_none());
        // A case-sensitive needle is exact bytes: the Kelvin sign is not `K`.
        assert!(!may_contain(&filter, &Needle::exact("Kelvin").unwrap()));
    }

    #[test]
    fn needles_shorter_than_a_trigram_cannot_be_decided() {
        assert_eq!(Needle::exact("ab"), None);
        assert_eq!(Needle::exact(""), None);
        assert!(Needle::exact("abc").is_some());
    }

    #[test]
    fn absent_needles_are_skipped_nearly_always() {
        let mut rng = Rng(7);
        let lines: Vec<String> = (0..2_000).map(|_| random_line(&mut rng)).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let filter = filter_of(&refs);
        let mut maybe = 0;
        let mut absent = 0;
        for i in 0..10_000u32 {
            // Needles of letters the lines do not hold together: `qzx…`-like words.
            let needle: String = (0..6)
                .map(|j| char::from(b'a' + ((i.wrapping_mul(7919) >> (j * 3)) % 26) as u8))
                .collect();
            if refs
                .iter()
                .any(|l| l.to_ascii_lowercase().contains(&needle))
            {
                continue;
            }
            absent += 1;
            maybe += u32::from(may_contain(&filter, &Needle::exact(&needle).unwrap()));
        }
        assert!(absent > 5_000, "{absent}");
        let rate = f64::from(maybe) / f64::from(absent);
        assert!(rate < 0.02, "false positives {rate}");
    }

    #[test]
    fn a_page_without_trigrams_has_no_filter_and_holds_no_needle() {
        let filter = filter_of(&["", "ab", "x"]);
        assert!(filter.is_empty());
        assert!(!may_contain(&filter, &Needle::exact("abc").unwrap()));
    }
}
