//! `poll_messages`: see `poll_messages --help`. All logic lives in the library.
fn main() -> std::process::ExitCode {
    sqs_archive::cmd::poll_messages::main().into()
}
