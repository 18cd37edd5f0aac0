//! Version orderings are total orders: antisymmetric, transitive, and
//! consistent with equality, for generated versions of every scheme.

#![allow(clippy::unwrap_used)]

use launchway_scan::version::Ecosystem;
use proptest::prelude::*;
use std::cmp::Ordering;

fn pep440() -> impl Strategy<Value = String> {
    (
        0u8..3,
        proptest::collection::vec(0u8..12, 1..4),
        prop_oneof![Just(""), Just("a"), Just("b"), Just("rc")],
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(epoch, rel, pre, n, post, dev, local)| {
            let mut s = String::new();
            if epoch > 0 {
                s.push_str(&format!("{epoch}!"));
            }
            s.push_str(&rel.iter().map(u8::to_string).collect::<Vec<_>>().join("."));
            if !pre.is_empty() {
                s.push_str(&format!("{pre}{n}"));
            }
            if post {
                s.push_str(&format!(".post{n}"));
            }
            if dev {
                s.push_str(&format!(".dev{n}"));
            }
            if local > 0 {
                s.push_str(&format!("+l{local}.{n}"));
            }
            s
        })
}

fn semver() -> impl Strategy<Value = String> {
    (
        0u8..3,
        0u8..3,
        0u8..3,
        proptest::collection::vec(
            prop_oneof![
                Just("alpha".to_string()),
                Just("beta".to_string()),
                (0u8..12).prop_map(|n| n.to_string())
            ],
            0..3,
        ),
    )
        .prop_map(|(a, b, c, pre)| {
            if pre.is_empty() {
                format!("{a}.{b}.{c}")
            } else {
                format!("{a}.{b}.{c}-{}", pre.join("."))
            }
        })
}

fn debian() -> impl Strategy<Value = String> {
    (
        0u8..2,
        1u8..4,
        0u8..12,
        prop_oneof![Just(""), Just("~rc1"), Just("+b1"), Just("a")],
        0u8..3,
    )
        .prop_map(|(e, a, b, suf, rev)| {
            let base = format!("{a}.{b}{suf}");
            let with_rev = if rev > 0 {
                format!("{base}-{rev}")
            } else {
                base
            };
            if e > 0 {
                format!("{e}:{with_rev}")
            } else {
                with_rev
            }
        })
}

fn check(eco: Ecosystem, a: &str, b: &str, c: &str) -> Result<(), TestCaseError> {
    let ab = eco.compare(a, b).unwrap();
    let ba = eco.compare(b, a).unwrap();
    prop_assert_eq!(ab, ba.reverse(), "{} vs {}", a, b);
    prop_assert_eq!(eco.compare(a, a), Some(Ordering::Equal));
    let bc = eco.compare(b, c).unwrap();
    if ab != Ordering::Greater && bc != Ordering::Greater {
        prop_assert_ne!(
            eco.compare(a, c).unwrap(),
            Ordering::Greater,
            "{} <= {} <= {}",
            a,
            b,
            c
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn pep440_is_a_total_order(a in pep440(), b in pep440(), c in pep440()) {
        check(Ecosystem::PyPI, &a, &b, &c)?;
    }

    #[test]
    fn semver_is_a_total_order(a in semver(), b in semver(), c in semver()) {
        check(Ecosystem::Crates, &a, &b, &c)?;
    }

    #[test]
    fn debian_is_a_total_order(a in debian(), b in debian(), c in debian()) {
        check(Ecosystem::Debian, &a, &b, &c)?;
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        for eco in Ecosystem::ALL {
            let _ = eco.compare(&s, "1.0.0");
        }
    }
}
