//! The command table: every program, command and option with its help and
//! examples, declared once. Help ([`crate::cmd::help`]), shell completions
//! ([`crate::cmd::completions`]) and man pages ([`crate::cmd::man`]) are
//! rendered from it; the parsers in `cmd` accept what it lists
//! (`every_listed_option_parses` checks that).

/// What an option's value is, for completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A flag without a value.
    None,
    /// Free text: nothing to complete.
    Text,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A file name.
    File,
    /// A profile name: `*.json` in `$SQS_ARCHIVE_CONFIG_DIR`, `./config`, `/etc/sqs-archive`.
    Profile,
    /// A section of the AWS shared config and credentials files.
    AwsProfile,
}

/// One option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt {
    /// `--name`, with its dashes.
    pub long: &'static str,
    /// `-c`, when it has one.
    pub short: Option<&'static str>,
    /// The value's placeholder (`N`, `FILE`); "" for a flag.
    pub arg: &'static str,
    pub value: Value,
    pub help: &'static str,
}

/// One `sqs_archive` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub name: &'static str,
    /// What follows the command name in the usage line.
    pub synopsis: &'static str,
    /// One line for the overview.
    pub summary: &'static str,
    /// The paragraph `COMMAND --help` prints.
    pub about: &'static str,
    pub options: &'static [Opt],
    /// `(command line, what it does)`.
    pub examples: &'static [(&'static str, &'static str)],
    /// Left out of the overview, completions and man pages.
    pub hidden: bool,
}

/// One program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    pub summary: &'static str,
    pub synopsis: &'static str,
    pub about: &'static str,
    /// Its own options (the common ones come on top).
    pub options: &'static [Opt],
    pub commands: &'static [Command],
    pub examples: &'static [(&'static str, &'static str)],
}

const fn opt(long: &'static str, arg: &'static str, value: Value, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        arg,
        value,
        help,
    }
}

const fn flag(long: &'static str, help: &'static str) -> Opt {
    opt(long, "", Value::None, help)
}

/// The options every program takes.
pub const COMMON: &[Opt] = &[
    opt(
        "--profile",
        "NAME",
        Value::Profile,
        "read NAME.json from the first of $SQS_ARCHIVE_CONFIG_DIR, ./config, /etc/sqs-archive that has it; default $SQS_ARCHIVE_PROFILE",
    ),
    opt(
        "--config",
        "FILE",
        Value::File,
        "read this profile file instead",
    ),
    opt(
        "--env-file",
        "FILE",
        Value::File,
        "read variables from FILE (default: ./.env if present); variables already set in the environment win",
    ),
    opt(
        "--aws-profile",
        "NAME",
        Value::AwsProfile,
        "the shared-file AWS profile for credentials and region (as aws_profile / AWS_PROFILE); a profile that does not exist is an error",
    ),
    opt(
        "--region",
        "REGION",
        Value::Text,
        "the AWS region to sign for (as region / AWS_REGION)",
    ),
    opt(
        "--log-level",
        "LEVEL",
        Value::Choice(&["error", "warn", "info", "debug", "trace"]),
        "error, warn, info, debug or trace (default: $SQS_ARCHIVE_LOG or the program's default)",
    ),
    Opt {
        short: Some("-h"),
        ..flag("--help", "print help (COMMAND --help: that command's)")
    },
    Opt {
        short: Some("-V"),
        ..flag(
            "--version",
            "print the version, commit, target, libc and build date",
        )
    },
];

const JSON: Opt = flag("--json", "print one JSON object instead of lines of text");

