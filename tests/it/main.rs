//! The one integration-test crate: runs the built binaries against moto
//! (signature checking on), fauxqs and the durable mock queue. The servers
//! come from `scripts/test-servers.sh` (`make test`); without them the
//! server tests fail, they never skip.

mod aip;
mod archive;
mod audit;
mod awsconfig;
mod cli;
mod corpus;
mod crash;
mod credentials;
mod deploy;
mod docs;
mod doctor;
mod fakes;
mod faults;
mod help;
mod house;
mod inputs;
mod logs;
mod metrics;
mod network;
mod paths;
mod poller;
mod process;
mod proxy;
mod s3;
mod s3_archive;
mod security;
mod slots;
mod support;
mod tls;
