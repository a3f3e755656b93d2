//! IAM's wildcard matching: `*` matches any run of characters (including none), `?` matches
//! exactly one character; everything else matches itself. Actions match case-insensitively,
//! resources and condition values case-sensitively.

/// Whether `text` matches `pattern`. Linear in practice: on a mismatch it backtracks only to
/// the last `*`, so the worst case is `pattern.len() * text.len()` character steps, both
/// bounded by the policy size limit and the request.
pub fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was, and the text position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || (pattern[p] != '*' && same(pattern[p], text[t]))) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last `*` swallow one more character and try again after it.
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_as_iam_does() {
        for (pattern, text, ignore_case, expected) in [
            ("*", "", false, true),
            ("*", "anything:at/all", false, true),
            ("kinesis:*", "kinesis:PutRecord", true, true),
            ("kinesis:put*", "kinesis:PutRecord", true, true),
            ("kinesis:put*", "kinesis:PutRecord", false, false),
            ("kinesis:Get?ecords", "kinesis:GetRecords", true, true),
            ("kinesis:Get?ecords", "kinesis:Getecords", true, false),
            ("arn:aws:kinesis:*:*:stream/orders", "arn:aws:kinesis:us-east-1:1:stream/orders", false, true),
            ("arn:aws:kinesis:*:*:stream/orders", "arn:aws:kinesis:us-east-1:1:stream/orders2", false, false),
            ("arn:*:stream/ord*s", "arn:aws:kinesis:r:1:stream/orders", false, true),
            ("a*b*c", "aXbYbZc", false, true),
            ("a*b*c", "aXbYbZ", false, false),
            ("", "", false, true),
            ("", "x", false, false),
            ("??", "é!", false, true),
            ("**", "x", false, true),
        ] {
            assert_eq!(matches(pattern, text, ignore_case), expected, "{pattern:?} vs {text:?}");
        }
    }

    /// The reference: the pattern turned into an anchored regular expression.
    fn reference(pattern: &str, text: &str) -> bool {
        let mut expression = String::from("(?s)^");
        for c in pattern.chars() {
            match c {
                '*' => expression.push_str(".*"),
                '?' => expression.push('.'),
                c => expression.push_str(&regex::escape(&c.to_string())),
            }
        }
        expression.push('$');
        regex::Regex::new(&expression).unwrap().is_match(text)
    }

    proptest! {
        #[test]
        fn agrees_with_a_regular_expression(pattern in "[ab*?]{0,8}", text in "[ab]{0,10}") {
            prop_assert_eq!(matches(&pattern, &text, false), reference(&pattern, &text));
        }

        #[test]
        fn a_text_matches_itself_and_its_generalisations(text in "[a-zA-Z:/-]{0,16}", cut in 0usize..16, len in 0usize..6) {
            prop_assert!(matches(&text, &text, false));
            let cut = cut.min(text.len());
            let end = (cut + len).min(text.len());
            let starred = format!("{}*{}", &text[..cut], &text[end..]);
            prop_assert!(matches(&starred, &text, false), "{} vs {}", starred, text);
            if cut < text.len() {
                let questioned = format!("{}?{}", &text[..cut], &text[cut + 1..]);
                prop_assert!(matches(&questioned, &text, false));
            }
            prop_assert!(matches(&text.to_uppercase(), &text.to_lowercase(), true));
        }
    }
}