/// `sqs_archive`'s commands.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "send",
        synopsis: "--aipid ID --filenames F1 [F2 ...] [--priority low|medium|high] [--action archive] [--dry-run]",
        summary: "validate an archive request against the schema and send it; prints the message id",
        about: "Builds an archive request for the files F1, F2, ... of source_dir/ID (no names at all: the whole directory), validates it against the schema and sends it to the request queue. Prints the message id. With --dry-run, prints the request JSON instead and sends nothing.",
        options: &[
            opt(
                "--aipid",
                "ID",
                Value::Text,
                "the package id (a directory under source_dir)",
            ),
            opt(
                "--filenames",
                "F1 [F2 ...]",
                Value::File,
                "the files to archive, relative to source_dir/ID; none: all of them",
            ),
            opt(
                "--priority",
                "PRIORITY",
                Value::Choice(&["low", "medium", "high"]),
                "low, medium (default) or high",
            ),
            opt(
                "--action",
                "ACTION",
                Value::Choice(&["archive"]),
                "the request's action (default: archive)",
            ),
            flag(
                "--dry-run",
                "validate and print the request JSON; send nothing",
            ),
        ],
        examples: &[
            (
                "sqs_archive --profile local send --aipid mds2909 --filenames trial1.txt trial2.txt",
                "request two files",
            ),
            (
                "sqs_archive send --aipid mds2909 --filenames --dry-run",
                "print the request for the whole directory",
            ),
        ],
        hidden: false,
    },
    Command {
        name: "receive",
        synopsis: "[--max N] [--wait S] [--output lines|aws] [--delete | --exec 'CMD ARGS']",
        summary: "print up to N completions as JSON lines; delete them with --delete or --exec",
        about: "Receives up to N (1-10) completions from the completion queue and prints each as one JSON line whose fields have the same types whatever the body holds: message_id, receipt_handle, md5_of_body (strings), receive_count (a number), attributes (an object of strings), body (always the text as received) and body_json (the body parsed, or null when it is not JSON). --output aws prints what `aws sqs receive-message` prints instead. Deletes only with --delete, and only after printing. With --exec, runs CMD (no shell) once per completion with its JSON line on stdin and deletes it only when CMD exits 0; the first failure stops, and that completion and the rest stay on the queue.",
        options: &[
            opt(
                "--max",
                "N",
                Value::Text,
                "receive at most N messages, 1 to 10 (default 10)",
            ),
            opt(
                "--wait",
                "S",
                Value::Text,
                "long-poll for up to S seconds, 0 to 20 (default: wait_time_seconds)",
            ),
            opt(
                "--output",
                "FORMAT",
                Value::Choice(&["lines", "aws"]),
                "lines (default): one JSON line per completion; aws: one {\"Messages\": [...]} object as the AWS CLI prints",
            ),
            flag(
                "--delete",
                "delete each completion once its line was written",
            ),
            opt(
                "--exec",
                "'CMD ARGS'",
                Value::Text,
                "run CMD per completion with its line on stdin; delete it when CMD exits 0",
            ),
        ],
        examples: &[
            (
                "sqs_archive receive --delete",
                "print and delete what is there",
            ),
            (
                "sqs_archive receive | jq -r 'select(.body_json.success == true) | .body_json.aipid'",
                "the packages archived",
            ),
            (
                "sqs_archive receive --exec 'jq -e \".body_json.success\"'",
                "delete only successful completions",
            ),
        ],
        hidden: false,
    },
    Command {
        name: "delete",
        synopsis: "--receipt-handle H [--queue request|completion]",
        summary: "delete one received message (default queue: completion)",
        about: "Deletes one message received earlier, by its receipt handle, from the completion queue (or the request queue with --queue request).",
        options: &[
            opt(
                "--receipt-handle",
                "H",
                Value::Text,
                "the receipt handle receive printed",
            ),
            opt(
                "--queue",
                "QUEUE",
                Value::Choice(&["request", "completion"]),
                "request or completion (default)",
            ),
        ],
        examples: &[(
            "sqs_archive delete --receipt-handle \"$(sqs_archive receive --max 1 | jq -r .receipt_handle)\"",
            "delete the first completion",
        )],
        hidden: false,
    },
    Command {
        name: "stats",
        synopsis: "",
        summary: "approximate visible, in-flight and delayed counts of both queues, as JSON",
        about: "Prints one JSON object with the approximate visible, in-flight and delayed message counts of the request and completion queues.",
        options: &[],
        examples: &[(
            "sqs_archive stats | jq .request.visible",
            "requests waiting",
        )],
        hidden: false,
    },
    Command {
        name: "credentials",
        synopsis: "[--json]",
        summary: "say which source supplies the AWS credentials (never prints a secret)",
        about: "Resolves the AWS credentials as every command would and says which source supplied them, the chain step, the region and the endpoint. Never prints a secret. Exits 78 when no credentials can be found.",
        options: &[JSON],
        examples: &[
            (
                "sqs_archive --aws-profile archive credentials",
                "which credentials that profile gives",
            ),
            (
                "sqs_archive credentials --json | jq -r .source",
                "the source, for a script",
            ),
        ],
        hidden: false,
    },
    Command {
        name: "audit",
        synopsis: "[--aipid ID] [--max-bytes-per-second N] [--download]",
        summary: "re-hash archived AIPs against their manifests; exits 1 on any mismatch",
        about: "Re-hashes archived AIPs (one with --aipid, or all in archive_dir) against their manifests; prints one line per missing, extra, changed or unreadable file; exits 0 when all match, 1 otherwise. In S3 it compares the SHA-256 S3 keeps per object; --download re-hashes the bytes.",
        options: &[
            opt("--aipid", "ID", Value::Text, "audit this package only"),
            opt(
                "--max-bytes-per-second",
                "N",
                Value::Text,
                "read at most N bytes a second",
            ),
            flag(
                "--download",
                "S3: download and re-hash every object instead of comparing the stored SHA-256",
            ),
        ],
        examples: &[(
            "sqs_archive --profile prod audit --max-bytes-per-second 50000000",
            "a nightly audit at 50 MB/s",
        )],
        hidden: false,
    },
    Command {
        name: "doctor",
        synopsis: "[--json]",
        summary: "check that this host is ready; one ok/warn/fail line each",
        about: "Checks that this host is ready: profile, credentials, queues and their attributes, directories, handler, who else could change the profile, .env and handler, the lock, metrics and log files. One ok/warn/fail line each (--json: one object); exits 0 when nothing failed, 1 otherwise.",
        options: &[JSON],
        examples: &[(
            "sqs_archive --profile prod doctor",
            "before the first cron run",
        )],
        hidden: false,
    },
    Command {
        name: "config",
        synopsis: "[--json]",
        summary: "print every setting, its value and where it came from",
        about: "Prints every setting, its value and where it came from (default, profile, variable, env file, flag); credentials are shown as ***.",
        options: &[JSON],
        examples: &[(
            "sqs_archive --profile prod config --json | jq .workers",
            "where workers comes from",
        )],
        hidden: false,
    },
    Command {
        name: "help",
        synopsis: "[COMMAND]",
        summary: "print the overview, or COMMAND's help",
        about: "Prints the overview, or the usage, options and examples of COMMAND (the same as COMMAND --help).",
        options: &[],
        examples: &[("sqs_archive help send", "send's options")],
        hidden: false,
    },
    Command {
        name: "generate",
        synopsis: "completions bash|zsh|fish [PROGRAM] | man PROGRAM",
        summary: "print a shell completion script or a man page",
        about: "Prints the completion script for a shell, or the man page (roff) of sqs_archive, poll_messages or process_message. make dist ships them in completions/ and man/man1/.",
        options: &[],
        examples: &[
            (
                "sqs_archive generate completions bash sqs_archive > /usr/share/bash-completion/completions/sqs_archive",
                "bash completion",
            ),
            (
                "sqs_archive generate man poll_messages | man -l -",
                "read the man page",
            ),
        ],
        hidden: true,
    },
];

