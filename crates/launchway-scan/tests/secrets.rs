//! The secrets engine on hand-written fixtures with planted (fake)
//! credentials: what is found and where, what is allowed, what is skipped,
//! gitleaks configs, and git history.

#![allow(clippy::unwrap_used)]

use launchway_scan::secrets::config::Config;
use launchway_scan::secrets::source::{DirOptions, baseline, scan_dir, scan_git};
use launchway_scan::secrets::{Engine, Finding};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secrets")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The fixture tree plus what cannot be committed: a gitignored file and a
/// symlink pointing out of the tree.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("project");
    copy(&fixtures(), &root);
    std::fs::create_dir_all(root.join("ignored")).unwrap();
    std::fs::write(root.join(".gitignore"), "ignored/\n").unwrap();
    std::fs::write(
        root.join("ignored/secrets.txt"),
        "token = \"ghp_1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX\"\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("outside.txt"),
        "token = \"ghp_0zZ9yY8xX7wW6vV5uU4tT3sS2rR1qQ0pP9oO\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside.txt"), root.join("link.txt")).unwrap();
    (tmp, root)
}

fn summary(fs: &[Finding]) -> Vec<(String, String, usize, usize)> {
    fs.iter()
        .map(|f| (f.file.clone(), f.rule_id.clone(), f.line, f.column))
        .collect()
}

#[test]
fn default_rules_find_planted_secrets_where_they_are() {
    let (_tmp, root) = tree();
    let engine = Engine::new(Config::defaults().rules, vec![]);
    let scan = scan_dir(&root, &engine, &DirOptions::default());
    let got = summary(&scan.findings);
    let want = [
        ("config/.env", "github-pat", 1, 14),
        ("config/.env", "stripe-access-token", 2, 12),
        ("config/.env", "slack-webhook-url", 3, 15),
        ("config/.env", "openai-api-key", 4, 16),
        ("config/settings.py", "aws-access-key-id", 2, 22),
        ("config/settings.py", "aws-secret-access-key", 3, 26),
        ("config/settings.py", "basic-auth-url", 4, 37),
        ("config/internal.env", "generic-api-key", 1, 15),
        ("keys/deploy_key", "private-key", 1, 1),
        ("keys/embedded_key_test.c", "private-key", 3, 6),
        ("web/app.js", "jwt", 2, 18),
        ("web/app.js", "generic-api-key", 3, 28),
        ("web/app.js", "gitlab-pat", 5, 17),
    ];
    for w in want {
        let w = (w.0.to_string(), w.1.to_string(), w.2, w.3);
        assert!(got.contains(&w), "missing {w:?}; got {got:#?}");
    }
    // Not found: the inline-allowed token, placeholders and variable
    // references, binary and gitignored files, the symlink out of the tree.
    let all = format!("{:?}", scan.findings);
    for absent in ["ghp_9zY8", "changeme", "os.environ", "ghp_1aB2", "ghp_0zZ9"] {
        assert!(!all.contains(absent), "{absent} should not be reported");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    let f = scan
        .findings
        .iter()
        .find(|f| f.rule_id == "github-pat")
        .unwrap();
    assert_eq!(f.fingerprint, "config/.env:github-pat:1");
    assert!(f.entropy > 3.0);
}

#[test]
fn gitleaks_config_rules_and_allowlists() {
    let (_tmp, root) = tree();
    let cfg = Config::load(&root.join(".gitleaks.toml")).unwrap();
    let engine = Engine::new(cfg.rules, cfg.allowlists);
    let scan = scan_dir(&root, &engine, &DirOptions::default());
    let acme: Vec<&Finding> = scan
        .findings
        .iter()
        .filter(|f| f.rule_id == "acme-internal-token")
        .collect();
    assert_eq!(acme.len(), 1, "testdata/ is allowlisted: {acme:#?}");
    assert_eq!(acme[0].file, "config/internal.env");
    assert_eq!(acme[0].tags, ["internal"]);
    assert!(
        scan.findings.iter().any(|f| f.rule_id == "github-pat"),
        "useDefault keeps the built-ins"
    );
}

#[test]
fn size_limit_and_redaction_and_baseline() {
    let (_tmp, root) = tree();
    let engine = Engine::new(Config::defaults().rules, vec![]);
    let small = scan_dir(
        &root,
        &engine,
        &DirOptions {
            max_file: 100,
            threads: 1,
        },
    );
    assert!(
        small.skipped.iter().any(|s| s.starts_with("config/.env")),
        "{:?}",
        small.skipped
    );
    let mut f = scan_dir(&root, &engine, &DirOptions::default())
        .findings
        .remove(0);
    let secret = f.secret.clone();
    f.redact();
    assert_eq!(f.secret, "REDACTED");
    assert!(!f.matched.contains(&secret));
    let base =
        serde_json::json!([{"Fingerprint": "config/.env:github-pat:1", "RuleID": "github-pat"}])
            .to_string();
    assert_eq!(baseline(&base).unwrap(), ["config/.env:github-pat:1"]);
    assert!(baseline("{").is_err());
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Mona")
        .env("GIT_AUTHOR_EMAIL", "mona@example.com")
        .env("GIT_COMMITTER_NAME", "Mona")
        .env("GIT_COMMITTER_EMAIL", "mona@example.com")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn git_history_finds_secrets_removed_later() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("app.cfg"), "name = demo\nmode = prod\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "initial"]);
    std::fs::write(
        repo.join("app.cfg"),
        "name = demo\nmode = prod\ngithub_token = ghp_4fR9kL2mN7pQ1sT6vW8xY3zA5bC0dE2gH4jK\n",
    )
    .unwrap();
    git(repo, &["commit", "-q", "-am", "add token"]);
    std::fs::write(repo.join("app.cfg"), "name = demo\nmode = prod\n").unwrap();
    git(repo, &["commit", "-q", "-am", "remove token"]);
    let engine = Engine::new(Config::defaults().rules, vec![]);
    assert!(
        scan_dir(repo, &engine, &DirOptions::default())
            .findings
            .is_empty(),
        "gone from the tree"
    );
    let found = scan_git(repo, &engine).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(
        (f.file.as_str(), f.line, f.rule_id.as_str()),
        ("app.cfg", 3, "github-pat")
    );
    assert_eq!(f.author.as_deref(), Some("Mona"));
    assert_eq!(f.message.as_deref(), Some("add token"));
    assert!(f.fingerprint.starts_with(f.commit.as_deref().unwrap()));
}

/// Issue 17.5: added lines in files whose names git quotes (non-ASCII,
/// a double quote) were skipped, and so was the rest of a file after an
/// added line starting with `++ ` (it shows as `+++ `, like a header).
#[test]
fn git_history_reads_quoted_names_and_plus_plus_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "x\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "initial"]);
    std::fs::write(
        repo.join("café.env"),
        "GITHUB_TOKEN=ghp_4fR9kL2mN7pQ1sT6vW8xY3zA5bC0dE2gH4jK\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("say \"hi\".txt"),
        "token: ghp_8hJ2kL4mN6pQ8sT0vW2xY4zA6bC8dE0gH2jK\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("notes.md"),
        "++ a line that looks like a diff header\n-- and one like its other half\nkey = ghp_2bC4dE6fG8hJ0kL2mN4pQ6sT8vW0xY2zA4bC\n",
    )
    .unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "three leaks"]);
    let engine = Engine::new(Config::defaults().rules, vec![]);
    let found = scan_git(repo, &engine).unwrap();
    let mut at: Vec<(String, usize)> = found.iter().map(|f| (f.file.clone(), f.line)).collect();
    at.sort();
    assert_eq!(
        at,
        [
            ("café.env".to_string(), 1),
            ("notes.md".to_string(), 3),
            ("say \"hi\".txt".to_string(), 1)
        ],
        "{found:#?}"
    );
}

