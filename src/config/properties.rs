//! Reader and formatter for Java `.properties` files, as used by rampart's configuration.
//!
//! [`parse`] follows `java.util.Properties.load`: natural lines end with `\n`, `\r` or `\r\n`;
//! a line ending in an odd number of backslashes continues onto the next one; `#` and `!` start
//! comments; keys end at the first unescaped `=`, `:` or whitespace; and `\t \n \r \f \uXXXX`
//! escapes are decoded. Unlike Java, `\u` surrogate pairs must form a valid char. Every entry
//! carries the 1-based line on which its logical line starts, so errors can be reported as
//! `file:line`. [`format_entry`] writes a line that [`parse`] reads back exactly.

use std::fmt::Write as _;
use std::str::Chars;

/// One `key = value` entry of a properties file, with the 1-based line on which it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The unescaped key.
    pub key: String,
    /// The unescaped value (empty when the line holds only a key).
    pub value: String,
    /// The 1-based line number where the entry's logical line starts.
    pub line: usize,
    /// The 1-based line number where it ends (later than `line` for continued lines).
    pub last_line: usize,
}

/// Why a properties text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The 1-based line number where the offending logical line starts.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

const BAD_HEX: &str = "bad \\u escape: expected four hex digits";
const LONE_SURROGATE: &str = "bad \\u escape: lone surrogate";

/// Reads every entry of a properties text in file order (duplicates are kept; the caller decides).
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = natural_lines(text).enumerate();
    let mut entries = Vec::new();
    while let Some((index, raw)) = lines.next() {
        let first = skip_ws(raw);
        if first.is_empty() || first.starts_with(['#', '!']) {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut piece = first;
        let mut last = index;
        while ends_with_odd_backslashes(piece) {
            logical.push_str(piece.strip_suffix('\\').unwrap_or(piece));
            piece = match lines.next() {
                Some((at, next)) => {
                    last = at;
                    skip_ws(next)
                }
                None => "",
            };
        }
        logical.push_str(piece);
        let mut entry = split_entry(&logical, index + 1)?;
        entry.last_line = last + 1;
        entries.push(entry);
    }
    Ok(entries)
}

/// Formats one entry as a properties line (no trailing newline) that `parse` reads back to exactly `key` and `value`.
pub fn format_entry(key: &str, value: &str) -> String {
    let mut out = String::with_capacity(key.len() + value.len() + 1);
    escape_into(&mut out, key, true);
    out.push('=');
    escape_into(&mut out, value, false);
    out
}

