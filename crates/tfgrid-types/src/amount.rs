//! TFT amounts: integers of the smallest unit, with 7 decimals to the token, as on TFChain.

use thiserror::Error;

/// An amount of TFT in its smallest unit (10^-7 TFT).
pub type Balance = u128;

/// Units in one TFT.
pub const UNITS_PER_TFT: Balance = 10_000_000;
const DECIMALS: usize = 7;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("amount {0:?} is not a number of TFT like 12 or 0.5")]
    Malformed(String),
    #[error("amount {0:?} has more than 7 decimals")]
    TooPrecise(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

/// Parses a decimal TFT amount ("12", "0.5", "1_000") into units.
pub fn parse_tft(text: &str) -> Result<Balance, AmountError> {
    let cleaned: String = text.trim().chars().filter(|c| *c != '_').collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(AmountError::Malformed(text.to_owned()));
    }
    if frac.len() > DECIMALS {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let too_large = || AmountError::TooLarge(text.to_owned());
    let whole: Balance = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac_units: Balance = format!("{frac:0<DECIMALS$}")
        .parse()
        .map_err(|_| too_large())?;
    whole
        .checked_mul(UNITS_PER_TFT)
        .and_then(|w| w.checked_add(frac_units))
        .ok_or_else(too_large)
}

/// Formats units as a decimal TFT amount without trailing zeros ("12", "0.5").
pub fn format_tft(units: Balance) -> String {
    let whole = units / UNITS_PER_TFT;
    let frac = units % UNITS_PER_TFT;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0>DECIMALS$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Amounts in JSON: a decimal string of units (JSON numbers lose precision past 2^53, and serde's
/// buffering of tagged enums cannot carry u128). Numbers are accepted too. Use with `#[serde(with)]`.
pub mod json_units {
    use super::Balance;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(units: &Balance, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(units)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Balance, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Units {
            Text(String),
            Number(u64),
        }
        match Units::deserialize(d)? {
            Units::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Units::Number(n) => Ok(n.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (text, units, shown) in [
            ("1", 10_000_000, "1"),
            ("0.5", 5_000_000, "0.5"),
            (".25", 2_500_000, "0.25"),
            ("1_000.0000001", 10_000_000_001, "1000.0000001"),
            ("0", 0, "0"),
        ] {
            assert_eq!(parse_tft(text), Ok(units), "{text}");
            assert_eq!(format_tft(units), shown);
        }
    }

    #[test]
    fn rejects_bad_amounts() {
        assert!(matches!(
            parse_tft("1.23456789"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(parse_tft("abc"), Err(AmountError::Malformed(_))));
        assert!(matches!(parse_tft("-1"), Err(AmountError::Malformed(_))));
        assert!(matches!(parse_tft("."), Err(AmountError::Malformed(_))));
        assert!(matches!(
            parse_tft(&"9".repeat(40)),
            Err(AmountError::TooLarge(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(units in proptest::num::u128::ANY.prop_map(|u| u >> 8)) {
            proptest::prop_assert_eq!(parse_tft(&format_tft(units)), Ok(units));
        }
    }
    use proptest::strategy::Strategy as _;
}