/// The three programs.
pub const PROGRAMS: &[Program] = &[SQS_ARCHIVE, POLL_MESSAGES, PROCESS_MESSAGE];

pub const SQS_ARCHIVE: Program = Program {
    name: "sqs_archive",
    summary: "send archive requests and read their completions over SQS",
    synopsis: "[OPTIONS] COMMAND [ARGS]",
    about: "Sends archive requests to the request queue and reads results from the completion queue. `sqs_archive COMMAND --help` (or `sqs_archive help COMMAND`) prints that command's options and examples.",
    options: &[],
    commands: COMMANDS,
    examples: &[
        (
            "sqs_archive --profile local send --aipid mds2909 --filenames trial1.txt",
            "request one file",
        ),
        (
            "sqs_archive --profile local receive --delete",
            "read and delete the completions",
        ),
    ],
};

pub const POLL_MESSAGES: Program = Program {
    name: "poll_messages",
    summary: "receive archive requests and run process_message for each",
    synopsis: "[OPTIONS]",
    about: "By default it drains the request queue: it receives until a receive returns nothing, lets running handlers finish, prints a summary and exits (for cron). Runs that overlap share the host's workers handler slots (lock_file.slot-N): a run takes the free ones, and one that finds none exits 0 at once; a run past --max-runtime gives each slot back as soon as its handler ends. A --loop poller runs alone (lock_file).",
    options: &[
        flag("--loop", "keep polling until SIGTERM or SIGINT"),
        flag(
            "--quiet",
            "for cron: print only warnings and errors on stderr, so a run that goes well prints nothing (each request that failed for good prints one line with its id, aipid and reason; a failing run prints its errors and its summary)",
        ),
        opt(
            "--max-messages",
            "N",
            Value::Text,
            "stop receiving after N messages",
        ),
        opt(
            "--max-runtime",
            "S",
            Value::Text,
            "stop receiving after S seconds",
        ),
    ],
    commands: &[],
    examples: &[
        ("poll_messages --profile prod --quiet", "a cron run"),
        ("poll_messages --profile prod --loop", "a service"),
    ],
};