/// `text` with each `(entry, value)` set: an entry's lines are replaced by one line with the new
/// value, in place, keeping the key as written; keys not in the text are appended. Comments,
/// blank lines and the order of keys stay as they were. Line endings become `\n`.
pub fn update(text: &str, changes: &[(&Entry, String)], appended: &[(String, String)]) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len() + 64);
    let mut skip_until = 0;
    for (index, line) in natural_lines(text).enumerate() {
        let number = index + 1;
        if number <= skip_until {
            continue;
        }
        match changes.iter().find(|(entry, _)| entry.line == number) {
            Some((entry, value)) => {
                out.push_str(&format_entry(&entry.key, value));
                skip_until = entry.last_line;
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (key, value) in appended {
        out.push_str(&format_entry(key, value));
        out.push('\n');
    }
    out
}

/// Splits text into natural lines, treating `\n`, `\r` and `\r\n` as terminators.
fn natural_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(at) => {
                let (line, tail) = current.split_at(at);
                let tail = tail.strip_prefix("\r\n").or_else(|| tail.get(1..));
                rest = tail.filter(|t| !t.is_empty());
                Some(line)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Skips leading properties whitespace (space, tab, form feed).
fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\x0c'])
}

/// True when `s` ends with an odd number of backslashes, i.e. the line is continued.
fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into key and value and unescapes both.
fn split_entry(logical: &str, line: usize) -> Result<Entry, ParseError> {
    let mut key_end = logical.len();
    let mut escaped = false;
    for (i, b) in logical.bytes().enumerate() {
        if !escaped && matches!(b, b'=' | b':' | b' ' | b'\t' | b'\x0c') {
            key_end = i;
            break;
        }
        escaped = b == b'\\' && !escaped;
    }
    let (raw_key, rest) = logical.split_at(key_end);
    let rest = skip_ws(rest);
    let raw_value = skip_ws(rest.strip_prefix(['=', ':']).unwrap_or(rest));
    Ok(Entry { key: unescape(raw_key, line)?, value: unescape(raw_value, line)?, line, last_line: line })
}

/// Decodes backslash escapes in a key or value.
fn unescape(raw: &str, line: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => out.push(unicode_escape(&mut chars, line)?),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Decodes the rest of a `\uXXXX` escape, combining a surrogate pair written as two escapes.
fn unicode_escape(chars: &mut Chars<'_>, line: usize) -> Result<char, ParseError> {
    let high = hex4(chars, line)?;
    let code = if (0xD800..=0xDBFF).contains(&high) {
        if chars.next() != Some('\\') || chars.next() != Some('u') {
            return Err(error(line, LONE_SURROGATE));
        }
        let low = hex4(chars, line)?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return Err(error(line, LONE_SURROGATE));
        }
        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    } else {
        high
    };
    char::from_u32(code).ok_or_else(|| error(line, LONE_SURROGATE))
}

/// Reads exactly four hex digits.
fn hex4(chars: &mut Chars<'_>, line: usize) -> Result<u32, ParseError> {
    (0..4).try_fold(0, |acc, _| {
        let digit = chars.next().and_then(|c| c.to_digit(16));
        digit.map(|d| acc * 16 + d).ok_or_else(|| error(line, BAD_HEX))
    })
}

/// Builds a [`ParseError`].
fn error(line: usize, message: &str) -> ParseError {
    ParseError { line, message: message.to_owned() }
}

/// Appends `s` escaped as a key (`is_key`) or as a value.
fn escape_into(out: &mut String, s: &str, is_key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if is_key && i == 0 => {
                out.push('\\');
                out.push(c);
            }
            // A leading BOM would be dropped if this line starts the file.
            c if c.is_control() || (is_key && i == 0 && c == '\u{feff}') => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, line: usize) -> Entry {
        Entry { key: key.into(), value: value.into(), line, last_line: line }
    }

    fn one(text: &str) -> (String, String) {
        let entries = parse(text).expect("parses");
        assert_eq!(entries.len(), 1, "{text:?} -> {entries:?}");
        (entries[0].key.clone(), entries[0].value.clone())
    }

    fn kv(key: &str, value: &str) -> (String, String) {
        (key.into(), value.into())
    }

    #[test]
    fn separator_forms() {
        assert_eq!(one("key=value"), kv("key", "value"));
        assert_eq!(one("key:value"), kv("key", "value"));
        assert_eq!(one("key value"), kv("key", "value"));
        assert_eq!(one("key = value"), kv("key", "value"));
        assert_eq!(one("key\t:\tvalue"), kv("key", "value"));
        assert_eq!(one("key \x0c  value"), kv("key", "value"));
        assert_eq!(one("   key   =   value"), kv("key", "value"));
    }

    #[test]
    fn only_one_separator_is_consumed() {
        assert_eq!(one("a==b"), kv("a", "=b"));
        assert_eq!(one("a = : b"), kv("a", ": b"));
        assert_eq!(one("a b=c"), kv("a", "b=c"));
        assert_eq!(one("a :=b"), kv("a", "=b"));
    }

    #[test]
    fn empty_values() {
        assert_eq!(one("key"), kv("key", ""));
        assert_eq!(one("key="), kv("key", ""));
        assert_eq!(one("key :   "), kv("key", ""));
        assert_eq!(one("  key  "), kv("key", ""));
        assert_eq!(one("=value"), kv("", "value"));
    }

    #[test]
    fn trailing_whitespace_is_kept() {
        assert_eq!(one("a = b  \t"), kv("a", "b  \t"));
    }

    #[test]
    fn blank_and_comment_lines_are_skipped() {
        let text = "# comment\n  ! bang comment\n\n   \n\t\x0c\na=1\n#b=2\n  #c=3\n";
        assert_eq!(parse(text).unwrap(), vec![entry("a", "1", 6)]);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(one("a=b # not a comment"), kv("a", "b # not a comment"));
    }

    #[test]
    fn comment_line_cannot_be_continued() {
        let text = "# comment \\\na=b\n! other \\\nc=d";
        assert_eq!(parse(text).unwrap(), vec![entry("a", "b", 2), entry("c", "d", 4)]);
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(one("a = one \\\n     two"), kv("a", "one two"));
        assert_eq!(one("a = x\\\n\t\x0c y\\\n z"), kv("a", "xyz"));
        assert_eq!(one("lo\\\n  ng = v"), kv("long", "v"));
        assert_eq!(one("a =\\\n  v"), kv("a", "v"));
        // A continuation line starting with `#` is content, not a comment.
        assert_eq!(one("a = x\\\n  #y"), kv("a", "x#y"));
        // Three backslashes: one escaped backslash plus a continuation.
        assert_eq!(one("a = x\\\\\\\ny"), kv("a", "x\\y"));
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        let text = "a = x\\\\\nb = y";
        assert_eq!(parse(text).unwrap(), vec![entry("a", "x\\", 1), entry("b", "y", 2)]);
    }

    #[test]
    fn blank_continuation_line_ends_logical_line() {
        let text = "a = x\\\n   \nb = y";
        let a = Entry { last_line: 2, ..entry("a", "x", 1) };
        assert_eq!(parse(text).unwrap(), vec![a, entry("b", "y", 3)]);
    }

    #[test]
    fn continuation_at_end_of_input_drops_backslash() {
        assert_eq!(one("a = x\\"), kv("a", "x"));
        assert_eq!(one("a = x\\\n"), kv("a", "x"));
    }

    #[test]
    fn line_numbers_across_terminators_and_continuations() {
        let text = "a=1\r\nb=2\rc=3\n\r\nd = 4 \\\r\n  5 \\\r  6\ne=7\r\n\r\n# c\r\nf=8";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                entry("a", "1", 1),
                entry("b", "2", 2),
                entry("c", "3", 3),
                Entry { last_line: 7, ..entry("d", "4 5 6", 5) },
                entry("e", "7", 8),
                entry("f", "8", 11),
            ]
        );
    }

    #[test]
    fn bom_is_ignored() {
        assert_eq!(parse("\u{feff}a=b\nc=d").unwrap(), vec![entry("a", "b", 1), entry("c", "d", 2)]);
        assert_eq!(parse("\u{feff}# c\na=b").unwrap(), vec![entry("a", "b", 2)]);
        // Only at the very start.
        assert_eq!(one("a=\u{feff}"), kv("a", "\u{feff}"));
    }

    #[test]
    fn simple_escapes() {
        assert_eq!(one("a = \\t\\n\\r\\f"), kv("a", "\t\n\r\x0c"));
        assert_eq!(one("a = \\=\\:\\ \\\\\\#\\!\\z"), kv("a", "=: \\#!z"));
        assert_eq!(one("a\\ b\\=c\\:d = v"), kv("a b=c:d", "v"));
        assert_eq!(one("\\#key = v"), kv("#key", "v"));
        assert_eq!(one("a = \\ lead"), kv("a", " lead"));
        assert_eq!(one("k\\\\=v"), kv("k\\", "v"));
        assert_eq!(one("é=ü✓"), kv("é", "ü✓"));
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(one("\\u0041 = \\u00e9\\u00E9x"), kv("A", "ééx"));
        assert_eq!(one("a = \\u0000"), kv("a", "\0"));
        assert_eq!(one("a = \\uD83D\\uDE00!"), kv("a", "😀!"));
        assert_eq!(one("a = \\ud83d\\ude00"), kv("a", "😀"));
    }

    #[test]
    fn bad_unicode_escapes() {
        for bad in ["a=\\u12", "a=\\u12G4", "a=\\u", "a=\\u 123", "\\u00zz=v", "a=\\uD83D\\u12"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err, ParseError { line: 1, message: BAD_HEX.into() }, "{bad:?}");
        }
        for bad in ["a=\\uD83D", "a=\\uD83Dx", "a=\\uD83D\\n", "a=\\uDE00", "a=\\uD83D\\uD83D"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err, ParseError { line: 1, message: LONE_SURROGATE.into() }, "{bad:?}");
        }
    }

    #[test]
    fn error_names_the_right_line() {
        let err = parse("a=1\r\n# c\r\nb = x\\\n  y\nc = \\u00g0\n").unwrap_err();
        assert_eq!(err.line, 5);
        assert_eq!(err.to_string(), "line 5: bad \\u escape: expected four hex digits");
        // Errors in a continued line are reported at the line where it starts.
        assert_eq!(parse("a=1\nb = \\\n \\u12\\\n zz").unwrap_err().line, 2);
        // An escape split by a continuation is joined first, as in Java.
        assert_eq!(one("b = \\u12\\\n  34x"), kv("b", "\u{1234}x"));
    }

    #[test]
    fn format_examples() {
        assert_eq!(format_entry("key", "value"), "key=value");
        assert_eq!(format_entry("a b=c:d", " x y "), "a\\ b\\=c\\:d=\\ x y ");
        assert_eq!(format_entry("#k!", "#v!"), "\\#k!=#v!");
        assert_eq!(format_entry("!k", ""), "\\!k=");
        assert_eq!(format_entry("t\tk", "a\\b\nc\rd\te\x0cf"), "t\\tk=a\\\\b\\nc\\rd\\te\\ff");
        assert_eq!(format_entry("k", "\u{1}\u{7f}é😀"), "k=\\u0001\\u007Fé😀");
        assert_eq!(format_entry("k", "=:v"), "k==:v");
        assert_eq!(format_entry("\u{feff}k", "\u{feff}"), "\\uFEFFk=\u{feff}");
    }

    use crate::test_rng::XorShift;

    const ALPHABET: &[char] = &[
        'a', 'b', 'z', '0', '9', ' ', ' ', '=', ':', '#', '!', '\\', '\\', '\n', '\r', '\t', '\x0c', 'u', 'é', '✓',
        '😀', '\u{1}', '\u{7f}', '\u{85}', '\u{feff}',
    ];

    #[test]
    fn format_then_parse_round_trips() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let mut key = rng.string(ALPHABET, 12);
            if key.is_empty() {
                key.push('k');
            }
            let mut value = rng.string(ALPHABET, 16);
            if rng.below(4) == 0 {
                value = format!("  {value}  ");
            }
            let line = format_entry(&key, &value);
            assert!(!line.contains(['\n', '\r']), "{line:?}");
            let parsed = parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(parsed, vec![entry(&key, &value, 1)], "line {line:?}");
        }
    }

    #[test]
    fn many_entries_parse_in_order_with_lines() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut text = String::new();
        let mut expected = Vec::new();
        let mut line = 1;
        for i in 0..400 {
            match rng.below(4) {
                0 => {
                    text.push_str("# comment \\\r\n");
                    line += 1;
                }
                1 => {
                    text.push_str("   \n");
                    line += 1;
                }
                _ => {}
            }
            let key = format!("key.{i}");
            let value = rng.string(ALPHABET, 10);
            text.push_str(&format_entry(&key, &value));
            text.push_str(["\n", "\r", "\r\n"][rng.below(3)]);
            expected.push(entry(&key, &value, line));
            line += 1;
            if i % 7 == 0 {
                text.push_str(&format!("cont.{i} = a\\\n  b\\\r\n\tc\n"));
                expected.push(Entry { last_line: line + 2, ..entry(&format!("cont.{i}"), "abc", line) });
                line += 3;
            }
        }
        assert_eq!(parse(&text).unwrap(), expected);
    }

    #[test]
    fn update_replaces_in_place_and_appends() {
        let text = "# LiveApp settings\r\nipFilterEnabled=true\n\n# the token\ntimeTokenPeriod = 30\\\n   0\n! end\n";
        let entries = parse(text).unwrap();
        let changed = update(text, &[(&entries[1], "60".to_string())], &[("logLevel".to_string(), "WARN".to_string())]);
        assert_eq!(
            changed,
            "# LiveApp settings\nipFilterEnabled=true\n\n# the token\ntimeTokenPeriod=60\n! end\nlogLevel=WARN\n"
        );
        assert_eq!(update("a=1", &[], &[]), "a=1\n");
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        let alphabet = [
            '\\', '\\', 'u', 'D', '8', '3', 'd', 'E', '0', 'g', '=', ':', ' ', '\n', '\r', '#', '!', '\t', 'é',
            '\u{feff}',
        ];
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for _ in 0..3000 {
            let text = rng.string(&alphabet, 40);
            let _ = parse(&text);
        }
    }
}
