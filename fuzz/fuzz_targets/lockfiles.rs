//! Every lockfile and metadata parser on arbitrary text, and RECORD.
#![no_main]
use launchway_scan::sbom::collect::{Kind, parse, python_record};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 14] = [
    Kind::Requirements, Kind::PipfileLock, Kind::PoetryLock, Kind::UvLock, Kind::PdmLock, Kind::PythonMetadata,
    Kind::CargoLock, Kind::PackageLock, Kind::YarnLock, Kind::PnpmLock, Kind::GoMod, Kind::GoSum, Kind::DpkgStatus, Kind::NodePackage,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    if selector == u8::MAX {
        let _ = python_record("venv/lib/site-packages/x-1.dist-info/RECORD", &text);
        return;
    }
    let _ = parse(KINDS[selector as usize % KINDS.len()], "fuzz", &text);
});
