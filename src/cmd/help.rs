//! `--help` and `--version` text, rendered from the command table
//! ([`crate::cmd::commands`]): the overview, one command's help, a program's
//! help, and the version line.

use std::fmt::Write;

use crate::cmd::commands::{COMMON, Command, Opt, Program, visible};

/// Width the help text is wrapped to.
const WIDTH: usize = 88;
/// Column the option help starts in.
const HELP_COLUMN: usize = 24;

/// `sqs_archive --help` (and `poll_messages --help`, ...): the program's
/// usage, its commands or options, the common options, where to read on.
pub fn program_help(p: &Program) -> String {
    let mut out = format!(
        "{}: {}.\n\nUsage: {} {}\n\n",
        p.name, p.summary, p.name, p.synopsis
    );
    paragraph(&mut out, p.about, "");
    if !p.commands.is_empty() {
        out.push_str("\nCommands:\n");
        for c in visible(p.commands) {
            let _ = writeln!(out, "  {}", format!("{} {}", c.name, c.synopsis).trim_end());
            paragraph(&mut out, c.summary, "        ");
        }
    }
    if !p.options.is_empty() {
        out.push_str("\nOptions:\n");
        options(&mut out, p.options);
    }
    out.push_str("\nCommon options:\n");
    options(&mut out, COMMON);
    examples(&mut out, p.examples);
    let _ = write!(
        out,
        "\nConfiguration: `sqs_archive config` prints every setting and where it came from;\n\
         the keys are listed in `man {}` and in docs/configuration.md.\n",
        p.name
    );
    out
}

/// `sqs_archive COMMAND --help` and `sqs_archive help COMMAND`.
pub fn command_help(c: &Command) -> String {
    let mut out = format!("sqs_archive {}: {}.\n\n", c.name, c.summary);
    let _ = writeln!(
        out,
        "Usage: sqs_archive [OPTIONS] {} {}\n",
        c.name, c.synopsis
    );
    paragraph(&mut out, c.about, "");
    if !c.options.is_empty() {
        out.push_str("\nOptions:\n");
        options(&mut out, c.options);
    }
    out.push_str("\nCommon options:\n");
    options(&mut out, COMMON);
    examples(&mut out, c.examples);
    out
}

/// `sqs_archive 0.1.0 (commit abc1234, x86_64-unknown-linux-musl, musl, built 2026-12-02)`.
pub fn version_line(program: &str) -> String {
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "gnu") {
        "glibc"
    } else {
        "unknown libc"
    };
    format!(
        "{program} {} (commit {}, {}, {libc}, built {})",
        env!("CARGO_PKG_VERSION"),
        env!("SQS_ARCHIVE_COMMIT"),
        env!("SQS_ARCHIVE_TARGET"),
        env!("SQS_ARCHIVE_BUILD_DATE"),
    )
}

/// How an option is written in help: `-h, --help`, `--max N`.
pub fn option_label(o: &Opt) -> String {
    let mut label = match o.short {
        Some(short) => format!("{short}, {}", o.long),
        None => o.long.to_string(),
    };
    if !o.arg.is_empty() {
        label.push(' ');
        label.push_str(o.arg);
    }
    label
}

fn options(out: &mut String, opts: &[Opt]) {
    for o in opts {
        let label = option_label(o);
        let indent = " ".repeat(HELP_COLUMN);
        if label.len() + 4 > HELP_COLUMN {
            let _ = writeln!(out, "  {label}");
            paragraph(out, o.help, &indent);
        } else {
            let mut lines = wrap(o.help, WIDTH - HELP_COLUMN).into_iter();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(out, "  {label:<width$}{first}", width = HELP_COLUMN - 2);
            for line in lines {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
    }
}

fn examples(out: &mut String, examples: &[(&str, &str)]) {
    if examples.is_empty() {
        return;
    }
    out.push_str("\nExamples:\n");
    for (line, what) in examples {
        let _ = writeln!(out, "  # {what}\n  {line}");
    }
}

fn paragraph(out: &mut String, text: &str, indent: &str) {
    for line in wrap(text, WIDTH - indent.len()) {
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// Splits `text` into lines of at most `width` characters at spaces (a
/// longer word gets a line of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::commands::{command, program};

    #[test]
    fn command_help_is_that_command_only() {
        let send = command_help(command("send").unwrap());
        assert!(
            send.contains("Usage: sqs_archive [OPTIONS] send --aipid ID"),
            "{send}"
        );
        assert!(send.contains("--dry-run"), "{send}");
        assert!(send.contains("Examples:"), "{send}");
        assert!(!send.contains("--receipt-handle"), "{send}");
        let overview = program_help(program("sqs_archive").unwrap());
        assert!(overview.contains("  receive [--max N]"), "{overview}");
        assert!(!overview.contains("generate"), "hidden: {overview}");
        assert!(
            overview.lines().all(|l| l.chars().count() <= WIDTH + 40),
            "{overview}"
        );
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("a verylongword", 4), vec!["a", "verylongword"]);
    }

    #[test]
    fn version_names_commit_target_libc_and_date() {
        let v = version_line("poll_messages");
        assert!(
            v.starts_with(&format!(
                "poll_messages {} (commit ",
                env!("CARGO_PKG_VERSION")
            )),
            "{v}"
        );
        assert!(
            v.contains(env!("SQS_ARCHIVE_TARGET")) && v.contains(", built "),
            "{v}"
        );
        assert!(v.contains("musl") || v.contains("glibc"), "{v}");
    }
}