pub const PROCESS_MESSAGE: Program = Program {
    name: "process_message",
    summary: "archive the files one request names",
    synopsis: "--aipid ID [OPTIONS] < message.json",
    about: "Reads the request JSON on stdin; copies its files from source_dir to archive_dir/<aipid>/ (adding to or replacing files in that AIP, never removing any) and rewrites the AIP's manifest-sha256.txt to cover every file in it; prints a JSON result. One run per AIP at a time: another waits up to 60 s, then exits 75 (AIP busy). Exit 0 on success, 65 for bad data, 75 for a failure worth a retry. Run by poll_messages, which passes the configuration on in SQS_ARCHIVE_CONFIG; it ends when that poller ends.",
    options: &[opt(
        "--aipid",
        "ID",
        Value::Text,
        "the package id the message must name",
    )],
    commands: &[],
    examples: &[(
        "sqs_archive send --aipid mds2909 --filenames a.txt --dry-run | process_message --profile local --aipid mds2909",
        "archive by hand, without a queue",
    )],
};

/// The program called `name`.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}

/// The `sqs_archive` command called `name`.
pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The commands a user sees (the overview, completions, man pages).
pub fn visible(commands: &'static [Command]) -> impl Iterator<Item = &'static Command> {
    commands.iter().filter(|c| !c.hidden)
}

/// `send, receive, ... or config`: the names for a usage error.
pub fn command_list() -> String {
    let names: Vec<&str> = visible(COMMANDS)
        .map(|c| c.name)
        .filter(|n| *n != "help")
        .collect();
    match names.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_options_well_formed() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        let all = PROGRAMS
            .iter()
            .flat_map(|p| {
                p.options
                    .iter()
                    .chain(p.commands.iter().flat_map(|c| c.options))
            })
            .chain(COMMON);
        for o in all {
            assert!(o.long.starts_with("--"), "{o:?}");
            assert_eq!(o.arg.is_empty(), o.value == Value::None, "{o:?}");
            assert!(!o.help.is_empty() && !o.help.contains('\n'), "{o:?}");
        }
        assert!(
            command_list().ends_with("doctor or config"),
            "{}",
            command_list()
        );
    }
}
