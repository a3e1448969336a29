//! `sqs_archive`: see `sqs_archive --help`. All logic lives in the library.
fn main() -> std::process::ExitCode {
    sqs_archive::cmd::sqs_archive::main().into()
}