/// Issue 17.7: what made the built-in rules noisy on real trees — URL
/// placeholders (`${GITHUB_TOKEN}`, `{credential}`, `$DB_PASSWORD`,
/// `<password>`, `{{ x }}`, `%s`), a service-account JSON with no key,
/// AWS's documented example keys, and code — is no finding; the real key
/// file next to them is.
#[test]
fn placeholders_examples_and_code_are_not_leaks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noise");
    let cfg = Config::defaults();
    let engine = Engine::new(cfg.rules, cfg.allowlists);
    let found = scan_dir(&root, &engine, &DirOptions::default()).findings;
    let mut at: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.file.as_str(), f.rule_id.as_str()))
        .collect();
    at.sort_unstable();
    assert_eq!(
        at,
        [
            ("keys/runner-sa.json", "gcp-service-account"),
            ("keys/runner-sa.json", "private-key")
        ],
        "{found:#?}"
    );
}

mod windowed {
    use launchway_scan::secrets::Engine;
    use launchway_scan::secrets::config::Config;
    use proptest::prelude::*;

    /// Pieces that make assignments, near-misses, long lines and newlines.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("api_key".to_string()),
            Just("token".to_string()),
            Just("secret".to_string()),
            Just("PASSWORD".to_string()),
            Just(" = ".to_string()),
            Just(": ".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("\n".to_string()),
            Just(";".to_string()),
            Just(" ".to_string()),
            "[a-zA-Z0-9+/_.-]{1,40}",
            "[a-z0-9]{8,200}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Looking only around keywords finds exactly what a whole-file
        /// search finds.
        #[test]
        fn windows_find_what_the_whole_file_finds(parts in proptest::collection::vec(piece(), 0..80)) {
            let text = parts.concat();
            let windowed = Engine::new(Config::defaults().rules, vec![]);
            let mut rules = Config::defaults().rules;
            for r in &mut rules {
                r.window = None;
            }
            let whole = Engine::new(rules, vec![]);
            let key = |f: &launchway_scan::secrets::Finding| (f.rule_id.clone(), f.line, f.column, f.secret.clone());
            let a: Vec<_> = windowed.scan("f.txt", text.as_bytes(), None, None).iter().map(key).collect();
            let b: Vec<_> = whole.scan("f.txt", text.as_bytes(), None, None).iter().map(key).collect();
            prop_assert_eq!(a, b, "{:?}", text);
        }
    }
}
