//! Text the gateway places in HTML and markdown (result links in chat content): escaped so that
//! a URL, whatever it carries, stays one attribute value or one link target.

use std::fmt::Write as _;

/// `s` for an HTML attribute value (quoted with `'` or `"`): `&`, `<`, `>`, `"` and `'` as
/// character references.
pub(crate) fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `url` as a markdown link target: every byte that could end the target or start markup
/// (whitespace, controls, brackets, quotes, `<`, `>`, `\`, non-ASCII) percent-encoded. `%`
/// itself is kept, so an already encoded URL is unchanged.
pub(crate) fn markdown_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        let keep = b.is_ascii_graphic()
            && !matches!(
                b,
                b'(' | b')'
                    | b'['
                    | b']'
                    | b'<'
                    | b'>'
                    | b'"'
                    | b'\''
                    | b'\\'
                    | b'`'
                    | b'{'
                    | b'}'
                    | b'|'
            );
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_cannot_be_left() {
        assert_eq!(
            attr("http://x/'><script>alert(1)</script>&\""),
            "http://x/&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(attr("https://a.test/m/1?x=1"), "https://a.test/m/1?x=1");
    }

    #[test]
    fn markdown_targets_cannot_be_left() {
        assert_eq!(
            markdown_url("https://a.test/x) ![b](https://evil/"),
            "https://a.test/x%29%20!%5Bb%5D%28https://evil/"
        );
        assert_eq!(markdown_url("https://a.test/é"), "https://a.test/%C3%A9");
        let plain = "https://lh3.googleusercontent.com/abc=s0?x=1&y=%20";
        assert_eq!(markdown_url(plain), plain);
    }
}
