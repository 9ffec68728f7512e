//! Human-readable numbers.

/// `466906` -> `"466,906"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in MiB without decimals, or "n/a" when not measured: `Some(3 << 20)` -> `"3"`.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.0}", b as f64 / 1_048_576.0))
}

/// Multiply-adds with an SI suffix: `69_120_000` -> `"69.12M"`.
pub fn macs(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}K", x / 1e3)
    } else {
        n.to_string()
    }
}

/// A ratio with two decimals, or three significant ones below 0.1: `"2.87x"`, `"0.00426x"`.
pub fn ratio(x: f64) -> String {
    if x == 0.0 || x >= 0.1 {
        format!("{x:.2}x")
    } else {
        let decimals = (2 - x.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}x")
    }
}

/// A list of units: `[8, 15]` -> `"8, 15"`.
pub fn list(items: &[usize]) -> String {
    items
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs of consecutive numbers: `[0, 1, 2, 5, 7, 8]` -> `"0-2, 5, 7-8"`.
pub fn ranges(items: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &x in items {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == x => *end = x,
            _ => runs.push((x, x)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_730_714), "1,730,714");
        assert_eq!(macs(650), "650");
        assert_eq!(macs(69_120_000), "69.12M");
        assert_eq!(macs(1_500), "1.5K");
        assert_eq!(list(&[8, 15]), "8, 15");
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(ranges(&[]), "");
        assert_eq!(ratio(2.8723), "2.87x");
        assert_eq!(ratio(0.0), "0.00x");
        assert_eq!(ratio(0.004263), "0.00426x");
    }
}
