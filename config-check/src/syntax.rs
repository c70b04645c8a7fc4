//! Is the text TOML at all: the first check of every file, whose answer
//! points at a line and column because there is no key path yet.

/// Where and why a text is not TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlSyntax {
    /// 1-based line of the first syntax error.
    pub line: usize,
    /// 1-based column, in characters, of the first syntax error.
    pub column: usize,
    /// The TOML parser's description, its lines joined with `; ` so the
    /// whole error stays on one line.
    pub message: String,
}

/// Parses `text` as TOML only to find its first syntax error.
pub fn check_syntax(text: &str) -> Result<(), TomlSyntax> {
    let Err(error) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let offset = error.span().map_or(0, |span| span.start);
    let line = crate::line_of_offset(text, offset);
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    // Count characters, not bytes: continuation bytes start no character.
    let column = before[line_start..]
        .iter()
        .filter(|&&byte| byte & 0xc0 != 0x80)
        .count()
        + 1;
    Err(TomlSyntax {
        line,
        column,
        message: error
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_toml_passes() {
        assert_eq!(check_syntax("a = 1\n[t]\nb = \"x\"\n"), Ok(()));
        assert_eq!(check_syntax(""), Ok(()));
    }

    #[test]
    fn error_points_at_line_and_character_column() {
        // The error is at the `@`; "é" is two bytes but one column.
        let syntax = check_syntax("a = 1\n\"é\" = @\n").unwrap_err();
        assert_eq!((syntax.line, syntax.column), (2, 7));
        assert!(!syntax.message.is_empty());
        assert!(!syntax.message.contains('\n'), "{}", syntax.message);
    }

    #[test]
    fn a_key_set_twice_is_a_syntax_error() {
        let syntax = check_syntax("a = 1\na = 2\n").unwrap_err();
        assert_eq!(syntax.line, 2);
    }
}
