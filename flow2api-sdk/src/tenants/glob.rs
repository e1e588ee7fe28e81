//! The model patterns of a key: `*` stands for any run of characters (none included), `?` for
//! exactly one, everything else for itself.

/// Whether `text` matches `pattern` as a whole. Linear in practice: the classic backtracking
/// to the last `*` only, so no pattern can make it take exponential time.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and try again.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a pattern is one a key may hold: 1–200 characters, printable, no spaces.
pub(crate) fn is_valid(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.len() <= 200 && pattern.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", ""));
        assert!(matches("*", "veo_3_1_t2v_fast"));
        assert!(matches("veo_*", "veo_3_1_t2v_fast"));
        assert!(!matches("veo_*", "imagen-4.0-generate-preview-landscape"));
        assert!(matches("*-landscape", "gemini-3.1-flash-image-landscape"));
        assert!(!matches("*-landscape", "gemini-3.1-flash-image-portrait"));
        assert!(matches("gemini-3.?-*", "gemini-3.1-flash-image-landscape"));
        assert!(!matches("gemini-3.?-*", "gemini-30-flash"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(!matches("exactly", "exact"));
        assert!(matches("**", "x"));
    }

    #[test]
    fn no_exponential_backtracking() {
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &text));
    }

    #[test]
    fn validity() {
        assert!(is_valid("veo_*"));
        assert!(!is_valid(""));
        assert!(!is_valid("a b"));
        assert!(!is_valid(&"a".repeat(201)));
    }
}
