#!/usr/bin/env python3
"""Writes RustSec's OSV JSON export back into the advisory-db layout
cargo-audit reads (crates/<name>/<id>.md with TOML front matter), so that
cargo-audit and launchway can be run side by side on the same advisories
with no network. Used by bench/security.sh only.

Usage: rustsec_osv_to_advisory_db.py OSV_DIR OUT_DIR

OSV ranges are events (introduced / fixed / last_affected); RustSec lists
the versions that are NOT affected as `patched` and `unaffected` semver
requirements. The complement of the affected intervals is written as
`unaffected` (before the first introduction, between intervals) and
`patched` (at or after a fix).
"""

import json
import pathlib
import sys


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def toml_list(items):
    return "[" + ", ".join(toml_str(i) for i in items) + "]"


def requirements(ranges):
    """(patched, unaffected) requirement lists for the affected intervals."""
    intervals = []
    for r in ranges:
        if r.get("type") != "SEMVER":
            continue
        start = None
        for ev in r.get("events", []):
            if "introduced" in ev:
                start = ev["introduced"]
            elif "fixed" in ev:
                intervals.append((start, ("fixed", ev["fixed"])))
                start = None
            elif "last_affected" in ev:
                intervals.append((start, ("last_affected", ev["last_affected"])))
                start = None
        if start is not None:
            intervals.append((start, None))
    patched, unaffected = [], []
    lower = None  # requirement text for the gap's lower bound
    for i, (start, end) in enumerate(intervals):
        if start not in (None, "0", "0.0.0", "0.0.0-0"):
            gap = f"< {start}" if lower is None else f"{lower}, < {start}"
            unaffected.append(gap)
        if end is None:
            lower = None
            break
        kind, v = end
        lower = f">= {v}" if kind == "fixed" else f"> {v}"
        if i == len(intervals) - 1:
            patched.append(lower)
            lower = None
    return patched, unaffected


def convert(osv_dir, out_dir):
    n = 0
    for path in sorted(pathlib.Path(osv_dir).glob("*.json")):
        adv = json.loads(path.read_text())
        for aff in adv.get("affected", []):
            pkg = aff.get("package", {})
            if pkg.get("ecosystem") != "crates.io":
                continue
            name = pkg["name"]
            patched, unaffected = requirements(aff.get("ranges", []))
            info = (aff.get("database_specific") or {}).get("informational")
            lines = [
                "```toml",
                "[advisory]",
                f"id = {toml_str(adv['id'])}",
                f"package = {toml_str(name)}",
                f"date = {toml_str(adv.get('published', '2000-01-01')[:10])}",
                f"aliases = {toml_list(adv.get('aliases', []))}",
            ]
            if info:
                lines.append(f"informational = {toml_str(info)}")
            if adv.get("withdrawn"):
                lines.append(f"withdrawn = {toml_str(adv['withdrawn'][:10])}")
            lines += [
                "",
                "[versions]",
                f"patched = {toml_list(patched)}",
                f"unaffected = {toml_list(unaffected)}",
                "```",
                "",
                "# " + (adv.get("summary") or adv["id"]).replace("\n", " "),
                "",
                adv.get("details") or "(no details)",
                "",
            ]
            d = pathlib.Path(out_dir) / "crates" / name
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{adv['id']}.md").write_text("\n".join(lines))
            n += 1
            break
    return n


if __name__ == "__main__":
    print(convert(sys.argv[1], sys.argv[2]), "advisories written")
