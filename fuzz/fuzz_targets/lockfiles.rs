//! Every lockfile and metadata parser on arbitrary text.
#![no_main]
use launchway_scan::sbom::collect::{Kind, parse};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 14] = [
    Kind::Requirements, Kind::PipfileLock, Kind::PoetryLock, Kind::UvLock, Kind::PdmLock, Kind::PythonMetadata,
    Kind::CargoLock, Kind::PackageLock, Kind::YarnLock, Kind::PnpmLock, Kind::GoMod, Kind::GoSum, Kind::DpkgStatus, Kind::NodePackage,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let _ = parse(KINDS[selector as usize % KINDS.len()], "fuzz", &text);
});
