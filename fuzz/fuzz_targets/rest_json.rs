#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/rest_json.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
