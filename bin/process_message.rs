//! `process_message`: see `process_message --help`. All logic lives in the library.
fn main() -> std::process::ExitCode {
    sqs_archive::cmd::process_message::main().into()
}
