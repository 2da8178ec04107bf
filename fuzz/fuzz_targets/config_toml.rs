#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/config_toml.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
