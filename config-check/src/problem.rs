//! One thing wrong with a file at one key, and how a list of them reads.

use std::fmt;

/// One thing wrong with a file, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, in the form a user would write it: `ports[1].rx_queues`,
    /// `security_group[1].ingress[0].from_port`. Empty for a problem with
    /// the file as a whole.
    pub key: String,
    /// The 1-based line of the key in the file, when it is known.
    pub line: Option<usize>,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl Problem {
    /// A problem whose line is not known yet: checks work on parsed values,
    /// which have no lines; [`locate_and_order`](crate::locate_and_order)
    /// finds them afterwards in the text.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            line: None,
            message: message.into(),
        }
    }
}

/// Renders problems one a line as `ORIGIN[:LINE][: KEY]: MESSAGE`, the
/// form editors and terminals turn into a jump to the spot.
pub fn display_problems<'a>(origin: &'a str, problems: &'a [Problem]) -> impl fmt::Display + 'a {
    DisplayProblems { origin, problems }
}

struct DisplayProblems<'a> {
    origin: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            f.write_str(self.origin)?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            if problem.key.is_empty() {
                write!(f, ": {}", problem.message)?;
            } else {
                write!(f, ": {}: {}", problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_one_line_with_what_is_known() {
        let mut at_line = Problem::new("ports[0].rx_queues", "too many");
        at_line.line = Some(7);
        let problems = [
            at_line,
            Problem::new("eal.lcores", "empty"),
            Problem::new("", "the file as a whole"),
        ];
        assert_eq!(
            display_problems("p.toml", &problems).to_string(),
            "p.toml:7: ports[0].rx_queues: too many\n\
             p.toml: eal.lcores: empty\n\
             p.toml: the file as a whole"
        );
    }

    #[test]
    fn no_problems_render_as_nothing() {
        assert_eq!(display_problems("p.toml", &[]).to_string(), "");
    }
}
