//! Kubernetes resource quantities (`500m`, `2`, `1Gi`, `512M`, `1e3`),
//! parsed the way the API server reads them, so a bad value is caught in
//! the config file and not at apply time.

/// A parsed quantity in base units (cores for CPU, bytes for memory).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Quantity(pub f64);

/// Splits a quantity into its number and suffix; `None` if it is not one.
fn split(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '+' || *c == '-') && *i == 0)))
        .map_or(s.len(), |(i, _)| i);
    let (num, suffix) = s.split_at(end);
    if num.is_empty() || num == "+" || num == "-" || num.starts_with('.') && num.len() == 1 {
        return None;
    }
    // `1e3` / `1E-2`: a decimal exponent is part of the number.
    if let Some(rest) = suffix.strip_prefix(['e', 'E'])
        && !rest.is_empty()
        && rest
            .trim_start_matches(['+', '-'])
            .chars()
            .all(|c| c.is_ascii_digit())
        && !rest.trim_start_matches(['+', '-']).is_empty()
    {
        let exp: i32 = rest.parse().ok()?;
        let n: f64 = num.parse().ok()?;
        return Some((n * 10f64.powi(exp), ""));
    }
    Some((num.parse().ok()?, suffix))
}

fn factor(suffix: &str) -> Option<f64> {
    Some(match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    })
}

/// A quantity of any kind, or what is wrong with it.
pub fn parse(s: &str) -> Result<Quantity, String> {
    let (n, suffix) = split(s).ok_or_else(|| format!("'{s}' is not a quantity"))?;
    let f = factor(suffix).ok_or_else(|| {
        format!("'{s}': unknown suffix '{suffix}' (use m for millicores, Ki/Mi/Gi or k/M/G)")
    })?;
    if n < 0.0 || !n.is_finite() {
        return Err(format!("'{s}' must not be negative"));
    }
    Ok(Quantity(n * f))
}

/// A CPU amount: cores or millicores; at most millicore precision.
pub fn cpu(s: &str) -> Result<Quantity, String> {
    let q = parse(s).map_err(|e| format!("{e}; CPU is written like \"500m\" or \"2\""))?;
    if (q.0 * 1000.0 - (q.0 * 1000.0).round()).abs() > 1e-9 {
        return Err(format!("'{s}': CPU is counted in whole millicores"));
    }
    Ok(q)
}

/// A memory amount in bytes; fractions of a byte are not allowed.
pub fn memory(s: &str) -> Result<Quantity, String> {
    let q = parse(s).map_err(|e| format!("{e}; memory is written like \"512Mi\" or \"1Gi\""))?;
    if (q.0 - q.0.round()).abs() > 1e-6 {
        return Err(format!("'{s}': memory is a whole number of bytes"));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_forms_kubernetes_accepts() {
        assert_eq!(cpu("500m").unwrap(), Quantity(0.5));
        assert_eq!(cpu("2").unwrap(), Quantity(2.0));
        assert_eq!(cpu("0.25").unwrap(), Quantity(0.25));
        assert_eq!(memory("1Gi").unwrap(), Quantity(1_073_741_824.0));
        assert_eq!(memory("512Mi").unwrap(), Quantity(536_870_912.0));
        assert_eq!(memory("1G").unwrap(), Quantity(1e9));
        assert_eq!(memory("1e3").unwrap(), Quantity(1000.0));
        assert_eq!(memory("128974848").unwrap(), Quantity(128_974_848.0));
    }

    #[test]
    fn what_it_refuses_and_why() {
        for (s, want) in [
            ("abc", "not a quantity"),
            ("", "not a quantity"),
            ("1Gb", "unknown suffix 'Gb'"),
            ("-1", "negative"),
            ("0.1m", "whole millicores"),
        ] {
            let e = cpu(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(memory("0.5").unwrap_err().contains("whole number of bytes"));
        assert!(memory("1.5Mi").is_ok(), "1.5Mi is 1572864 bytes");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,12}") {
            let _ = parse(&s);
            let _ = cpu(&s);
            let _ = memory(&s);
        }

        #[test]
        fn millicores_round_trip(m in 0u32..1_000_000) {
            let text = format!("{m}m");
            let got = cpu(&text).unwrap().0;
            prop_assert!((got - f64::from(m) / 1000.0).abs() < 1e-9);
        }
    }
}
