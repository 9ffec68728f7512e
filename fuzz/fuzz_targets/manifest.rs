//! Fuzzes the manifest of exported models (`auglocal predict --model`, `export::load`): JSON
//! of any shape, numbers out of range, parts that disagree. Parsing and checking may refuse
//! but never panic, and never lay out a network the size of the numbers it was given.

#![no_main]

use std::path::Path;

use auglocal_model::export::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_json(data, Path::new("fuzz-input.json")) {
        // What was accepted writes back to what reads again as the same manifest.
        let again = Manifest::from_json(&manifest.to_json(), Path::new("again.json"))
            .expect("a manifest that was accepted reads back");
        assert_eq!(again, manifest);
    }
});
